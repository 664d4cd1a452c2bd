"""Classification metrics in pure numpy, with bootstrap CIs over records.

Definitions (C classes, confusion matrix ``cm[i, j]`` = beats of true class i
predicted as j; per class: TP, FP = column sum - TP, FN = row sum - TP,
TN = rest):

* accuracy = trace / total;
* precision (+P, PPV) = TP / (TP + FP); recall (sensitivity, Se) = TP / (TP + FN);
  specificity = TN / (TN + FP); FPR = FP / (FP + TN) = 1 - specificity
  (de Chazal et al., 2004); F1 = 2 P R / (P + R); support = TP + FN.
* An undefined ratio (0/0) is 0 in point estimates, as sklearn's
  ``zero_division=0`` (what the paper's numbers used).
* Three macro averages:
  - ``all``: unweighted mean over all C classes, zero-support classes
    included (each contributes recall 0 and F1 0);
  - ``sklearn``: over the classes in ``y_true`` U ``y_pred``: sklearn's
    default without ``labels=``, i.e. **the paper's numbers** (reference §6);
  - ``present``: over the classes with support in the test set (what a
    zero-support class cannot distort).
  The paper's specificity is a mean over all C classes (``all``).
* 95% CIs: percentile bootstrap over **records** (patients): resample the test
  records with replacement, pool their beats, recompute. Per-class values that
  are undefined in a resample are left out of that class's interval.
"""

from __future__ import annotations

import numpy as np

PER_CLASS = ("precision", "recall", "specificity", "f1", "fpr")
MACRO = ("precision", "recall", "specificity", "f1")
MACRO_SETS = ("all", "sklearn", "present")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """i64[C, C]: rows are true classes, columns predictions. y_true, y_pred: int[N]."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    return np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _div(a, b, undefined):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    out = np.full(np.broadcast(a, b).shape, undefined, np.float64)
    np.divide(a, b, out=out, where=b > 0)
    return out


def per_class(cm: np.ndarray, *, undefined: float = 0.0) -> dict[str, np.ndarray]:
    """Per-class counts and ratios (f64[C]) from ``cm`` (int[C, C]); 0/0 -> ``undefined``."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp
    tn = cm.sum() - tp - fp - fn
    p = _div(tp, tp + fp, undefined)
    r = _div(tp, tp + fn, undefined)
    # F1 from counts: 2TP / (2TP + FP + FN) equals 2PR/(P+R) whenever both are defined
    f1 = _div(2 * tp, 2 * tp + fp + fn, undefined)
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": tn, "support": tp + fn, "predicted": tp + fp,
        "precision": p, "recall": r, "specificity": _div(tn, tn + fp, undefined),
        "f1": f1, "fpr": _div(fp, fp + tn, undefined),
    }


def _class_sets(pc: dict) -> dict[str, np.ndarray]:
    return {
        "all": np.ones_like(pc["support"], bool),
        "sklearn": (pc["support"] > 0) | (pc["predicted"] > 0),
        "present": pc["support"] > 0,
    }


def scalars(cm: np.ndarray, classes) -> dict[str, float]:
    """Flat ``{"accuracy", "macro_<set>.<metric>", "<class>.<metric>"}`` from ``cm``.

    Per-class ratios are NaN when undefined (for the bootstrap); macros use 0
    for undefined ratios, as the point estimates do.
    """
    total = cm.sum()
    out = {"accuracy": float(np.trace(cm) / total) if total else float("nan")}
    pc0 = per_class(cm, undefined=0.0)
    for set_name, sel in _class_sets(pc0).items():
        for m in MACRO:
            out[f"macro_{set_name}.{m}"] = float(pc0[m][sel].mean()) if sel.any() else float("nan")
    pcn = per_class(cm, undefined=np.nan)
    for i, c in enumerate(classes):
        for m in PER_CLASS:
            out[f"{c}.{m}"] = float(pcn[m][i])
    return out


def bootstrap_ci(
    y_true: np.ndarray, y_pred: np.ndarray, record: np.ndarray, classes, *,
    n_samples: int = 1000, seed: int = 0, level: float = 0.95,
) -> dict[str, list[float]]:
    """Percentile CIs ``{key: [lo, hi]}`` for every key of ``scalars``, resampling records.

    Args:
      y_true, y_pred: int[N]; record: str[N] record (patient) of each beat.
    """
    c = len(classes)
    recs, inv = np.unique(np.asarray(record), return_inverse=True)
    per_rec = np.zeros((len(recs), c, c), np.int64)
    np.add.at(per_rec, (inv, np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    samples: dict[str, list[float]] = {}
    for _ in range(n_samples):
        w = np.bincount(rng.integers(0, len(recs), len(recs)), minlength=len(recs))
        cm = np.tensordot(w, per_rec, axes=1)
        for k, v in scalars(cm, classes).items():
            samples.setdefault(k, []).append(v)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out = {}
    for k, vals in samples.items():
        a = np.asarray(vals)
        a = a[np.isfinite(a)]
        out[k] = [float(np.percentile(a, lo_q)), float(np.percentile(a, hi_q))] if len(a) else [float("nan")] * 2
    return out


def report(
    y_true: np.ndarray, y_pred: np.ndarray, classes, *, record: np.ndarray | None = None,
    n_bootstrap: int = 0, seed: int = 0, level: float = 0.95,
) -> dict:
    """Everything the paper and de Chazal report, as a JSON-ready dict.

    Args:
      y_true, y_pred: int[N] class indices; classes: C names.
      record: str[N] record of each beat (needed for the bootstrap).
      n_bootstrap: resamples over records (0: no CIs).

    Returns:
      ``{"n", "accuracy", "per_class": {name: {precision, recall, specificity,
      f1, fpr, support, se, ppv}}, "macro": {all|sklearn|present: {...}},
      "classes_present", "confusion", "confusion_row_normalised", "ci"}``.
    """
    classes = list(classes)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    pc = per_class(cm)
    sets = _class_sets(pc)
    out = {
        "n": int(cm.sum()),
        "accuracy": float(np.trace(cm) / cm.sum()) if cm.sum() else float("nan"),
        "per_class": {
            c: {
                **{m: float(pc[m][i]) for m in PER_CLASS},
                "se": float(pc["recall"][i]), "ppv": float(pc["precision"][i]),
                "support": int(pc["support"][i]), "predicted": int(pc["predicted"][i]),
            }
            for i, c in enumerate(classes)
        },
        "macro": {
            s: {m: float(pc[m][sel].mean()) if sel.any() else float("nan") for m in MACRO}
            for s, sel in sets.items()
        },
        "macro_classes": {s: [c for c, k in zip(classes, sel) if k] for s, sel in sets.items()},
        "confusion": cm.tolist(),
        "confusion_row_normalised": _div(cm, cm.sum(1, keepdims=True), 0.0).tolist(),
        "ci": {},
    }
    if n_bootstrap:
        if record is None:
            raise ValueError("the bootstrap over records needs record")
        out["ci"] = bootstrap_ci(y_true, y_pred, record, classes, n_samples=n_bootstrap, seed=seed, level=level)
        out["ci_level"] = level
        out["ci_samples"] = n_bootstrap
    return out


def format_table(rep: dict) -> str:
    """A plain-text table: per class and macro rows, CIs where computed."""
    ci = rep.get("ci", {})

    def cell(v, key=None):
        s = f"{v:.3f}" if isinstance(v, float) and np.isfinite(v) else "  -  "
        if key and key in ci and np.all(np.isfinite(ci[key])):
            s += f" [{ci[key][0]:.3f},{ci[key][1]:.3f}]"
        return s

    w = 22 if ci else 7
    cols = ("precision", "recall", "specificity", "f1")
    lines = [f"{'class':>12} {'support':>8} " + " ".join(f"{c:>{w}}" for c in cols)]
    for c, d in rep["per_class"].items():
        lines.append(f"{c:>12} {d['support']:>8} " + " ".join(f"{cell(d[m], f'{c}.{m}'):>{w}}" for m in cols))
    for s in MACRO_SETS:
        d = rep["macro"][s]
        lines.append(f"{'macro_' + s:>12} {'':>8} " + " ".join(f"{cell(d[m], f'macro_{s}.{m}'):>{w}}" for m in cols))
    lines.append(f"accuracy {cell(rep['accuracy'], 'accuracy')}  (n={rep['n']})")
    return "\n".join(lines)
