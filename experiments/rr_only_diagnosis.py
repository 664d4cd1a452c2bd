"""Why the RR-only rr_net failed, from its weights, activations and out-of-record DS1 predictions (no DS2 read).

Command::

    python experiments/rr_only_diagnosis.py WORKDIR [WORKDIR ...] [--out benchmarks/results/rr_only_diagnosis.jsonl]

For each inter-patient workdir of an RR-only model (``aami_rr.py:rr``), per seed, on the DS1 beats its run
trained on (the run's own split; DS1 only):

* ``bn_var_ratio``: the RR BatchNorm's running variance (what the evaluated model divides by) over the
  variance of its input on the training beats, per input (1: the statistics converged);
* ``dead_rr_units`` / ``dead_fuse_units``: ReLU units never active on the training beats;
* ``train_ap_S`` / ``val_ap_S`` (and V): average precision of the evaluated model on the training beats and
  on its validation records (out of record);
* ``lr_val_ap_S`` (and V): a class-weighted logistic regression (``experiments/ds1_rr_screen.py``'s model:
  the same 9 log-ratio inputs, standardised on the training beats, loss weights ``(n / (5 n_c)) ** 0.5``)
  fitted on the same training beats and scored on the same validation records;
* ``best_epoch``, and the S offset the run's tuning chose (``results.json``).

One JSON line per workdir and seed in ``--out``, with the command and versions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"  # the repo's result files, from any folder


def diagnose(run_dir: Path) -> dict:
    """The module docstring's numbers for one trained RR-only run."""
    import jax
    import jax.numpy as jnp
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    from ecgjax.models import eval_split, pure_fns
    from ecgjax.models.rr_net import rr_input_matrix
    from ecgjax.train.run import load_run

    run = load_run(run_dir)
    m, b = run.model, run.beats
    if m.inputs != "rr":
        raise ValueError(f"{run_dir}: not an RR-only rr_net (inputs={m.inputs!r})")
    tr, va = run.split.train, run.split.val
    z = np.log(np.clip(b.x[:, 0, m.n_leads:], 0.05, 20.0)) @ rr_input_matrix(m.rr_features, m.rr_transform)
    bn = m.rr_bn
    mean, var, scale, bias = (np.asarray(v[...]) for v in (bn.mean, bn.var, bn.scale, bn.bias))
    a1 = np.maximum(((z - mean) / np.sqrt(var + bn.epsilon) * scale + bias) @ np.asarray(m.rr_dense.kernel[...])
                    + np.asarray(m.rr_dense.bias[...]), 0)
    a2 = np.maximum(a1 @ np.asarray(m.fuse.kernel[...]) + np.asarray(m.fuse.bias[...]), 0)
    logits = a2 @ np.asarray(m.out.kernel[...]) + np.asarray(m.out.bias[...])
    g, s = eval_split(m)
    check = np.asarray(pure_fns(g, s).logit_fn(jnp.asarray(b.x[va[:512]])))
    if np.abs(check - logits[va[:512]]).max() > 1e-3:
        raise AssertionError("the hand-written forward pass differs from the model's")
    y = b.y
    p = np.asarray(jax.nn.softmax(logits, -1))
    mu, sd = z[tr].mean(0), z[tr].std(0) + 1e-6
    w = (len(tr) / (5 * np.maximum(np.bincount(y[tr], minlength=5), 1))) ** 0.5
    clf = LogisticRegression(max_iter=500).fit((z[tr] - mu) / sd, y[tr], sample_weight=w[y[tr]])
    pl = np.zeros((len(va), 5))
    pl[:, clf.classes_] = clf.predict_proba((z[va] - mu) / sd)
    ap = lambda yy, pp, c: float(average_precision_score(yy == c, pp[:, c])) if np.any(yy == c) else float("nan")  # noqa: E731
    return {
        "bn_var_ratio": (var / z[tr].var(0)).round(3).tolist(),
        "dead_rr_units": int(np.sum(a1[tr].max(0) <= 0)), "rr_units": int(a1.shape[1]),
        "dead_fuse_units": int(np.sum(a2[tr].max(0) <= 0)), "fuse_units": int(a2.shape[1]),
        "train_ap_S": ap(y[tr], p[tr], 1), "val_ap_S": ap(y[va], p[va], 1), "lr_val_ap_S": ap(y[va], pl, 1),
        "train_ap_V": ap(y[tr], p[tr], 2), "val_ap_V": ap(y[va], p[va], 2), "lr_val_ap_V": ap(y[va], pl, 2),
        "val_records": sorted(set(b.record[va].tolist())), "val_S": int(np.sum(y[va] == 1)),
        "best_epoch": run.results["best_epoch"], "epochs_run": run.results["epochs_run"],
    }


def main(argv=None) -> int:
    from ecgjax.io import append_jsonl, environment_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdirs", nargs="+")
    ap.add_argument("--out", type=Path, default=RESULTS / "rr_only_diagnosis.jsonl")
    args = ap.parse_args(argv)
    env = environment_info()
    for wd in map(Path, args.workdirs):
        res = wd / "results.json"
        if not res.exists():
            print(f"error: {res} missing: not a finished inter-patient workdir (experiments/aami_interpatient.py)", file=sys.stderr)
            return 2
        results = json.loads(res.read_text())
        for seed in results["seeds"]:
            row = {"workdir": wd.name, "seed": seed, **diagnose(wd / "runs" / f"seed{seed}"),
                   "S_offset": results["ds2"]["offsets"][str(seed)]["S"], "cv": "ds1_cv" in results,
                   "command": "python experiments/rr_only_diagnosis.py " + " ".join(args.workdirs), "versions": env.get("versions")}
            append_jsonl(args.out, [row])
            print(json.dumps({k: v for k, v in row.items() if k not in ("command", "versions")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
