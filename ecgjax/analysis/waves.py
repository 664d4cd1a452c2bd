"""Attribution by wave (P, PR, QRS, ST, T) instead of by 0.1 s segment, vectorised.

The waves of each beat come from ``ecgjax.data.delineation`` (``Waves.bounds``,
window-relative). :func:`wave_masks` turns them into per-sample masks;
:func:`wave_values` reduces maps over them into ``f32[N, L, W]``, the same
layout as ``Segments.values`` (W = 5 waves instead of S segments), so
``class_profiles`` and the comparisons of ``ecgjax.analysis.compare`` take it
unchanged; :func:`wave_labels` names the columns (``MLII:QRS``). :func:`usable_wave_values`
does the same for the beats whose delineation passed its quality flag only, and counts per
class how many were left out (the glocal tables by wave; the expert rules filter the same way).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ecgjax.data.delineation import BOUNDS, WAVE_SPANS, WAVES

_REDUCE = ("mean", "sum", "absmean", "abssum")


def wave_masks(bounds: np.ndarray, T: int, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    """bool[N, W, T]: sample t of beat n lies in wave w (``WAVES`` order).

    Wave w of beat n is ``[bounds[n, a], bounds[n, b])`` with ``(a, b) = WAVE_SPANS[w]``,
    clipped to the window ``[0, T)`` and, when given, to the real samples ``lo <= t < hi``.
    A wave with a NaN bound, or whose end is not after its start, is empty. Consecutive
    waves share their boundary, so the masks of a beat never overlap when its bounds are
    ordered (``Waves.quality``).

    Args:
      bounds: f[N, 6] window-relative positions of ``BOUNDS`` (NaN: not found).
      T: window length.
      lo, hi: optional i[N] valid range of each beat.
    """
    b = np.asarray(bounds, np.float64)
    if b.ndim != 2 or b.shape[1] != len(BOUNDS):
        raise ValueError(f"bounds must be f[N, {len(BOUNDS)}], got shape {b.shape}")
    s = np.asarray(WAVE_SPANS)
    start, end = b[:, s[:, 0], None], b[:, s[:, 1], None]  # [N, W, 1]
    t = np.arange(T, dtype=np.float64)[None, None, :]
    with np.errstate(invalid="ignore"):
        m = (t >= start) & (t < end)  # NaN compares False: an absent wave is empty
    if (lo is None) != (hi is None):
        raise ValueError("give both lo and hi, or neither")
    if lo is not None:
        m &= (t >= np.asarray(lo)[:, None, None]) & (t < np.asarray(hi)[:, None, None])
    return m


def wave_values(maps: np.ndarray, masks: np.ndarray, *, reduce: str = "mean") -> np.ndarray:
    """Per beat, lead and wave: a reduction of the map over the wave's samples.

    Args:
      maps: f[N, T, L] attribution maps (or any per-sample signal).
      masks: bool[N, W, T] from :func:`wave_masks`.
      reduce: ``"mean"``, ``"sum"``, ``"absmean"`` or ``"abssum"`` (|.| first).

    Returns:
      f32[N, L, W]; NaN where the wave is empty (absent, or outside the window).
    """
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    maps = np.asarray(maps)
    masks = np.asarray(masks, bool)
    if maps.ndim != 3 or masks.ndim != 3 or masks.shape[0] != maps.shape[0] or masks.shape[2] != maps.shape[1]:
        raise ValueError(f"maps f[N, T, L] and masks bool[N, W, T] disagree: {maps.shape}, {masks.shape}")
    v = np.abs(maps) if reduce.startswith("abs") else maps
    total = np.einsum("nwt,ntl->nlw", masks.astype(np.float64), v.astype(np.float64))
    count = masks.sum(2)[:, None, :]  # [N, 1, W]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count if reduce.endswith("mean") else total
    return np.where(count > 0, out, np.nan).astype(np.float32)


def wave_labels(leads: int | Sequence[str]) -> tuple[str, ...]:
    """Flat column names in ``values.reshape(N, -1)`` order: ``MLII:P .. MLII:T, V1:P ..``.

    Args:
      leads: the lead names in the order of the L axis, or their number (then ``L1``, ``L2``, ...).
    """
    names = [f"L{i + 1}" for i in range(leads)] if isinstance(leads, int) else list(leads)
    return tuple(f"{ch}:{w}" for ch in names for w in WAVES)


def usable_wave_values(maps: np.ndarray, bounds: np.ndarray, quality: np.ndarray, label: np.ndarray, classes: Sequence[str],
                       lo: np.ndarray | None = None, hi: np.ndarray | None = None, *,
                       reduce: str = "mean") -> tuple[np.ndarray, np.ndarray, dict[str, list[int]]]:
    """:func:`wave_values` of the beats whose delineation passed the quality flag, and what was left out.

    Args:
      maps: f[N, T, L]; bounds: f[N, 6] window-relative wave bounds; quality: bool[N] (``Waves.quality``);
      label: i[N] class of each beat (positions in ``classes``); lo, hi: optional i[N] valid ranges.

    Returns:
      ``(values f32[K, L, W], keep bool[N], counts {class: [usable, all]})`` with K = ``keep.sum()``;
      ``counts`` holds every class with at least one beat.
    """
    keep = np.asarray(quality, bool)
    label = np.asarray(label)
    if keep.shape != label.shape or len(keep) != len(maps):
        raise ValueError(f"quality {keep.shape}, label {label.shape} and maps {np.shape(maps)} disagree")
    T = np.shape(maps)[1]
    masks = wave_masks(np.asarray(bounds)[keep], T, None if lo is None else np.asarray(lo)[keep],
                       None if hi is None else np.asarray(hi)[keep])
    values = wave_values(np.asarray(maps)[keep], masks, reduce=reduce)
    counts = {str(c): [int((keep & (label == i)).sum()), int((label == i).sum())] for i, c in enumerate(classes) if (label == i).any()}
    return values, keep, counts
