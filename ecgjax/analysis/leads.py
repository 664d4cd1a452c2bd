"""Relevance per lead and the class x lead matrix of Zhang et al. 2020 (rows sum to 1).

For each beat, a lead's relevance is the sum over its (valid) samples of the
transformed map; for each class, the mean over that class's beats; each class
row is then divided by its sum, giving each lead's share of the class's
relevance. Zhang et al.'s code sums the signed SHAP values of each lead over
time for the predicted class; ``transform="signed"`` does that (a row whose
signed sum is not positive has no shares: NaN), ``"abs"`` (the default) and
``"relu"`` give non-negative shares.

References: Zhang, Yang, Yuan & Zhang 2021, "Interpretable deep learning for
automatic diagnosis of 12-lead electrocardiogram" (iScience 24, 102373).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

_TRANSFORMS = ("abs", "relu", "signed")


@dataclasses.dataclass(frozen=True)
class LeadMatrix:
    """Class x lead relevance.

    Attributes:
      share: f64[C, L] each lead's share of the class's relevance; rows sum to 1
        (NaN rows: no beats, or a non-positive signed total).
      relevance: f64[C, L] mean per-beat lead relevance before normalising.
      count: i64[C] beats per class.
      classes: C row names; leads: L column names; transform: how maps were made non-negative.
    """

    share: np.ndarray
    relevance: np.ndarray
    count: np.ndarray
    classes: tuple[str, ...]
    leads: tuple[str, ...]
    transform: str


def lead_relevance(maps: np.ndarray, *, transform: str = "abs", lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """Per-beat relevance of each lead: f64[N, L].

    Args:
      maps: f[N, T, L] signed attribution maps.
      transform: "abs", "relu" or "signed", applied per sample before summing.
      lo, hi: optional i[N] valid samples ``lo <= t < hi`` (padding is left out).
    """
    if transform not in _TRANSFORMS:
        raise ValueError(f"transform must be one of {_TRANSFORMS}, got {transform!r}")
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 3:
        raise ValueError(f"maps must be f[N, T, L], got shape {maps.shape}")
    v = np.abs(maps) if transform == "abs" else (np.maximum(maps, 0) if transform == "relu" else maps)
    if (lo is None) != (hi is None):
        raise ValueError("give both lo and hi, or neither")
    if lo is not None:
        t = np.arange(maps.shape[1])
        ok = (t[None] >= np.asarray(lo)[:, None]) & (t[None] < np.asarray(hi)[:, None])  # [N, T]
        v = v * ok[:, :, None]
    return v.sum(1)


def class_lead_matrix(relevance: np.ndarray, groups: np.ndarray, classes: Sequence[str], leads: Sequence[str],
                      *, transform: str = "abs") -> LeadMatrix:
    """Zhang et al.'s class x lead matrix from per-beat lead relevance.

    Args:
      relevance: f[N, L] from :func:`lead_relevance`.
      groups: i[N] class of each beat (e.g. the predicted class whose map was computed, or the label).
      classes: C class names (``groups`` indexes them); leads: L lead names.
      transform: recorded in the result (the one ``relevance`` was made with).
    Returns:
      :class:`LeadMatrix`.
    """
    rel = np.asarray(relevance, np.float64)
    g = np.asarray(groups)
    C, L = len(classes), len(leads)
    if rel.ndim != 2 or rel.shape[1] != L:
        raise ValueError(f"relevance must be f[N, {L}] ({L} lead names given), got shape {rel.shape}")
    if g.shape != (rel.shape[0],):
        raise ValueError(f"groups must have shape ({rel.shape[0]},), got {g.shape}")
    if g.size and (g.min() < 0 or g.max() >= C):
        raise ValueError(f"groups must index the {C} classes, got range [{g.min()}, {g.max()}]")
    count = np.bincount(g, minlength=C).astype(np.int64)
    sums = np.zeros((C, L))
    np.add.at(sums, g, rel)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / count[:, None]
        total = mean.sum(1, keepdims=True)
        share = np.where(total > 0, mean / total, np.nan)
    return LeadMatrix(share, mean, count, tuple(classes), tuple(leads), transform)
