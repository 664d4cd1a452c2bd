"""Where the time of a finished study goes (e.g. ``make run``'s quick reproduction), as JSON lines.

Reads ``<workdir>/stages/*.json`` (each stage's ``wall_s``) and, per trained run, ``runs/<name>/metrics.jsonl``
(median epoch time and training beats/s) and ``config.json`` (model, batch size), and appends one row to
``--out``. ``--total-s`` is the whole command's wall time as measured outside it (``time make run``).
``--render`` writes the table of the latest row per config into docs/performance.md between its markers.

    time make run   # from a fresh clone, then:
    python benchmarks/study_stage_times.py runs/reproduce_quick --total-s 458 --out benchmarks/results/cpu_make_run.jsonl \
        --command "make run" --note "fresh clone, fresh XDG_CACHE_HOME, quiet 2-core CPU"
    python benchmarks/study_stage_times.py --render benchmarks/results/cpu_make_run.jsonl   # and README's sentence
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _common import ROOT, append_jsonl, env_record

from ecgjax.errors import DataError
from ecgjax.io import atomic_write_text, replace_section

BEGIN, END = "<!-- study_stage_times:begin -->", "<!-- study_stage_times:end -->"
README_BEGIN, README_END = "<!-- make-run-time:begin -->", "<!-- make-run-time:end -->"


def stage_row(workdir: Path) -> dict:
    """{"stages_wall_s": [[stage, wall_s], ...] in finishing order, "runs": {run: {...}}, "config": study name} of a finished study workdir."""
    files = sorted((workdir / "stages").glob("*.json"), key=lambda p: p.stat().st_mtime)  # in the order they finished
    stages = [[p.stem, float(json.loads(p.read_text())["wall_s"])] for p in files]  # a list: rows are written with sorted keys
    if not stages:
        raise FileNotFoundError(f"no {workdir / 'stages' / '*.json'}")
    runs = {}
    for run in sorted(p for p in (workdir / "runs").glob("*") if (p / "metrics.jsonl").exists()):
        epochs = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("kind") == "epoch"]
        cfg = json.loads((run / "config.json").read_text())
        runs[run.name] = {
            "model": cfg["model"]["name"], "batch_size": cfg["train"]["batch_size"], "epochs": len(epochs),
            "median_epoch_time_s": round(statistics.median(r["epoch_time_s"] for r in epochs), 1) if epochs else None,
            "median_train_beats_per_s": round(statistics.median(r["beats_per_s"] for r in epochs), 1) if epochs else None,
        }
        if (run / "results.json").exists():  # the test part's accuracy and its record-bootstrap CI
            test = json.loads((run / "results.json").read_text())["test"]
            runs[run.name].update(test_n=test["n"], test_accuracy=test["accuracy"], test_accuracy_ci=test.get("ci", {}).get("accuracy"),
                                  test_ci_level=test.get("ci_level"))
    config = json.loads((workdir / "config.json").read_text()).get("name") if (workdir / "config.json").exists() else None
    return {"benchmark": "study_stage_times", "config_name": config, "stages_wall_s": stages,
            "stages_total_s": round(sum(v for _, v in stages), 1), "runs": runs}


def _test(run: dict) -> str:
    """'n | accuracy [lo, hi] (level)' of a run's row; '- | -' for rows written before the test columns."""
    if run.get("test_accuracy") is None:
        return "- | -"
    ci = run.get("test_accuracy_ci")
    ci_text = f" [{ci[0]:.3f}, {ci[1]:.3f}] ({run['test_ci_level']:.0%})" if ci else ""
    return f"{run['test_n']:,} | {run['test_accuracy']:.3f}{ci_text}"


def render(rows: list[dict]) -> str:
    """Markdown: one table per config (its latest row): stages, then the trained runs."""
    latest = {}
    for r in rows:
        latest[r.get("config_name")] = r
    out = []
    for name, r in latest.items():
        total = f", whole command {r['total_s']:.0f} s" if r.get("total_s") else ""
        out.append(f"`{r.get('benchmark_command') or r['command']}` ({name}; {r['timestamp'][:10]}, commit "
                   f"{(r.get('git_commit') or '?')[:7]}, {r['host_cpus']} CPUs, "
                   f"jax {r['jax']}{total}; {r.get('note') or ''}):\n")
        out.append("| stage | wall s |\n|---|---|")
        out += [f"| {k} | {v:.1f} |" for k, v in r["stages_wall_s"]]
        out.append(f"| **all stages** | **{r['stages_total_s']:.1f}** |\n")
        if r["runs"]:
            out.append("| run | model | batch | epochs | median epoch s | median training beats/s | test beats | "
                       "test accuracy [CI over records] |\n|---|---|---|---|---|---|---|---|")
            out += [f"| {k} | {v['model']} | {v['batch_size']} | {v['epochs']} | {v['median_epoch_time_s']} | "
                    f"{v['median_train_beats_per_s']} | {_test(v)} |" for k, v in r["runs"].items()]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


def render_readme(rows: list[dict]) -> str:
    """One sentence for README: the whole command's time of the latest row that has one, with its conditions."""
    r = [r for r in rows if r.get("total_s")][-1]
    return (f"Measured: `{r.get('benchmark_command') or r['command']}` took **{r['total_s']:.0f} s** "
            f"({r['timestamp'][:10]}, commit {(r.get('git_commit') or '?')[:7]}, {r['host_cpus']} CPUs, jax {r['jax']}; "
            f"{r.get('note') or ''}).\n")


def render_into(doc: Path, rows: list[dict], readme: Path | None = None) -> None:
    """Replace the section between the markers of ``doc`` with :func:`render` of ``rows``, and ``readme``'s with
    :func:`render_readme` (atomic writes)."""
    section = f"{BEGIN}\n{render(rows)}{END}"
    atomic_write_text(doc, replace_section(doc.read_text(), section, BEGIN, END, where=str(doc)))
    if readme is not None:
        section = f"{README_BEGIN}\n{render_readme(rows)}{README_END}"
        atomic_write_text(readme, replace_section(readme.read_text(), section, README_BEGIN, README_END, where=str(readme)))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path, nargs="?")
    ap.add_argument("--out")
    ap.add_argument("--total-s", type=float, default=None, help="the whole command's wall time, measured outside it")
    ap.add_argument("--command", default="", help="the command that made the workdir")
    ap.add_argument("--note", default="")
    ap.add_argument("--render", metavar="JSONL", help="write the table of these rows into --doc")
    ap.add_argument("--doc", type=Path, default=ROOT / "docs" / "performance.md")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md", help="its make-run-time sentence is rendered too")
    args = ap.parse_args(argv)
    if args.render:
        try:
            rows = [json.loads(line) for line in Path(args.render).read_text().splitlines() if line.strip()]
            render_into(args.doc, rows, args.readme)
        except (OSError, ValueError, KeyError, DataError) as e:
            print(f"error: {args.render} -> {args.doc}: {e}", file=sys.stderr)
            return 2
        print(f"wrote the stage table into {args.doc} and the make run time into {args.readme}")
        return 0
    if args.workdir is None or not args.out:
        print("error: give a study workdir and --out (or --render JSONL)", file=sys.stderr)
        return 2
    try:
        row = stage_row(args.workdir)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.workdir}: not a finished study workdir ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    row = dict(env_record(), **row, total_s=args.total_s, benchmark_command=args.command, note=args.note)
    append_jsonl(args.out, [row])
    print(f"{row['config_name']}: stages {row['stages_total_s']:.1f} s " + ", ".join(f"{k} {v:.1f}" for k, v in row["stages_wall_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
