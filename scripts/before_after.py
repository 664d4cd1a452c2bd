"""Run the same commands in two checkouts of ecgjax and print, as Markdown, whether they give the same numbers.

    python scripts/before_after.py BEFORE_TREE AFTER_TREE OUT_DIR [--labels before,after] [--compare-only]

Each tree is a checkout (e.g. ``git worktree add --detach /tmp/before COMMIT``); its own ``ecgjax`` is
imported (``PYTHONPATH=TREE``) with this interpreter, on the data of ``$ECGJAX_DATA_DIR``, with a beat
cache per tree under OUT_DIR. The commands (:data:`COMMANDS`): the smoke training on five real records,
then saliency and integrated gradients (32 steps) of its test beats for the predicted class. Compared:
every test metric of ``results.json``, the stored test logits, and the maps of each method matched by
beat index. The Markdown goes to stdout (docs/architecture.md quotes it); ``--compare-only`` prints it
again from OUT_DIR without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

COMMANDS = (
    ("train", "--config", "experiments/configs/smoke.py", "--workdir", "{run}"),
    ("explain", "--workdir", "{run}", "--method", "saliency", "--target", "pred", "--name", "saliency"),
    ("explain", "--workdir", "{run}", "--method", "integrated_gradients", "--hp", "steps=32", "--target", "pred", "--name", "ig"),
)
METHODS = ("saliency", "ig")


def run_tree(tree: Path, out: Path) -> dict:
    """Run :data:`COMMANDS` with ``tree``'s ecgjax into ``out``; returns the wall seconds of each."""
    env = {**os.environ, "PYTHONPATH": str(tree), "ECGJAX_CACHE_DIR": str(out / "cache")}
    run = out / "run"
    secs = {}
    for i, cmd in enumerate(COMMANDS):
        argv = [sys.executable, "-m", "ecgjax", *(a.format(run=run) for a in cmd)]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
        (out / f"{i}_{cmd[0]}.log").write_text(proc.stdout + proc.stderr)
        if proc.returncode:
            raise SystemExit(f"{tree}: {' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        secs[" ".join(cmd[:1] + cmd[-2:] if cmd[0] == "explain" else cmd[:1])] = time.perf_counter() - t0
    (out / "wall_s.json").write_text(json.dumps(secs))
    return secs


def _maps(folder: Path) -> dict[int, np.ndarray]:
    out = {}
    for f in sorted(folder.glob("class_*.npz")):
        with np.load(f, allow_pickle=False) as z:
            out.update(zip(z["index"].tolist(), z["maps"]))
    return out


def _metrics(results: dict) -> dict[str, float]:
    t = results["test"]
    flat = {"accuracy": t["accuracy"], "loss": t["loss"]}
    for avg, scores in t["macro"].items():
        flat.update({f"macro {avg} {k}": v for k, v in scores.items() if isinstance(v, (int, float))})
    for c, scores in t["per_class"].items():
        flat.update({f"{c} {k}": v for k, v in scores.items() if isinstance(v, (int, float))})
    return flat


def compare(a: Path, b: Path) -> dict:
    ra, rb = (json.loads((d / "run" / "results.json").read_text()) for d in (a, b))
    ma, mb = _metrics(ra), _metrics(rb)
    with np.load(a / "run" / "predictions.npz") as za, np.load(b / "run" / "predictions.npz") as zb:
        logits = float(np.max(np.abs(za["logits"] - zb["logits"])))
        same_pred = bool(np.array_equal(za["y_pred"], zb["y_pred"]))
    maps = {}
    for m in METHODS:
        pa, pb = _maps(a / "run" / "attributions" / m), _maps(b / "run" / "attributions" / m)
        assert pa.keys() == pb.keys(), f"{m}: different beats explained"
        diff = max(float(np.max(np.abs(pa[i] - pb[i]))) for i in pa)
        scale = max(float(np.max(np.abs(pa[i]))) for i in pa)
        maps[m] = (len(pa), diff, scale)
    return {"a": ra, "b": rb, "ma": ma, "mb": mb, "logits": logits, "same_pred": same_pred, "maps": maps,
            "metric_diff": max(abs(ma[k] - mb[k]) for k in ma if k in mb and ma[k] == ma[k] and mb[k] == mb[k]),
            "keys_differ": sorted(set(ma) ^ set(mb))}


def markdown(c: dict, labels: tuple[str, str], commits: tuple[str, str], secs: tuple[dict, dict]) -> str:
    la, lb = labels
    lines = [f"Commands (each in both checkouts, `python -m ecgjax ...`, run by `scripts/before_after.py`):", ""]
    lines += [f"    ecgjax {' '.join(a.format(run='RUN') for a in cmd)}" for cmd in COMMANDS]
    lines += ["", f"{la}: `{commits[0]}`; {lb}: `{commits[1]}`.", "",
              f"| test metric | {la} | {lb} |", "|---|---|---|"]
    for k in ("accuracy", "loss", "macro all f1", "macro present f1", "macro present precision", "macro present recall"):
        if k in c["ma"] or k in c["mb"]:
            lines.append(f"| {k} | {c['ma'].get(k, 'n/a'):.6g} | {c['mb'].get(k, 'n/a'):.6g} |")
    lines += ["", f"* every test metric in results.json ({len(c['ma'])} numbers): largest difference {c['metric_diff']:.3g}"
              + (f"; keys only on one side: {c['keys_differ']}" if c["keys_differ"] else ""),
              f"* test logits: largest difference {c['logits']:.3g}; predicted classes {'identical' if c['same_pred'] else 'DIFFER'}"]
    for m, (n, d, s) in c["maps"].items():
        lines.append(f"* {m} maps of {n} test beats: largest difference {d:.3g} (largest |map| {s:.3g})")
    lines.append("* wall seconds (shared 2-core CPU whose load varied between the runs: not a speed comparison): " + "; ".join(
        f"{k} {secs[0][k]:.0f} / {secs[1][k]:.0f}" for k in secs[0]))
    return "\n".join(lines) + "\n"


def _commit(tree: Path) -> str:
    return subprocess.run(["git", "log", "-1", "--format=%h %s"], cwd=tree, capture_output=True, text=True).stdout.strip()[:80]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--labels", default="before,after")
    p.add_argument("--compare-only", action="store_true", help="compare what OUT_DIR holds; run nothing")
    args = p.parse_args(argv)
    labels = tuple(args.labels.split(","))
    dirs = (args.out / labels[0], args.out / labels[1])
    secs = []
    for tree, d in zip((args.before, args.after), dirs):
        d.mkdir(parents=True, exist_ok=True)
        secs.append(json.loads((d / "wall_s.json").read_text()) if args.compare_only else run_tree(tree.resolve(), d.resolve()))
    print(markdown(compare(*dirs), labels, (_commit(args.before), _commit(args.after)), tuple(secs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
