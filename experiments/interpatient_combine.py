"""Two finished inter-patient benchmarks as one model, the weight chosen on DS1 only: product of experts.

Command::

    python experiments/interpatient_combine.py runs/cv_both runs/cv_rr --out runs/cv_combined/results.json

``log p = log_softmax(z_a) + w log_softmax(z_b)`` per beat, for the same seeds of two workdirs of
``experiments/aami_interpatient.py`` trained on the same DS1 folds (seed i of both validated on the same
fold, checked). The weight ``w`` (grid ``WEIGHTS``) and one pair of S/V offsets are chosen on the pooled
out-of-record DS1 predictions (each seed's validation fold: ``ecgjax.interpatient.cv_predictions``),
maximising the mean F1 of S and V (``choose_offsets`` for each ``w``). Nothing is chosen on DS2: its
stored per-seed logits (``ds2/seed<s>.npz``, written by the benchmark after training) are combined
with that ``w`` and those offsets and scored once. Writes a ``results.json`` in the benchmark's layout
(``ds2.summary``, ``summary_argmax``, ``per_seed`` with record-bootstrap CIs, ``ds1_cv``), so
``experiments/aami_interpatient.py --table`` prints it; bad input exits 2 with one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def combine(a: Path, b: Path, *, n_bootstrap: int = 1000) -> dict:
    """The module docstring's results dict for workdirs ``a`` (first expert) and ``b`` (second)."""
    from ecgjax import interpatient as ip
    from ecgjax.errors import ConfigError
    from ecgjax.io import environment_info
    from ecgjax.train import metrics

    ra, rb = (json.loads((w / "results.json").read_text()) for w in (a, b))
    if ra["seeds"] != rb["seeds"] or ra["classes"] != rb["classes"] or "ds1_cv" not in ra or "ds1_cv" not in rb:
        raise ConfigError(f"{a} and {b}: need the same seeds and classes, both cross-validated inside DS1 (results ds1_cv)")
    classes, seeds = ra["classes"], ra["seeds"]
    cfg = ip.InterpatientConfig(name="combine", train=None, seeds=tuple(seeds), tune_offsets=tuple(ra["config"]["tune_offsets"]))
    ca, cb = ip.cv_predictions(cfg, a), ip.cv_predictions(cfg, b)
    if not (np.array_equal(ca["index"], cb["index"]) and np.array_equal(ca["seed"], cb["seed"])):
        raise ConfigError(f"{a} and {b}: the seeds were validated on different DS1 beats; train both with the same folds")
    tune = [classes.index(c) for c in cfg.tune_offsets]
    la, lb = ip._log_softmax(ca["logits"]), ip._log_softmax(cb["logits"])
    scores = []
    for w in WEIGHTS:
        z = la + w * lb
        off = ip.choose_offsets(z, ca["y"], tune)
        pred = (z + off).argmax(-1)
        scores.append((float(np.mean([ip._f1(ca["y"], pred, k) for k in tune])), w, off))
    best = max(scores, key=lambda t: t[0])  # first of equals: the smaller weight
    _, w, offsets = best
    per_seed, argmax_reports = {}, []
    for s in seeds:
        with np.load(a / "ds2" / f"seed{s}.npz") as za, np.load(b / "ds2" / f"seed{s}.npz") as zb:
            if not (np.array_equal(za["y_true"], zb["y_true"]) and np.array_equal(za["record"], zb["record"])):
                raise ConfigError(f"seed {s}: {a} and {b} were tested on different DS2 beats")
            y, rec = za["y_true"], za["record"]
            z = ip._log_softmax(za["logits"]) + w * ip._log_softmax(zb["logits"])
        per_seed[str(s)] = metrics.report(y, (z + offsets).argmax(-1).astype(np.int32), classes, record=rec, n_bootstrap=n_bootstrap, seed=s)
        argmax_reports.append(metrics.report(y, z.argmax(-1).astype(np.int32), classes, record=rec, n_bootstrap=0))
    name = f"product of {ra['name']} and {rb['name']} (w={w:g}, chosen on DS1)"
    return {
        "name": name, "classes": classes, "seeds": seeds, "test_records": ra["test_records"], "train_records": ra["train_records"],
        "ds2": {"per_seed": per_seed, "summary": ip._seed_summary(list(per_seed.values()), classes),
                "summary_argmax": ip._seed_summary(argmax_reports, classes),
                "offsets": {str(s): dict(zip(classes, offsets.tolist())) for s in seeds}},
        "ds1_cv": {"weights": [{"w": t[1], "mean_f1_S_V": t[0], "offsets": dict(zip(classes, t[2].tolist()))} for t in scores],
                   "chosen_w": w, "offsets": dict(zip(classes, offsets.tolist()))},
        "published": ra["published"], "goal": ra["goal"], "config": {"tune_offsets": list(cfg.tune_offsets), "a": str(a), "b": str(b)},
        **environment_info(),
    }


def main(argv=None) -> int:
    from ecgjax.errors import EcgjaxError
    from ecgjax.io import atomic_write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path, help="first workdir (e.g. runs/cv_both)")
    ap.add_argument("b", type=Path, help="second workdir (e.g. runs/cv_rr)")
    ap.add_argument("--out", type=Path, required=True, help="results.json to write")
    args = ap.parse_args(argv)
    try:
        res = combine(args.a, args.b)
    except (OSError, KeyError) as e:
        print(f"error: {args.a}, {args.b}: not finished inter-patient workdirs ({type(e).__name__}: {e})", file=sys.stderr)
        return 2
    except EcgjaxError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    atomic_write_json(args.out, json.loads(json.dumps(res, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))))
    from ecgjax import interpatient as ip
    print(f"DS1: w={res['ds1_cv']['chosen_w']:g}, mean F1 of S and V by w: "
          + ", ".join(f"{d['w']:g}: {100 * d['mean_f1_S_V']:.1f}" for d in res["ds1_cv"]["weights"]))
    print(ip.aami_table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
