"""Library functions behind ``ecgjax explain`` / ``ecgjax profile`` (the CLI only parses flags).

* :func:`explain_run`: attribute chosen beats of a BeatSet with one method and
  write ``<out_dir>/<name>/class_<c>.npz`` (grouped by true label) plus ``meta.json``;
  a folder holding another method's, target's or hyperparameters' maps is not overwritten.
* :func:`profile_run`: read those files back one class at a time, turn maps
  into 0.1 s segment values, and write per-class profiles, group comparisons
  and figures. Only segment values (N x 48 floats) are held, never all maps.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ecgjax.errors import ConfigError

log = logging.getLogger(__name__)

TRANSFORMS = ("signed", "abs", "relu", "paper")


def transform_maps(maps: np.ndarray, how: str) -> np.ndarray:
    """The one place a signed map becomes what the analysis summarises.

    ``signed`` (as is), ``abs`` (|.|), ``relu`` (max(., 0)), ``paper`` (|.| then
    min-max per beat over T*L values, the keras-vis map of Jones et al. 2020).
    maps: f32[N, T, L] -> f32[N, T, L].
    """
    if how == "signed":
        return maps
    if how == "abs":
        return np.abs(maps)
    if how == "relu":
        return np.maximum(maps, 0)
    if how == "paper":
        from ecgjax.attribution.layer import jones2020_paper_map

        return jones2020_paper_map(maps)
    raise ValueError(f"transform must be one of {TRANSFORMS}, got {how!r}")


def explain_run(model: Any, beats, idx: np.ndarray, method, out_dir: str | os.PathLike, *, target: Any = "label",
                y_pred: np.ndarray | None = None, key=None, batch_size: int = 256, memory_budget_bytes: int | None = None,
                name: str | None = None, overwrite: bool = False) -> dict:
    """Attribute ``beats.x[idx]`` and write per-class npz files (grouped by true label).

    Args:
      model: ``(graphdef, state)`` / ``(make_fns, params)`` / ``Fns`` (see ``attribute_dataset``).
      beats: a ``BeatSet``; idx: i64[M] beats to explain (e.g. ``split.test``).
      method: an ``AttributionMethod`` (``ecgjax.attribution.get(name, **hp)``).
      out_dir: files go to ``out_dir/<name>/`` (``name`` defaults to ``method.name``).
      target: "label", "pred", a class index or "all" (as ``attribute_dataset``).
      overwrite: replace a folder whose ``meta.json`` records another method, target,
        hyperparameters or beat count (otherwise a ``ConfigError``; the same settings
        are recomputed in place).
      y_pred: optional i32[M] stored predictions to check against the model's
        (a mismatch means the wrong weights or inputs: raises).
    Returns:
      {"dir", "files", "beats_per_s", "n"}; the npz ``index`` holds indices into ``beats``.
    """
    from ecgjax.attribution.runner import attribute_dataset
    from ecgjax.io import atomic_write_json, environment_info

    idx = np.asarray(idx)
    d = Path(out_dir) / (name or method.name)
    settings = {"method": method.name, "hparams": {k: repr(v) for k, v in vars(method).items()}, "target": str(target),
                "n": int(len(idx))}
    if (d / "meta.json").exists() and not overwrite:
        old = json.loads((d / "meta.json").read_text())
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            raise ConfigError(f"{d} already holds other attributions ({', '.join(f'{k}: {a!r} there, {b!r} now' for k, (a, b) in diff.items())}); "
                              "not overwritten: choose another folder name, or overwrite on purpose (--force)")
    res = attribute_dataset(model, beats.x[idx], target, method, y=beats.y[idx], key=key, batch_size=batch_size,
                            memory_budget_bytes=memory_budget_bytes, out_dir=d, keep_maps=False, index=idx)
    if y_pred is not None and not np.array_equal(np.asarray(y_pred), res.pred):
        bad = int(np.sum(np.asarray(y_pred) != res.pred))
        raise ValueError(f"{bad} of {len(idx)} stored predictions differ from the model's: wrong weights or inputs?")
    meta = {**settings, "classes": list(beats.classes), "protocol": beats.protocol, "fs": beats.fs,
            "beats_per_s": res.beats_per_s, "batch_size": res.batch_size, "n_devices": res.n_devices,
            "files": {int(c): p.name for c, p in res.files.items()}, "environment": environment_info()}
    atomic_write_json(d / "meta.json", meta)
    log.info("explained %d beats with %s -> %s (%.1f beats/s)", len(idx), method.name, d, res.beats_per_s)
    return {"dir": d, "files": res.files, "beats_per_s": res.beats_per_s, "n": len(idx)}


def profile_run(attr_dir: str | os.PathLike, beats, out_dir: str | os.PathLike, *, transform: str = "abs", reduce: str = "mean",
                mode: str = "valid", n_boot: int = 1000, seed: int = 0, min_n: int = 5, figures: bool = True) -> dict:
    """Segment profiles, comparisons and figures from the npz files of :func:`explain_run`.

    The beats are those that were explained (the test beats when ``explain_run``
    got ``split.test``). Groups: by true label (profiles); correct vs incorrect
    per class; misclassified-as-k vs correctly classified k (at least ``min_n``
    beats per group).

    Writes ``profiles.npz``, ``comparisons.json``, ``segments.npz`` and (optionally)
    ``figures/*.png`` under ``out_dir``. Returns the comparisons summary.
    """
    from ecgjax.analysis import class_profiles, correct_vs_incorrect, mistaken_vs_class, segment_values
    from ecgjax.attribution.runner import load_class_npz
    from ecgjax.io import atomic_savez, atomic_write_json

    attr_dir, out_dir = Path(attr_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = json.loads((attr_dir / "meta.json").read_text())
    idx_all, vals, y_all, p_all = [], [], [], []
    labels = None
    for fname in sorted(meta["files"].values()):
        z = load_class_npz(attr_dir / fname)
        if z["maps"].ndim != 3:
            raise ValueError(f"{fname}: profiles need one map per beat (not target='all')")
        i = z["index"]
        m = transform_maps(z["maps"], transform)
        seg = segment_values(m, beats.r[i], beats.lo[i], beats.hi[i], beats.fs, reduce=reduce, mode=mode)
        labels = seg.labels
        idx_all.append(i), vals.append(seg.values), y_all.append(z["label"]), p_all.append(z["pred"])
    idx = np.concatenate(idx_all)
    v, y, p = np.concatenate(vals), np.concatenate(y_all), np.concatenate(p_all)
    classes = tuple(meta["classes"])
    prof = class_profiles(v, y, beats.record[idx], idx=np.arange(len(idx)), classes=classes, n_boot=n_boot, seed=seed)
    prof.save(out_dir / "profiles.npz")
    atomic_savez(out_dir / "segments.npz", index=idx, values=v, label=y, pred=p, labels=np.asarray(labels))
    comps: dict[str, Any] = {"transform": transform, "reduce": reduce, "mode": mode, "method": meta["method"],
                             "caveat": "beat-level tests; beats of one patient are correlated (see profiles' record-bootstrap CIs)",
                             "correct_vs_incorrect": {}, "mistaken_vs_class": {}}
    C = len(classes)
    for c in range(C):
        n_ok, n_bad = int(np.sum((y == c) & (p == c))), int(np.sum((y == c) & (p != c)))
        if n_ok >= min_n and n_bad >= min_n:
            comps["correct_vs_incorrect"][classes[c]] = correct_vs_incorrect(v, y, p, c, min_n=min_n).to_dict()
        for k in range(C):
            if k != c and np.sum((y == c) & (p == k)) >= min_n and np.sum((y == k) & (p == k)) >= min_n:
                comps["mistaken_vs_class"][f"{classes[c]}->{classes[k]}"] = mistaken_vs_class(v, y, p, c, k, min_n=min_n).to_dict()
    atomic_write_json(out_dir / "comparisons.json", comps)
    if figures:
        from ecgjax.analysis import plotting

        fig_dir = out_dir / "figures"
        plotting.save_figure(plotting.plot_class_heatmap(prof.median, labels, classes, count=prof.count,
                                                         title=f"{meta['method']} ({transform}, {reduce}): median per segment"),
                             fig_dir / "class_heatmap.png")
        for c in range(C):
            sel = y == c
            if not sel.any():
                continue
            groups = {f"{classes[c]} all": v[sel], "correct": v[sel & (p == c)], "incorrect": v[sel & (p != c)]}
            wrong = p[sel & (p != c)]
            if wrong.size:
                k = int(np.bincount(wrong, minlength=C).argmax())
                groups[f"correct {classes[k]} (mistaken for)"] = v[(y == k) & (p == k)]
            cmp = comps["correct_vs_incorrect"].get(classes[c])
            sig = None if cmp is None else (np.nan_to_num(np.asarray(cmp["q"], float), nan=1.0).ravel() < 0.05)
            plotting.save_figure(plotting.plot_group_lines(groups, labels, title=f"class {classes[c]}", significant=sig),
                                 fig_dir / f"class_{c}_lines.png")
    log.info("profiles of %d beats -> %s", len(idx), out_dir)
    return comps
