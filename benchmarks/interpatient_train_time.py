"""DS1 training time per seed of a finished inter-patient benchmark, as JSON lines.

Reads ``<workdir>/runs/seed<s>/{results.json, metrics.jsonl}`` written by
``experiments/aami_interpatient.py`` and appends one row per seed to ``--out``:
wall time of the training (summed over resumes), epochs run, best epoch, median
epoch time and training beats/s, the training config's model and inputs.

    python benchmarks/interpatient_train_time.py runs/v5_both --out benchmarks/results/cpu_aami_rr_train.jsonl \
        --note "shared 2-core CPU, nice -n 5" --command "python experiments/aami_interpatient.py ..."
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from _common import append_jsonl, env_record


def seed_rows(workdir: Path) -> list[dict]:
    """One row per finished seed run under ``workdir/runs`` (seed order)."""
    runs = sorted((workdir / "runs").glob("seed*"), key=lambda p: int(p.name[4:]))
    if not runs:
        raise FileNotFoundError(f"no {workdir / 'runs' / 'seed*'}")
    rows = []
    for run in runs:
        res = json.loads((run / "results.json").read_text())
        epochs = [r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if r.get("kind") == "epoch"]
        cfg = json.loads((run / "config.json").read_text())
        rows.append({
            "benchmark": "aami_rr_train_ds1", "seed": int(run.name[4:]), "model": cfg["model"]["name"],
            "inputs": cfg["model"]["kwargs"].get("inputs"), "config_name": cfg["name"],
            "wall_time_s": round(res["wall_time_s"], 1), "epochs_run": res["epochs_run"], "best_epoch": res["best_epoch"],
            "median_epoch_time_s": round(statistics.median(r["epoch_time_s"] for r in epochs), 1),
            "median_train_beats_per_s": round(statistics.median(r["beats_per_s"] for r in epochs), 1),
            "train_beats_per_epoch": res["split"]["train_balanced"],
        })
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="", help="the benchmark command that made the workdir")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    try:
        rows = seed_rows(args.workdir)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {args.workdir}: not a finished inter-patient workdir ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    env = env_record()
    rows = [dict(env, **r, benchmark_command=args.command, note=args.note) for r in rows]
    append_jsonl(args.out, rows)
    for r in rows:
        print(f"seed {r['seed']}: {r['wall_time_s'] / 60:.1f} min, {r['epochs_run']} epochs (best {r['best_epoch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
