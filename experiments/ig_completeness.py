"""Integrated gradients' completeness error with its default settings, on trained runs.

Explains a seeded, class-balanced sample of each run's test beats with
``integrated_gradients`` at its defaults (``ecgjax.attribution.get``: the
steps, baseline and quadrature ``ecgjax explain`` uses), through ``explain_run``
(so the number is the one a run's ``meta.json`` reports), and appends one JSON
line per run to ``--out``; then prints the Markdown table of every line in
``--out`` (docs/results.md quotes it verbatim). ``--hp`` changes a setting
(``steps=512``, ``baseline=blurred``) to see what the error depends on::

    python experiments/ig_completeness.py RUN... --per-class 8 --out benchmarks/results/cpu_ig_completeness.jsonl
    python experiments/ig_completeness.py RUN --per-class 8 --hp baseline=blurred --out benchmarks/results/cpu_ig_completeness.jsonl
    python experiments/ig_completeness.py --out benchmarks/results/cpu_ig_completeness.jsonl   # the table only

Error per beat: |sum of the map - (z_t(x) - z_t(baseline))| / |z_t(x) - z_t(baseline)|
(``ecgjax.attribution.sanity.completeness_error``), target the true class.
Rows that leave a setting at its default say "(default)".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the ecgjax next to this file

import numpy as np  # noqa: E402


def sample_test(y: np.ndarray, test: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """i64[<= per_class * C]: up to ``per_class`` test beats of every class, seeded, sorted."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
    out = [rng.permutation(test[y[test] == c])[:per_class] for c in np.unique(y[test])]
    return np.sort(np.concatenate(out)).astype(np.int64)


def measure(workdir: str, per_class: int, batch_size: int, hp: dict) -> dict:
    from ecgjax import attribution as attr
    from ecgjax.attribution.explain import explain_run, model_identity
    from ecgjax.io import environment_info
    from ecgjax.models import eval_split
    from ecgjax.train import load_run

    run = load_run(workdir)
    idx = sample_test(run.beats.y, run.split.test, per_class)
    method = attr.get("integrated_gradients", **hp)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        explain_run(eval_split(run.model), run.beats, idx, method, tmp, target="label", batch_size=batch_size,
                    model_info=model_identity(run))
        meta = json.loads((Path(tmp) / method.name / "meta.json").read_text())
    env = environment_info()
    return {"run": str(workdir), "name": run.config.name, "seed": run.config.train.seed, "model": run.config.model.name,
            "model_kwargs": run.config.model.kwargs, "test_macro_f1_sklearn": (run.results or {}).get("test", {}).get("macro", {}).get("sklearn", {}).get("f1"),
            "method": {f.name: getattr(method, f.name) for f in dataclasses.fields(method) if f.name != "baseline_value"},
            "hp": hp, "beats": int(len(idx)), "per_class": per_class, "completeness": meta["completeness"],
            "wall_s": time.time() - t0, "device": env.get("device"), "versions": env.get("versions")}


def table(rows: list[dict]) -> str:
    head = "| run | model | test macro F1 (sklearn) | beats | steps | baseline | median error | 90th pct | under 5% |"
    out = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, m = r["completeness"], r["method"]
        f1 = "-" if r["test_macro_f1_sklearn"] is None else f"{r['test_macro_f1_sklearn']:.3f}"
        dflt = lambda k: "" if k in r.get("hp", {}) else " (default)"  # noqa: E731
        out.append(f"| {r['name']} (seed {r['seed']}) | {r['model']} | {f1} | {c['n']} | {c['steps']}{dflt('steps')} | {m['baseline']}{dflt('baseline')} | "
                   f"{100 * c['median_rel_error']:.2f}% | {100 * c['p90_rel_error']:.2f}% | {'yes' if c['ok'] else 'NO'} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", help="finished training runs (workdirs)")
    p.add_argument("--per-class", type=int, default=8, help="test beats per class (seeded)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hp", nargs="*", default=[], help="IG settings other than the defaults, name=value (steps=512 baseline=blurred)")
    p.add_argument("--out", required=True, help="JSON lines file: one row per run is appended")
    args = p.parse_args(argv)
    from ecgjax.io import atomic_write_text

    out = Path(args.out)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()] if out.exists() else []
    hp = {}
    for item in args.hp:
        k, _, v = item.partition("=")
        hp[k] = int(v) if v.isdigit() else v
    for w in args.runs:
        rows.append(measure(w, args.per_class, args.batch_size, hp))
        atomic_write_text(out, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
