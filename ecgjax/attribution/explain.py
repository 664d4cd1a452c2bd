"""``explain_run``: one method on chosen beats of a BeatSet, stored as an ``Attributions`` folder.

The library function behind ``ecgjax explain`` and a study's explain stage (the
CLI only parses flags). Profiles of the stored maps:
``ecgjax.analysis.attribution_profiles.profile_run``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ecgjax.attribution.attributions import read_meta, write_meta
from ecgjax.attribution.gradients import IntegratedGradients
from ecgjax.errors import ConfigError

log = logging.getLogger(__name__)


def model_identity(run) -> dict:
    """What identifies the model of a loaded training run (``ecgjax.train.Run``) in stored attributions."""
    return {"name": run.config.model.name, "run": str(run.workdir), "checkpoint": run.checkpoint,
            "protocol": run.config.data.protocol, "split": run.config.data.split}


def check_folder_name(name: str, out_dir) -> None:
    """Refuse a folder name that would put maps outside ``out_dir`` (``../x``, ``a/b``, an absolute path)."""
    if Path(name).name != name or name in ("", ".", ".."):
        raise ConfigError(f"name {name!r} must be a plain folder name (no '/' or '..'): the maps stay inside {out_dir}")


def with_data_background(method, beats, background_idx: np.ndarray | None):
    """``method`` with a background drawn from ``beats.x[background_idx]`` when it asks for one by reference.

    A method with ``background_n > 0`` and no ``background`` (``expected_gradients``)
    gets ``background_sample(beats.x[background_idx], background_n, background_seed)``;
    without ``background_idx`` (the training beats) that is a ConfigError.
    """
    from ecgjax.attribution.shapley import background_sample

    names = {f.name for f in dataclasses.fields(method)}
    if "background_n" not in names or method.background_n == 0 or method.background is not None:
        return method
    if background_idx is None:
        raise ConfigError(f"method {method.name!r} asks for background_n={method.background_n} beats but no beats to draw "
                          "them from were given (explain_run(background_idx=split.train))")
    bg = background_sample(beats.x[np.asarray(background_idx)], method.background_n, method.background_seed)
    return dataclasses.replace(method, background=bg)


def explain_run(model: Any, beats, idx: np.ndarray, method, out_dir: str | os.PathLike, *, target: Any = "label",
                y_pred: np.ndarray | None = None, key=None, batch_size: int = 256, memory_budget: int | None = None,
                name: str | None = None, overwrite: bool = False, model_info: dict | None = None,
                background_idx: np.ndarray | None = None) -> dict:
    """Attribute ``beats.x[idx]`` and store them as an ``Attributions`` folder (class files by true label).

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
      model_info: the model's identity stored with the maps (:func:`model_identity`).
      background_idx: i64[K] beats a background set may be drawn from (the training
        part; :func:`with_data_background`). Methods with ``needs_r`` get each beat's R.
    Returns:
      {"dir", "files", "beats_per_s", "n"}; the class files' ``index`` holds indices into ``beats``.
    """
    from ecgjax.attribution.runner import attribute_dataset, model_info_of

    idx = np.asarray(idx)
    if name is not None:
        check_folder_name(name, out_dir)
    method = with_data_background(method, beats, background_idx).for_model(model_info_of(model))  # settings recorded resolved
    d = Path(out_dir) / (name or method.name)
    settings = {"hparams": {f.name: repr(getattr(method, f.name)) for f in dataclasses.fields(method)}, "target": str(target)}
    if (d / "meta.json").exists() and not overwrite:
        old = read_meta(d)
        now = {"method": method.name, **settings, "n": int(len(idx))}
        diff = {k: (old.get(k), v) for k, v in now.items() if old.get(k) != v}
        if diff:
            raise ConfigError(f"{d} already holds other attributions ({', '.join(f'{k}: {a!r} there, {b!r} now' for k, (a, b) in diff.items())}); "
                              "not overwritten: choose another folder name, or overwrite on purpose (--force)")
    from ecgjax.io import atomic_dir, environment_info

    with atomic_dir(d) as tmp:  # maps and meta.json replace the old folder together, or not at all
        res = attribute_dataset(model, beats.x[idx], target, method, y=beats.y[idx], key=key, batch_size=batch_size,
                                memory_budget=memory_budget, out_dir=tmp, index=idx, r=beats.r[idx])
        if y_pred is not None and not np.array_equal(np.asarray(y_pred), res.pred):
            bad = int(np.sum(np.asarray(y_pred) != res.pred))
            raise ValueError(f"{bad} of {len(idx)} stored predictions differ from the model's: wrong weights or inputs?")
        extra = {}
        if isinstance(method, IntegratedGradients) and target != "all":
            extra["completeness"] = _ig_completeness(model, beats, method, res.files.values())
        write_meta(tmp, method=method.name, settings=settings, model=model_info or {}, classes=beats.classes, fs=beats.fs,
                   n=len(idx), files=res.files, protocol=beats.protocol, beats_per_s=res.beats_per_s,
                   batch_size=res.batch_size, n_devices=res.n_devices, environment=environment_info(), **extra)
    log.info("explained %d beats with %s -> %s (%.1f beats/s)", len(idx), method.name, d, res.beats_per_s)
    return {"dir": d, "files": {c: d / Path(p).name for c, p in res.files.items()}, "beats_per_s": res.beats_per_s,
            "n": len(idx)}


def _ig_completeness(model: Any, beats, method, class_files) -> dict:
    """Integrated gradients' completeness error over the beats just explained (read back from
    their class files), summarized; a warning names the error when the median exceeds the tolerance."""
    from ecgjax.attribution.attributions import load_class_npz
    from ecgjax.attribution.sanity import completeness_error, completeness_summary

    if method.needs_key:  # a random baseline: its draw per beat is not stored, so sum(A) has no fixed reference
        return {"not_measured": f"baseline {method.baseline!r} is random"}
    i, total, target = [], [], []
    for a in map(load_class_npz, class_files):
        i.append(a["index"]), total.append(a["maps"].sum(axis=(1, 2), dtype=np.float64)), target.append(a["target"])
    i = np.concatenate(i)
    x = beats.x[i]
    err = completeness_error(model, x, np.asarray(method.baseline_for(x)), np.concatenate(target), np.concatenate(total))
    out = completeness_summary(err, method.steps)
    msg = (f"integrated_gradients: median completeness error {100 * out['median_rel_error']:.2f}% over {out['n']} beats "
           f"with steps={method.steps}, baseline={method.baseline} (|sum of attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)|)")
    if out["ok"]:
        log.info(msg)
    else:
        log.warning(f"{msg}: above the {100 * out['tolerance']:.0f}% tolerance; raise steps (--hp steps=N), or, if that "
                    "does not lower it (the model's output changes sharply somewhere along the path), choose another "
                    "baseline (--hp baseline=blurred)")
    return out
