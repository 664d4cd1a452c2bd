"""From stored ``Attributions`` to what the paper reports: segment values, per-class profiles, group comparisons.

* :func:`profile_attributions`: ``Attributions`` (one class at a time) ->
  :class:`AttributionProfiles` (typed; only segment values, N x L x S floats,
  are held, never all maps).
* :func:`profile_figures`: Figures 7 and 8 of a result.
* :func:`profile_run`: a stored folder in, ``profiles.npz``, ``segments.npz``,
  ``comparisons.json`` and ``figures/`` out (``ecgjax profile`` and studies).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np

from ecgjax.analysis.compare import Comparison, correct_vs_incorrect, mistaken_vs_class
from ecgjax.analysis.profiles import Profiles, class_profiles
from ecgjax.analysis.segments import segment_labels, segment_values
from ecgjax.analysis.transforms import VALUE_LABELS, transform_maps
from ecgjax.analysis.waves import wave_labels, wave_masks, wave_values
from ecgjax.errors import ConfigError

log = logging.getLogger(__name__)

CAVEAT = "beat-level tests; beats of one patient are correlated (see profiles' record-bootstrap CIs)"


@dataclasses.dataclass(frozen=True)
class AttributionProfiles:
    """One method's maps summarized by 0.1 s segment.

    Attributes:
      method: the method's name; transform, reduce, mode: how maps became segment values.
      classes: class names.
      index: i64[N] beat ids; label, pred: i32[N].
      values: f32[N, L, S] segment values (NaN where excluded); labels: the L*S column names.
      profiles: per true class.
      correct_vs_incorrect: {class name: Comparison} (classes with >= ``min_n`` beats in both groups).
      mistaken_vs_class: {"c->k": Comparison} (beats of c taken for k vs correctly classified k).
      lead_names, lead_note: the leads the columns are named after (``BeatSet.lead_axis``).
      min_n: beats each group of a comparison needed.
      not_compared: ``{"correct_vs_incorrect": {class: {"n_correct", "n_incorrect"}},
        "mistaken_vs_class": {"c->k": {"n_mistaken", "n_correct_k"}}}``: every class and
        confusion present among the beats but too small to compare, with its counts.
    """

    method: str
    transform: str
    reduce: str
    mode: str
    classes: tuple[str, ...]
    index: np.ndarray
    label: np.ndarray
    pred: np.ndarray
    values: np.ndarray
    labels: tuple[str, ...]
    profiles: Profiles
    correct_vs_incorrect: dict[str, Comparison]
    mistaken_vs_class: dict[str, Comparison]
    lead_names: tuple[str, ...]
    lead_note: str
    min_n: int
    not_compared: dict

    def comparisons_dict(self) -> dict:
        """The JSON form of the comparisons (``comparisons.json``)."""
        return {"transform": self.transform, "reduce": self.reduce, "mode": self.mode, "method": self.method, "caveat": CAVEAT,
                "lead_names": list(self.lead_names), "lead_note": self.lead_note, "min_n": self.min_n,
                "correct_vs_incorrect": {k: c.to_dict() for k, c in self.correct_vs_incorrect.items()},
                "mistaken_vs_class": {k: c.to_dict() for k, c in self.mistaken_vs_class.items()},
                "not_compared": self.not_compared}

    def save(self, out_dir: str | os.PathLike) -> None:
        """``profiles.npz``, ``segments.npz`` and ``comparisons.json`` in ``out_dir``, each atomically."""
        from ecgjax.io import atomic_savez, atomic_write_json

        out_dir = Path(out_dir)
        self.profiles.save(out_dir / "profiles.npz")
        atomic_savez(out_dir / "segments.npz", index=self.index, values=self.values, label=self.label, pred=self.pred,
                     labels=np.asarray(self.labels))
        atomic_write_json(out_dir / "comparisons.json", self.comparisons_dict())


def profile_attributions(parts: Iterable, beats, *, transform: str = "abs", reduce: str = "mean", mode: str = "valid",
                         n_boot: int = 1000, seed: int = 0, min_n: int = 5, waves=None) -> AttributionProfiles:
    """Segment (or wave) values, profiles by true class and comparisons of the explained beats.

    Args:
      parts: ``Attributions`` (one, or an iterable such as ``Attributions.load_classes(dir)``),
        one map per beat (not target "all").
      beats: the BeatSet the attributions' ``index`` points into (R, valid range, record, fs).
      transform: ``ecgjax.analysis.transforms.TRANSFORMS``; reduce, mode: as ``segment_values``.
      min_n: beats needed in each group of a comparison.
      waves: ``ecgjax.data.delineation.Waves`` of all of ``beats`` (``load_waves(beats)``): the columns are
        then the waves P, PR, QRS, ST, T of each lead (``ecgjax.analysis.waves``; reduce "mean" or "sum",
        samples in the padding left out) instead of 0.1 s segments; ``mode`` is then ignored. Beats whose
        delineation failed its quality flag get NaN values (as an absent wave does).
    """
    from ecgjax.attribution.attributions import Attributions

    parts = [parts] if isinstance(parts, Attributions) else parts
    # Only the waveform leads are cut into segments: a model with RR features (rr_net) carries
    # them as trailing constant channels, whose attributions are per feature, not per segment.
    n_leads = len(next(iter(beats.lead_names.values()))) if beats.lead_names else beats.x.shape[-1]
    idx_all, vals, y_all, p_all = [], [], [], []
    first = None
    for a in parts:
        if a.maps.ndim != 3:
            raise ConfigError(f"{a.method}: profiles need one map per beat; these maps were made with target 'all' "
                              "(one per class): explain with target label, pred or a class")
        if a.maps.shape[-1] != n_leads + len(beats.rr_names) and a.maps.shape[-1] != n_leads:
            raise ConfigError(f"{a.method}: maps have {a.maps.shape[-1]} channels; the beats have {n_leads} leads and "
                              f"{len(beats.rr_names)} RR features: were they explained on another data set?")
        first = a if first is None else first
        i = a.index
        m = transform_maps(np.asarray(a.maps[..., :n_leads]), transform)
        if waves is None:
            v = segment_values(m, beats.r[i], beats.lo[i], beats.hi[i], beats.fs, reduce=reduce, mode=mode).values
        else:
            if len(waves) != len(beats):
                raise ValueError(f"waves has {len(waves)} rows, the beats {len(beats)}: pass load_waves(beats)")
            v = wave_values(m, wave_masks(waves.bounds[i], m.shape[1], beats.lo[i], beats.hi[i]), reduce=reduce)
            v[~np.asarray(waves.quality)[i]] = np.nan  # a failed delineation's waves are not trusted: no values
        idx_all.append(i), vals.append(v), y_all.append(a.label), p_all.append(a.pred)
    if first is None:
        raise ValueError("no attributions to profile")
    idx = np.concatenate(idx_all)
    lead_names, lead_note = beats.lead_axis(idx)
    v, y, p = np.concatenate(vals), np.concatenate(y_all), np.concatenate(p_all)
    labels = segment_labels(lead_names, v.shape[-1] // 2) if waves is None else wave_labels(lead_names)
    classes = tuple(first.classes)
    prof = class_profiles(v, y, beats.record[idx], idx=np.arange(len(idx)), classes=classes, n_boot=n_boot, seed=seed)
    cvi, mvc = {}, {}
    skipped: dict = {"correct_vs_incorrect": {}, "mistaken_vs_class": {}}
    C = len(classes)
    for c in range(C):
        n_ok, n_bad = int(np.sum((y == c) & (p == c))), int(np.sum((y == c) & (p != c)))
        if n_ok >= min_n and n_bad >= min_n:
            cvi[classes[c]] = correct_vs_incorrect(v, y, p, c, min_n=min_n)
        elif n_ok + n_bad:
            skipped["correct_vs_incorrect"][classes[c]] = {"n_correct": n_ok, "n_incorrect": n_bad}
        for k in range(C):
            n_as_k, n_k = int(np.sum((y == c) & (p == k))), int(np.sum((y == k) & (p == k)))
            if k == c or not n_as_k:
                continue
            if n_as_k >= min_n and n_k >= min_n:
                mvc[f"{classes[c]}->{classes[k]}"] = mistaken_vs_class(v, y, p, c, k, min_n=min_n)
            else:
                skipped["mistaken_vs_class"][f"{classes[c]}->{classes[k]}"] = {"n_mistaken": n_as_k, "n_correct_k": n_k}
    return AttributionProfiles(first.method, transform, reduce, mode if waves is None else "waves", classes, idx, y, p, v, labels, prof, cvi, mvc,
                               tuple(lead_names), lead_note, min_n, skipped)


def profile_figures(res: AttributionProfiles, fig_dir: str | os.PathLike) -> None:
    """Figure 7 (``class_heatmap.png``: median per class and segment) and Figure 8 per class
    (``class_<c>_lines.png``: all, correct, incorrect beats and the class they were taken for)."""
    from ecgjax.analysis import plotting

    fig_dir = Path(fig_dir)
    v, y, p, classes, labels = res.values, res.label, res.pred, res.classes, res.labels
    C = len(classes)
    value = f"{VALUE_LABELS[res.transform]}, segment {res.reduce}"
    plotting.save_figure(plotting.plot_class_heatmap(res.profiles.median, labels, classes, count=res.profiles.count,
                                                     value_label=f"median {value}",
                                                     title=f"{res.method} ({res.transform}, {res.reduce}): median per class and segment"),
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
        cmp = res.correct_vs_incorrect.get(classes[c])
        sig = None if cmp is None else (np.nan_to_num(np.asarray(cmp.q, float), nan=1.0).ravel() < 0.05)
        plotting.save_figure(plotting.plot_group_lines(groups, labels, title=f"true class {classes[c]}: {res.method}",
                                                       significant=sig, value_label=value),
                             fig_dir / f"class_{c}_lines.png")


def profile_run(attr_dir: str | os.PathLike, beats, out_dir: str | os.PathLike, *, figures: bool = True, **kw) -> AttributionProfiles:
    """:func:`profile_attributions` of a stored folder (read one class at a time), saved to ``out_dir``
    with (optionally) its figures under ``out_dir/figures``. ``kw``: as :func:`profile_attributions`."""
    from ecgjax.attribution.attributions import Attributions
    from ecgjax.io import atomic_dir

    with atomic_dir(out_dir) as tmp:  # a kill while drawing figures leaves the previous folder (or none)
        res = profile_attributions(Attributions.load_classes(attr_dir), beats, **kw)
        res.save(tmp)
        if figures:
            profile_figures(res, tmp / "figures")
    log.info("profiles of %d beats -> %s", len(res.index), out_dir)
    return res
