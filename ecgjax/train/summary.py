"""One Markdown table of finished training runs: ``ecgjax summarize WORKDIR... [--classes S,V]``.

Reads only each work folder's ``results.json`` (written by ``train_and_evaluate``),
so the numbers in docs and reports come from a command, not from copying.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from ecgjax.errors import EcgjaxError
from ecgjax.io import describe_device


def _finite(v) -> bool:
    return v is not None and math.isfinite(v)  # results.json stores NaN as null


def _cell(test: dict, value: float, key: str, pct: bool) -> str:
    if not _finite(value):
        return "-"
    k = 100.0 if pct else 1.0
    s = f"{k * value:.1f}" if pct else f"{value:.3f}"
    lo, hi = test.get("ci", {}).get(key) or (None, None)
    if _finite(lo) and _finite(hi):
        s += f" [{k * lo:.1f}, {k * hi:.1f}]" if pct else f" [{lo:.3f}, {hi:.3f}]"
    return s


# The macro averages results.json holds (``ecgjax.train.metrics.report``), in words.
MACRO_DEFINITIONS = {
    "sklearn": "the unweighted mean over the classes that are in the test set or predicted (sklearn's average='macro' "
               "without labels=; the paper's definition, reference §6); a class predicted but absent scores F1 = 0",
    "present": "the unweighted mean over the classes with test beats only",
    "all": "the unweighted mean over every class of the protocol (0 for classes neither present nor predicted)",
}


def headline_cells(test: dict) -> dict[str, str]:
    """Accuracy and the two macro F1s of a run's ``test`` metrics as ``summarize`` prints them (CIs in brackets)."""
    return {"accuracy": _cell(test, test["accuracy"], "accuracy", False),
            "macro F1 (sklearn)": _cell(test, test["macro"]["sklearn"]["f1"], "macro_sklearn.f1", False),
            "macro F1 (present)": _cell(test, test["macro"]["present"]["f1"], "macro_present.f1", False)}


def load_results(workdir: str | Path) -> dict:
    """The ``results.json`` of a finished run; a clear error when the run is not finished."""
    path = Path(workdir) / "results.json"
    if not path.is_file():
        raise EcgjaxError(f"{workdir}: no results.json (the run has not finished; `ecgjax train` resumes it)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise EcgjaxError(f"{path}: not valid JSON ({e})") from e


def summarize(workdirs, classes=()) -> str:
    """A Markdown table, one row per run.

    Columns: run, epochs run / configured, steps, wall time, device, test accuracy,
    macro F1 as sklearn and the paper define it and over the classes present
    (:data:`MACRO_DEFINITIONS`), then Se and +P (in %) of each of ``classes``;
    95% record-bootstrap CIs in brackets where the run computed them. Se of a class
    with no test beats and +P of a class never predicted are 0/0: ``n/a`` with the
    reason, not the 0 that the macro averages count them as.
    """
    head = ["run", "epochs", "steps", "wall", "device", "accuracy", "macro F1 (sklearn)", "macro F1 (present)"]
    for c in classes:
        head += [f"{c} Se %", f"{c} +P %"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for w in workdirs:
        r = load_results(w)
        t = r["test"]
        unknown = [c for c in classes if c not in t["per_class"]]
        if unknown:
            raise EcgjaxError(f"{w}: classes {unknown} not in this run's classes {list(t['per_class'])}")
        epochs = f"{r['epochs_run']} / {r['config']['train']['epochs']}" + (" (early stop)" if r.get("stopped_early") else "")
        cells = [r["name"], epochs, str(r["steps"]), f"{r['wall_time_s'] / 60:.0f} min", describe_device(r),
                 *headline_cells(t).values()]
        for c in classes:
            pc = t["per_class"][c]
            cells += [
                "n/a (no test beats)" if pc["support"] == 0 else _cell(t, pc["recall"], f"{c}.recall", True),
                "n/a (never predicted)" if pc["predicted"] == 0 else _cell(t, pc["precision"], f"{c}.precision", True),
            ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)
