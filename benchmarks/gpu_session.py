"""The steps of one lent GPU session, in order of value, each under its own time limit.

Called by ``benchmarks/gpu_session.sh PHASE`` (which installs the bundled wheels and unpacks the data
first); see benchmarks/README.md, "GPU session", for the two device calls. Phases:

* ``bench``: the PyTorch + captum comparison (float32 and TF32, same weights), all ~104k beats through
  saliency + segments + profiles, then the throughput grid (ribeiro_cnn, jones2020_cnn, jones2020_lstm x
  saliency, integrated gradients, SmoothGrad, Grad-CAM x batch) with the share of the device's peak.
* ``train``: the full recipes, most valuable first (``TRAIN_STEPS``); a run cut off by the call's limit is
  packed into ``runs.tar.gz`` with its latest checkpoint and resumed by the next session (``--resume-from``).

Every step appends one row to ``$OUT/steps.jsonl`` (name, status ok / failed / timeout / skipped, seconds,
command, device, versions, git commit); results go to a few JSON-lines files under ``$OUT`` (at most 8 files
in all: the device tool brings back no more). A step whose latest row in ``--done`` is ``ok`` is not run
again, so a second session continues where the first stopped. ``--tiny`` runs every step with tiny sizes
on whatever device there is (the CPU check of ``tests/benchmarks/test_gpu_session.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import _common as C

PY = sys.executable
ROOT = C.ROOT
# What comes back from $OUT (the device tool returns at most 8 files): these, plus session.log and runs.tar.gz.
FILES = {"steps": "steps.jsonl", "saliency": "gpu_saliency.jsonl", "torch": "gpu_torch_compare.jsonl",
         "pipeline": "gpu_pipeline.jsonl", "train": "gpu_train.jsonl", "train_throughput": "gpu_train_throughput.jsonl"}
RUNS_TAR = "runs.tar.gz"
TAR_LIMIT = 15 * 2**20  # under the tool's 16 MiB per file


@dataclasses.dataclass(frozen=True)
class Step:
    """One command. ``est_s``: a guess of its GPU time (not a measurement); ``max_s``: its own time limit."""

    name: str
    argv: tuple[str, ...]
    est_s: int
    max_s: int
    workdir: str | None = None  # a training run's folder under the runs root (packed, resumed)
    env: tuple[tuple[str, str], ...] = ()  # extra environment variables


def bench_steps(tiny: bool, out: Path) -> list[Step]:
    o = {k: str(out / v) for k, v in FILES.items()}
    sal = (PY, "benchmarks/saliency_throughput.py", "--repeats", "1" if tiny else "5", "--out", o["saliency"])
    if tiny:  # seconds on a CPU: short windows, tiny batches, the hyperparameters' small ends
        sal += ("--length", "64", "--warmup", "0")
    big, small = ("8", "8") if tiny else ("256,1024,4096,16384", "256,1024")
    models = "jones2020_cnn,jones2020_lstm" if tiny else "ribeiro_cnn,jones2020_cnn,jones2020_lstm"  # ribeiro compiles slowly on CPU
    torch = (PY, "benchmarks/torch_captum_compare.py", "--device", "cpu" if tiny else "cuda", "--repeats", "1" if tiny else "5",
             "--out", o["torch"], *(("--quick",) if tiny else ()))
    n_beats, chunk, n_boot = ("64", "32", "10") if tiny else ("104222", "8192", "200")
    pipe = (PY, "benchmarks/pipeline_e2e.py", "--n-beats", n_beats, "--chunk", chunk, "--n-boot", n_boot, "--out", o["pipeline"])
    mem = (("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.4"),)  # JAX takes 75% of the GPU at start; leave PyTorch room

    def captum(prec, b):
        return Step(f"torch_captum_{prec}_b{b}", (*torch, "--batch", "16" if tiny else b, "--precision", prec), 40, 150, env=mem)

    def pipeline(m):  # all ~104k beats in < 10 s
        return Step(f"pipeline_e2e_{m}", (*pipe, "--model", m), 30, 120)

    def grid(name, methods, batches, prec, est, *extra, models=models):
        return Step(name, (*sal, "--models", models, "--methods", methods, "--batches", batches, "--precision", prec, *extra), est, 240)

    # The three goals first (>= 2x captum, 104k beats < 10 s, then the grid with % of peak), each at
    # its headline size; the rest after. Multi-pass methods at their library defaults (IG 128 steps,
    # SmoothGrad 16 samples) cost 16-128 saliency passes a beat: the small batches only.
    return [
        captum("float32", "4096"),
        pipeline("jones2020_cnn"),
        captum("tf32", "4096"),
        grid("grid_saliency_float32", "saliency,vmap_grad", big, "float32", 150),
        pipeline("ribeiro_cnn"),
        pipeline("jones2020_lstm"),
        captum("float32", "256"),
        captum("tf32", "256"),
        grid("grid_saliency_tf32", "saliency", big, "tf32", 90),
        *(grid(f"grid_{m}_float32", m, small, "float32", 120, *(("--quick",) if tiny else ()),
               models=models if m != "grad_cam" else models.replace(",jones2020_lstm", ""))  # Grad-CAM needs a conv layer
          for m in ("grad_cam", "smoothgrad", "integrated_gradients")),
        Step("grid_train_step_float32", (PY, "benchmarks/train_throughput.py", "--models", models, "--batches", small if tiny else "256,1024,4096",
                                         "--precision", "float32", "--repeats", "1" if tiny else "5", "--out", o["train_throughput"],
                                         *(("--quick",) if tiny else ())), 90, 240),
    ]


def train_steps(tiny: bool, runs: Path, tiny_dir: Path) -> list[Step]:
    """The training runs, most valuable per GPU minute first.

    ``est_s`` is a guess from each recipe's step count times a per-step time that was not measured on a GPU:
    jones2020_cnn ~10 ms per batch of 128 (~0.27 TFLOP at a few tens of TFLOP/s), the LSTM's 860-step scan
    ~15 ms (latency-bound, ~10 us per scan step forward and backward), the corrected LSTM's 54 steps (8 samples
    per step) ~2 ms. CNN hold-out: 30 epochs x ~330 steps; LPO: 15 x ~300; LSTM: 20 x 2,978 steps; corrected LSTM:
    at most 8 x 533 steps.
    """
    cfg = "experiments/configs/"
    if tiny:
        write_tiny_configs(tiny_dir)
        cfg = f"{tiny_dir}/"
    train = (PY, "-m", "ecgjax", "train")
    def lstm_corrected(seed):
        return Step(f"train_lstm_holdout_corrected_s{seed}", (*train, "--config", cfg + "jones2020_lstm_holdout.py:corrected",
                                                            "--workdir", str(runs / f"lstm_corrected_s{seed}"), "--set", f"train.seed={seed}"),
                    120, 1800, f"lstm_corrected_s{seed}")

    # Order: the headline goal (hold-out CNN macro-F1 >= 0.90), the cheap corrected LSTM seeds, the LPO CNN, the
    # inter-patient seeds, the corrected study, then the faithful LSTMs (long, and known to collapse).
    s = [
        Step("train_cnn_holdout", (*train, "--config", cfg + "jones2020_cnn_holdout.py", "--workdir", str(runs / "jones2020_cnn_holdout")),
             180, 600, "jones2020_cnn_holdout"),
        lstm_corrected(0),
        Step("train_cnn_lpo", (*train, "--config", cfg + "jones2020_cnn_lpo.py", "--workdir", str(runs / "jones2020_cnn_lpo")),
             100, 600, "jones2020_cnn_lpo"),
        lstm_corrected(1),
        lstm_corrected(2),
        Step("interpatient_aami_rr", (PY, "experiments/aami_interpatient.py", "--config", cfg + "aami_rr.py",
                                      "--workdir", str(runs / "aami_rr")), 240, 900, "aami_rr"),
        Step("corrected_study", (PY, "experiments/corrected_study.py", "--config", cfg + "corrected_study.py",
                                 "--workdir", str(runs / "corrected")), 900, 3600, "corrected"),
        Step("train_lstm_holdout", (*train, "--config", cfg + "jones2020_lstm_holdout.py", "--workdir", str(runs / "jones2020_lstm_holdout")),
             900, 3600, "jones2020_lstm_holdout"),
        Step("train_lstm_lpo", (*train, "--config", cfg + "jones2020_lstm_lpo.py", "--workdir", str(runs / "jones2020_lstm_lpo")),
             900, 3600, "jones2020_lstm_lpo"),
    ]
    if tiny:  # every config in one file of the tiny folder, so the commands above keep their shape
        s = [dataclasses.replace(x, est_s=5, max_s=600) for x in s]
    return s


TINY_TRAIN = ("data.max_beats=240", "train.epochs=1", "train.batch_size=16", "train.eval_batch_size=64",
              "eval.bootstrap_samples=10", "train.checkpoint_every=5", "train.log_every=5")


def write_tiny_configs(folder: Path) -> None:
    """Wrappers of the real configs with tiny data and one epoch, under the same file names (``--tiny`` only)."""
    folder.mkdir(parents=True, exist_ok=True)
    real = ROOT / "experiments" / "configs"
    over = repr(TINY_TRAIN)
    for name in ("jones2020_cnn_holdout", "jones2020_cnn_lpo", "jones2020_lstm_holdout", "jones2020_lstm_lpo"):
        (folder / f"{name}.py").write_text(
            "from ecgjax.config import apply_overrides, load_config\n\n"
            f"def get_config(arg=None):\n"
            f"    return apply_overrides(load_config({str(real / name) + '.py'!r} + (f':{{arg}}' if arg else '')), list({over}))\n")
    (folder / "aami_rr.py").write_text(
        "import dataclasses\nfrom ecgjax.config import apply_overrides\nfrom ecgjax.interpatient import load_config\n\n"
        "def get_config(arg=None):\n"
        f"    c = load_config({str(real / 'aami_rr.py') + ':seeds2'!r})\n"
        f"    return dataclasses.replace(c, train=apply_overrides(c.train, list({over})), explain_max_beats=8, bootstrap_samples=10)\n")
    (folder / "corrected_study.py").write_text(
        "import dataclasses\nfrom ecgjax.config import apply_overrides\nfrom ecgjax.study.config import load_study_config\n\n"
        "def get_config(arg=None):\n"
        f"    c = load_study_config({str(real / 'corrected_study.py') + ':quick'!r})\n"
        f"    runs = tuple(dataclasses.replace(r, config=apply_overrides(r.config, list({over}))) for r in c.runs[:1])\n"
        "    methods = tuple(dataclasses.replace(m, hparams={k: 2 for k in m.hparams}) for m in c.methods)\n"
        "    return dataclasses.replace(c, runs=runs, methods=methods, explain_max_per_class=4, n_boot=10, sanity_beats=8,\n"
        "                               noise_snr_db=(6.0,), noise_max_beats=10, expert_rules=False, ground_truth=None)\n")
    # (the wave checks are off in the tiny study: they delineate every test record with neurokit2, ~50 s a record
    # on a loaded CPU; tests/study covers them)


# ---------------------------------------------------------------- bookkeeping
def latest_status(*paths: Path) -> dict[str, str]:
    """{step name: the status of its latest row} over the steps.jsonl files ``paths``, read in order."""
    last = {}
    for p in paths:
        if p.exists():
            for line in p.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    last[r["step"]] = r["status"]
    return last


def done_steps(paths: list[Path]) -> set[str]:
    """Names whose latest row (over ``paths``, in order) has status ok."""
    return {k for k, v in latest_status(*paths).items() if v == "ok"}


def run_step(step: Step, limit_s: float, log) -> tuple[str, int | None, float]:
    """Run ``step.argv`` for at most ``limit_s``; on the limit send SIGINT (ecgjax stops cleanly, resumable), then kill."""
    t0 = time.perf_counter()
    log(f"--- {step.name}: {' '.join(step.argv)}  (limit {limit_s:.0f} s, estimate {step.est_s} s)")
    try:
        p = subprocess.Popen(step.argv, cwd=ROOT, start_new_session=True, env={**os.environ, **dict(step.env)})
    except OSError as e:
        log(f"--- {step.name}: cannot start ({e})")
        return "failed", None, time.perf_counter() - t0
    try:
        rc = p.wait(timeout=limit_s)
        status = "ok" if rc == 0 else "failed"
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGINT)
        try:
            rc = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = p.wait()
        status = "timeout"
    return status, rc, time.perf_counter() - t0


def train_row(step: Step, runs: Path, env: dict) -> dict | None:
    """The headline numbers of a finished training step, from the results.json files under its workdir."""
    rows = []
    for f in sorted((runs / step.workdir).rglob("results.json")):
        try:
            r = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        rows.append({"path": str(f.relative_to(runs)), "summary": summarize_results(r)})
    return dict(env, step=step.name, command=" ".join(step.argv), results=rows) if rows else None


def summarize_results(r: dict) -> dict:
    """The scalar metrics of a results.json (training or benchmark), without arrays or the config."""
    keep = {}
    for k, v in r.items():
        if isinstance(v, (int, float, str, bool)) or v is None:
            keep[k] = v
        elif k in ("test", "metrics", "collapse", "aami", "wall", "macro") and isinstance(v, dict):
            keep[k] = {kk: vv for kk, vv in v.items() if not isinstance(vv, list) or len(vv) <= 16}
    return keep


def pack_runs(runs: Path, tar_path: Path, log) -> None:
    """The run folders' small files, plus the latest checkpoint of each unfinished run (to resume it).

    Finished runs (a ``results.json`` beside the checkpoints) travel without checkpoints. Within
    ``TAR_LIMIT``, in this order: JSON/Markdown/text files, other files under 1 MiB, the latest periodic
    checkpoint of each unfinished run, then its ``best/`` checkpoint; whatever does not fit is left out
    (named in the log: such a run starts again next time).
    """
    if not runs.exists():
        return
    text, other, main, best = [], [], [], []
    for p in sorted(runs.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(runs)
        ck = next((i for i, part in enumerate(rel.parts) if part in ("checkpoints", "best")), None)
        if ck is None:
            (text if p.suffix in (".json", ".jsonl", ".md", ".txt", ".log") else other).append(rel)
            continue
        if (runs.joinpath(*rel.parts[:ck]) / "results.json").exists() or ck + 1 >= len(rel.parts):
            continue
        steps_dir = runs.joinpath(*rel.parts[: ck + 1])
        latest = max((d.name for d in steps_dir.iterdir() if d.is_dir() and d.name.isdigit()), key=int, default=None)
        if rel.parts[ck + 1] == latest:
            (main if rel.parts[ck] == "checkpoints" else best).append(rel)
    chosen, total = [], 0

    def take(group: list[Path], what: str, max_file: float = float("inf")) -> None:
        nonlocal total
        by_dir: dict[Path, list[Path]] = {}
        for r in group:  # a checkpoint's files go together
            by_dir.setdefault(r.parent if what == "files" else Path(*r.parts[: r.parts.index(what) + 2]), []).append(r)
        for d, rs in by_dir.items():
            size = sum((runs / r).stat().st_size for r in rs)
            if size > max_file or total + size > TAR_LIMIT:
                log(f"runs.tar.gz: left out {d} ({size / 2**20:.1f} MiB)" if what != "files" else
                    f"runs.tar.gz: left out {len(rs)} file(s) in {d} ({size / 2**20:.1f} MiB)")
                continue
            chosen.extend(rs)
            total += size

    take(text, "files")
    take(other, "files", max_file=2**20)
    take(main, "checkpoints")
    take(best, "best")
    tmp = tar_path.with_suffix(".tmp")
    with tarfile.open(tmp, "w:gz") as tf:
        for r in chosen:
            tf.add(runs / r, arcname=str(r))
    tmp.replace(tar_path)
    log(f"runs.tar.gz: {len(chosen)} files, {tar_path.stat().st_size / 2**20:.1f} MiB")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("phase", choices=["bench", "train"])
    p.add_argument("--out", default=os.environ.get("OUT"), help="folder whose files come back (default $OUT)")
    p.add_argument("--budget-s", type=float, default=float(os.environ.get("GPU_SESSION_BUDGET_S", 240)),
                   help="seconds of work in this call; a step is started only with >= --min-step-s left")
    p.add_argument("--min-step-s", type=float, default=20)
    p.add_argument("--runs", default="/tmp/gpu_runs", help="training workdirs (outside the checkout)")
    p.add_argument("--resume-from", default=str(ROOT / ".devdata" / "runs"),
                   help="run folders brought back by an earlier session (scripts/gpu_results.py puts them here)")
    p.add_argument("--done", default=str(ROOT / "benchmarks" / "results" / "gpu_steps.jsonl"),
                   help="steps already done (status ok) by earlier sessions are skipped")
    p.add_argument("--only", default=None, help="comma list of step names (default: all of the phase, not yet done)")
    p.add_argument("--tiny", action="store_true", default=os.environ.get("ECGJAX_GPU_SESSION_TINY") == "1")
    args = p.parse_args(argv)
    if not args.out:
        p.error("--out or $OUT is required")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    runs = Path(args.runs)

    def log(msg):
        print(f"[gpu_session {time.perf_counter() - t_start:6.1f}s] {msg}", flush=True)

    env = C.env_record(sys.argv if argv is None else ["benchmarks/gpu_session.py", *argv])
    env["tiny"] = args.tiny
    if args.phase == "bench":
        steps = bench_steps(args.tiny, out)
    else:
        steps = train_steps(args.tiny, runs, Path(args.runs + "_tiny_configs"))
        resume = Path(args.resume_from)
        for s in steps:  # an earlier session's unfinished run continues from its latest checkpoint
            src, dst = resume / s.workdir, runs / s.workdir
            if src.is_dir() and not dst.exists():
                shutil.copytree(src, dst)
                log(f"resuming {s.workdir} from {src}")
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - {s.name for s in steps}
        if unknown:
            p.error(f"unknown step(s) {sorted(unknown)}; {args.phase} has {[s.name for s in steps]}")
        steps = [s for s in steps if s.name in wanted]
    done = done_steps([Path(args.done), out / FILES["steps"]])
    log(f"{args.phase}: {len(steps)} steps, budget {args.budget_s:.0f} s, device {env['device_kind']}, "
        f"jax {env['jax']}, flax {env['flax']}, commit {env.get('git_commit')}")
    for s in steps:
        left = args.budget_s - (time.perf_counter() - t_start)
        if s.name in done:
            log(f"--- {s.name}: done in an earlier session; skipped")
            continue
        if left < args.min_step_s:
            status, rc, secs = "skipped", None, 0.0
            log(f"--- {s.name}: skipped, {left:.0f} s left of the budget (left for the next session)")
        else:
            status, rc, secs = run_step(s, min(s.max_s, left), log)
            log(f"--- {s.name}: {status} (rc {rc}) in {secs:.1f} s")
        row = dict(env, step=s.name, phase=args.phase, status=status, rc=rc, seconds=round(secs, 2), est_s=s.est_s,
                   command=" ".join(s.argv))
        C.append_jsonl(str(out / FILES["steps"]), [row])
        if args.phase == "train" and status != "skipped":
            tr = train_row(s, runs, env) if status == "ok" else None
            if tr:
                C.append_jsonl(str(out / FILES["train"]), [tr])
            pack_runs(runs, out / RUNS_TAR, log)  # after every run, so a cut-off call still returns the rest
    log(f"{args.phase}: finished in {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
