"""Bring a GPU session's returned files into the repository and regenerate docs/results.md from them.

  python scripts/gpu_results.py FILES_DIR     # the folder the device tool's `files_at` names
  python scripts/gpu_results.py --render-only # only regenerate docs/results.md from benchmarks/results/

What it does with FILES_DIR (written by ``benchmarks/gpu_session.sh`` under $OUT):

* ``gpu_{saliency,torch_compare,pipeline,train,train_throughput}.jsonl`` -> appended to
  ``benchmarks/results/gpu_<device kind>_<name>.jsonl`` (rows already there are not added twice);
  ``steps.jsonl`` -> ``benchmarks/results/gpu_steps.jsonl`` (the next session skips the steps that are ok);
  ``session.log`` -> appended to ``benchmarks/results/gpu_<device kind>_session.log``.
* ``runs.tar.gz`` -> unpacked into ``.devdata/runs/`` (git-ignored; carried with ``.devdata`` so the next
  session resumes unfinished runs), and every ``results.json`` in it copied to
  ``benchmarks/results/gpu_runs/<run>/``.
* docs/results.md: the section between ``<!-- gpu-results:begin -->`` and ``<!-- gpu-results:end -->`` is
  rebuilt from those files, and the inter-patient table's rows marked "not yet run (GPU)" are filled from
  the corrected study's runs once they exist. Nothing else in the page changes.

Rows from a CPU (``--tiny`` checks) are refused unless ``--allow-cpu``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tarfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from ecgjax.errors import DataError  # noqa: E402
from ecgjax.io import atomic_write_text, replace_section  # noqa: E402

JSONL = ("saliency", "torch_compare", "pipeline", "train", "train_throughput")
BEGIN, END = "<!-- gpu-results:begin -->", "<!-- gpu-results:end -->"
# The inter-patient table's placeholder rows: label prefix -> (study run names, how to describe them).
PLACEHOLDERS = {
    "| ecgjax `aami_ribeiro`, 3 seeds, full recipe |": ("aami_ribeiro_s", "3 seeds, mean of seeds; GPU"),
    "| ecgjax `aami_jones_cnn` |": ("aami_jones_cnn", "GPU"),
}


class Refused(Exception):
    """A file that must not be ingested (CPU rows, a tar entry leaving its folder)."""


def slug(kind: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", kind).strip("_") or "unknown"


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append_new_lines(src_rows: list[dict], dst: Path) -> int:
    """Append the rows of ``src_rows`` not already in ``dst`` (same JSON, keys sorted); returns how many."""
    have = {json.dumps(r, sort_keys=True) for r in read_jsonl(dst)}
    new = [json.dumps(r, sort_keys=True) for r in src_rows]
    new = [line for i, line in enumerate(new) if line not in have and line not in new[:i]]
    if new:
        text = dst.read_text() if dst.exists() else ""
        atomic_write_text(dst, text + "".join(line + "\n" for line in new))
    return len(new)


def ingest(files: Path, results: Path, resume: Path, allow_cpu: bool) -> list[str]:
    """Copy a session's files into ``results`` (and runs into ``resume``); returns what was done, one line each."""
    done = []
    results.mkdir(parents=True, exist_ok=True)
    steps = read_jsonl(files / "steps.jsonl")
    kinds = {r.get("device_kind", "unknown") for r in steps} or {"unknown"}
    if not allow_cpu and any(r.get("device") == "cpu" or r.get("tiny") for r in steps):
        raise Refused(f"{files}/steps.jsonl holds CPU or --tiny rows; pass --allow-cpu to ingest them anyway")
    kind = slug(sorted(kinds)[0])
    for name in JSONL:
        rows = read_jsonl(files / f"gpu_{name}.jsonl")
        if rows:
            n = append_new_lines(rows, results / f"gpu_{kind}_{name}.jsonl")
            done.append(f"{n} new rows -> {results / f'gpu_{kind}_{name}.jsonl'}")
    if steps:
        n = append_new_lines(steps, results / "gpu_steps.jsonl")
        done.append(f"{n} new step rows -> {results / 'gpu_steps.jsonl'}")
    log = files / "session.log"
    if log.exists():
        dst = results / f"gpu_{kind}_session.log"
        atomic_write_text(dst, (dst.read_text() if dst.exists() else "") + log.read_text())
        done.append(f"session.log -> {dst}")
    tar = files / "runs.tar.gz"
    if tar.exists():
        done += unpack_runs(tar, resume, results / "gpu_runs")
    return done


def unpack_runs(tar: Path, resume: Path, keep: Path) -> list[str]:
    """Unpack into ``resume`` (each top-level run folder replaced), then copy every results.json to ``keep``."""
    with tarfile.open(tar) as tf:
        members = tf.getmembers()
        tops = {Path(m.name).parts[0] for m in members}
        for m in members:
            if m.name.startswith("/") or ".." in Path(m.name).parts or not (m.isfile() or m.isdir()):
                raise Refused(f"{tar}: entry {m.name!r} is not a plain file inside the archive's folder")
        for t in tops:
            shutil.rmtree(resume / t, ignore_errors=True)
        resume.mkdir(parents=True, exist_ok=True)
        tf.extractall(resume, members=members, filter="data")
    out = [f"{len(members)} files of {len(tops)} run folders -> {resume}"]
    for f in sorted(resume.rglob("results.json")):
        dst = keep / f.relative_to(resume)
        dst.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(dst, f.read_text())
        out.append(f"{f.relative_to(resume)} -> {dst}")
    return out


# ---------------------------------------------------------------- rendering
def latest(rows: list[dict], key) -> list[dict]:
    """The last row of each ``key(row)``, in first-seen order."""
    seen = {}
    for r in rows:
        seen[key(r)] = r
    return list(seen.values())


def fmt(v, spec=".1f", none="-"):
    return none if v is None else format(v, spec)


def render(results: Path) -> str:
    """The generated section of docs/results.md, from the files in ``results``."""
    lines = [BEGIN, "",
             "Generated by `python scripts/gpu_results.py` from `benchmarks/results/gpu_*` (written on the device by",
             "`benchmarks/gpu_session.sh`; benchmarks/README.md, \"GPU session\"). Do not edit by hand.", ""]
    steps = read_jsonl(results / "gpu_steps.jsonl")
    if not steps:
        lines += ["No GPU session has run yet: every GPU number on this page is **not yet run (GPU)**.", "", END]
        return "\n".join(lines)
    last = latest(steps, lambda r: r["step"])
    env = last[-1]
    lines += [f"Device: {env.get('device_kind')} ({env.get('n_devices')} device), jax {env.get('jax')}, jaxlib "
              f"{env.get('jaxlib')}, flax {env.get('flax')}, Python {env.get('python')}, commit {env.get('git_commit')}.", "",
              "| step | status | seconds | estimate (guess) s | phase started |", "|---|---|---|---|---|"]
    lines += [f"| {r['step']} | {r['status']} | {fmt(r.get('seconds'), '.0f')} | {r.get('est_s')} | {r.get('timestamp')} |" for r in last]
    left = [r["step"] for r in last if r["status"] != "ok"]
    lines += ["", f"Left for the next session (not ok yet): {', '.join(left) if left else 'none'}.", ""]
    for f in sorted(results.glob("gpu_*_torch_compare.jsonl")):
        lines += captum_table(read_jsonl(f), f.name)
    for f in sorted(results.glob("gpu_*_pipeline.jsonl")):
        lines += pipeline_table(read_jsonl(f), f.name)
    for f in sorted(results.glob("gpu_*_saliency.jsonl")) + sorted(results.glob("gpu_*_train_throughput.jsonl")):
        lines += grid_table(read_jsonl(f), f.name)
    lines += training_tables(results / "gpu_runs")
    lines.append(END)
    return "\n".join(lines)


def captum_table(rows: list[dict], name: str) -> list[str]:
    rows = latest(rows, lambda r: (r["precision"], r["batch"], r["method"]))
    by = defaultdict(dict)
    for r in rows:
        by[(r["precision"], r["batch"])][r["method"]] = r
    out = [f"**ecgjax against PyTorch + captum on the same GPU** (ribeiro_cnn, same weights, logits checked; `{name}`; "
           "goal: ecgjax saliency >= 2x captum):", "",
           "| precision | batch | ecgjax beats/s | torch autograd beats/s | captum beats/s | ecgjax / captum | goal |",
           "|---|---|---|---|---|---|---|"]
    for (prec, b), m in sorted(by.items()):
        j, t, c = (m.get(k, {}).get("beats_per_s") for k in ("jax_saliency", "torch_autograd_grad", "captum_saliency"))
        ratio = j / c if j and c else None
        out.append(f"| {prec} | {b} | {fmt(j, ',.0f')} | {fmt(t, ',.0f')} | {fmt(c, ',.0f')} | {fmt(ratio, '.2f')}x | "
                   f"{'-' if ratio is None else ('met' if ratio >= 2 else 'NOT met')} |")
    return out + [""]


def pipeline_table(rows: list[dict], name: str) -> list[str]:
    rows = latest(rows, lambda r: (r["model"], r["n_beats"], r.get("precision")))
    out = [f"**All beats end to end** (saliency via the library runner + 0.1 s segments + per-class profiles with a "
           f"record bootstrap; `{name}`; goal < 10 s):", "",
           "| model | beats | chunk | total s | saliency s | segments s | profiles s | compile s (apart) | goal |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['n_beats']:,} | {r['batch']} | {r['total_s']:.2f} | {r['saliency_s']:.2f} | "
                   f"{r['segments_s']:.2f} | {r['profiles_s']:.2f} | {fmt(r.get('compile_s'))} | "
                   f"{'met' if r['total_s'] < 10 else 'NOT met'} |")
    return out + [""]


def grid_table(rows: list[dict], name: str) -> list[str]:
    rows = latest(rows, lambda r: (r["model"], r["method"], r.get("precision"), r["batch"]))
    out = [f"**Throughput grid** (`{name}`; achieved TFLOP/s = beats/s x 2 x gradient passes x forward FLOP/beat; "
           "share of the data-sheet peak for the precision):", "",
           "| model | method | precision | batch | beats/s median [min, max] | compile s | TFLOP/s | % of peak |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | {r['method']} | {r.get('precision')} | {r['batch']} | failed: {r['error'][:80]} | | | |")
            continue
        share = r.get("share_of_peak")
        out.append(f"| {r['model']} | {r['method']} | {r.get('precision')} | {r['batch']} | {r['beats_per_s']:,.0f} "
                   f"[{r['beats_per_s_min']:,.0f}, {r['beats_per_s_max']:,.0f}] | {fmt(r.get('compile_s'))} | "
                   f"{fmt(r.get('achieved_tflops'), '.2f')} | {fmt(None if share is None else 100 * share)} |")
    return out + [""]


def training_tables(runs: Path) -> list[str]:
    """`ecgjax summarize` of the trained runs and the AAMI table of the inter-patient benchmark, from results.json."""
    from ecgjax.interpatient import aami_table
    from ecgjax.train.summary import summarize

    out = []
    train_dirs = [f.parent for f in sorted(runs.rglob("results.json")) if "test" in json.loads(f.read_text())]
    if train_dirs:
        jones = [d for d in train_dirs if json.loads((d / "results.json").read_text())["name"].startswith("jones2020")]
        aami = [d for d in train_dirs if d not in jones]
        def folders(ds):
            return "Rows in order: " + ", ".join(f"`{d.relative_to(runs)}`" for d in ds) + "."

        if jones:
            out += ["**Trained runs, Jones et al. recipes** (`ecgjax summarize benchmarks/results/gpu_runs/...`; the paper's "
                    "hold-out CNN macro-F1 is 0.851, the goal >= 0.90; the hold-out split mixes patients):", "",
                    summarize(jones), "", folders(jones), ""]
        if aami:
            out += ["**Trained runs, AAMI DS1 -> DS2** (the corrected study's and the inter-patient benchmark's runs; "
                    "S and V in %):", "", summarize(aami, classes=("S", "V")), "", folders(aami), ""]
    bench = [json.loads(f.read_text()) for f in sorted(runs.rglob("results.json"))]
    bench = [r for r in bench if "ds2" in r]
    if bench:
        out += ["**Inter-patient benchmark** (`python experiments/aami_interpatient.py --table ...`):", "",
                aami_table(*bench), ""]
    return out


def fill_placeholders(text: str, runs: Path) -> str:
    """The inter-patient table's "not yet run (GPU)" rows, filled from the corrected study's runs when present."""
    found = {f.parent.name: json.loads(f.read_text()) for f in runs.rglob("results.json")}
    lines = text.split("\n")
    for i, line in enumerate(lines):
        for prefix, (run, how) in PLACEHOLDERS.items():
            if not line.startswith(prefix):
                continue
            rs = [r for n, r in sorted(found.items()) if (n.startswith(run) if run.endswith("_s") else n == run) and "test" in r]
            if not rs:  # stays "not yet run (GPU)"
                continue

            def cell(cls, key):
                vals = [100 * r["test"]["per_class"][cls][key] for r in rs]
                return f"{statistics.mean(vals):.1f}" + (f" ± {statistics.stdev(vals):.1f}" if len(vals) > 1 else "")

            lines[i] = (f"{prefix} {cell('S', 'recall')} | {cell('S', 'precision')} | {cell('V', 'recall')} | "
                        f"{cell('V', 'precision')} | {how}, `benchmarks/results/gpu_runs/` ({len(rs)} run(s)) |")
    return "\n".join(lines)


def update_docs(doc: Path, results: Path) -> bool:
    """Rewrite the generated parts of ``doc``; True when it changed."""
    text = doc.read_text()
    section = render(results)
    if BEGIN in text and END in text:
        new = replace_section(text, section, BEGIN, END, where=str(doc))
    else:
        new = text.rstrip("\n") + "\n\n## 6. GPU session results\n\n" + section + "\n"
    new = fill_placeholders(new, results / "gpu_runs")
    if new != text:
        atomic_write_text(doc, new)
    return new != text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="?", help="the folder of the files a device call returned ($OUT there)")
    p.add_argument("--render-only", action="store_true", help="only regenerate docs/results.md")
    p.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--resume-dir", default=str(ROOT / ".devdata" / "runs"))
    p.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    p.add_argument("--allow-cpu", action="store_true", help="ingest CPU/--tiny rows (for checking this script)")
    args = p.parse_args(argv)
    if not args.files and not args.render_only:
        p.error("give FILES_DIR or --render-only")
    results = Path(args.results)
    try:
        if args.files:
            files = Path(args.files)
            if not (files / "steps.jsonl").exists():
                print(f"gpu_results: error: {files}/steps.jsonl not found; give the folder the device call returned", file=sys.stderr)
                return 2
            for line in ingest(files, results, Path(args.resume_dir), args.allow_cpu):
                print(line)
        changed = update_docs(Path(args.doc), results)
    except (Refused, DataError) as e:
        print(f"gpu_results: error: {e}", file=sys.stderr)
        return 2
    print(f"{args.doc}: {'regenerated' if changed else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
