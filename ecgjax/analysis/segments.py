"""0.1 s segments counted outward from the R peak, per lead (the paper's 48 columns), vectorised.

For beat n with R at ``r[n]``, segment length ``w = to_samples(seg_s, fs)``
(0.1 s at 360 Hz = 36 samples) and ``k = 1..K`` (K = ``n_per_side``):

* ``-k`` covers ``[r - k w, r - (k-1) w)``;  ``+k`` covers ``[r + (k-1) w, r + k w)``.

Columns per lead are ordered ``-K .. -1, +1 .. +K``, leads in the order of the L
axis: the paper's ``-A12..-A1, +A1..+A12, -B12..-B1, +B1..+B12``. Columns are
named after the leads (``MLII-12 .. MLII+12, V1-12 ..``, names from
``BeatSet.lead_axis``), not A/B, which would clash with the class A.

Two policies for samples outside the beat's real signal:

* ``mode="valid"`` (default): only samples with ``lo <= t < hi`` (and inside
  the window) are used. ``coverage`` = used / w. A segment with coverage below
  ``min_coverage`` (default 1.0: the whole segment must be real signal) is
  **NaN** - excluded, never silently averaged over padding.
* ``mode="paper"`` (reference_pipeline §5.2): segments clipped to ``[0, T)``
  only, **including the zero-padded tail**; a segment is NaN only when empty.

Reductions over a segment's used samples: ``"mean"``, ``"max"``, ``"absmean"`` (mean of |.|).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from ecgjax import timebase

_REDUCE = ("mean", "max", "absmean")
_MODES = ("valid", "paper")


@dataclasses.dataclass(frozen=True)
class Segments:
    """Per-beat segment values.

    Attributes:
      values: f32[N, L, S] (S = 2 K), NaN where excluded.
      coverage: f32[N, L, S] fraction of each segment's w samples that were used.
      labels: the S x L column names in flat (lead-major) order, e.g. "MLII-12".
      offsets_s: f64[S] segment start relative to R, seconds (-K w / fs ... (K-1) w / fs).
      seg_len: w, samples per segment.
    """

    values: np.ndarray
    coverage: np.ndarray
    labels: tuple[str, ...]
    offsets_s: np.ndarray
    seg_len: int

    def flat(self) -> np.ndarray:
        """f32[N, L*S] in the paper's column order."""
        return self.values.reshape(self.values.shape[0], -1)


def segment_bounds(r: np.ndarray, w: int, n_per_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Unclipped segment bounds ``a, b``: i64[N, 2K] each, order -K..-1, +1..+K."""
    k = np.arange(n_per_side, 0, -1)
    pre_a = -k * w
    post_a = (np.arange(1, n_per_side + 1) - 1) * w
    a = np.asarray(r, np.int64)[:, None] + np.concatenate([pre_a, post_a])[None]
    return a, a + w


def segment_labels(leads: int | Sequence[str], n_per_side: int) -> tuple[str, ...]:
    """Flat column names ``MLII-12 .. MLII-1, MLII+1 .. MLII+12, V1-12 ...``.

    Args:
      leads: the lead names in the order of the L axis, or their number (then ``L1``, ``L2``, ...).
    """
    names = [f"L{i + 1}" for i in range(leads)] if isinstance(leads, int) else list(leads)
    out = []
    for ch in names:
        out += [f"{ch}-{k}" for k in range(n_per_side, 0, -1)] + [f"{ch}+{k}" for k in range(1, n_per_side + 1)]
    return tuple(out)


def segment_ids(r: np.ndarray, lo: np.ndarray, hi: np.ndarray, T: int, L: int, w: int, n_per_side: int) -> np.ndarray:
    """i32[N, T, L]: the flat segment (``lead * 2K + s``, as ``Segments.flat``) of each valid sample, -1 elsewhere.

    Only real samples (``lo <= t < hi``) inside the 2K segments around R get an id.
    """
    t = np.arange(T)[None, :]
    d = t - np.asarray(r)[:, None]  # [N, T]
    k = np.floor_divide(d, w)  # -K..-1 before R, 0..K-1 after
    s = k + n_per_side  # -K..-1 -> 0..K-1 and 0..K-1 (+1..+K) -> K..2K-1
    ok = (k >= -n_per_side) & (k < n_per_side) & (t >= np.asarray(lo)[:, None]) & (t < np.asarray(hi)[:, None])
    ids = np.where(ok[..., None], s[..., None] + np.arange(L)[None, None] * 2 * n_per_side, -1)
    return ids.astype(np.int32)


def segment_values(
    maps: np.ndarray,
    r: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fs: float,
    *,
    seg_s: float = 0.1,
    n_per_side: int = 12,
    reduce: str = "mean",
    mode: str = "valid",
    min_coverage: float = 1.0,
    lead_names: Sequence[str] | None = None,
    chunk: int = 4096,
) -> Segments:
    """Segment statistics of attribution maps (no Python loop over beats).

    Args:
      maps: f32[N, T, L] attribution (or any per-sample signal).
      r: i[N] R position in each window; lo, hi: i[N] valid samples ``lo <= t < hi``.
      fs: sampling rate (Hz); the segment length is ``to_samples(seg_s, fs)``.
      seg_s: segment length in seconds.
      n_per_side: K segments before and after R, per lead.
      reduce: "mean", "max" or "absmean".
      mode: "valid" or "paper" (module docstring).
      min_coverage: in "valid" mode, segments with a smaller covered fraction are NaN (0 < min_coverage <= 1).
      lead_names: L names for the column labels (``BeatSet.lead_axis()[0]``); default L1, L2, ...
      chunk: beats processed at once (memory: chunk x 2K x w x L values).

    Returns:
      :class:`Segments`.
    """
    if reduce not in _REDUCE:
        raise ValueError(f"reduce must be one of {_REDUCE}, got {reduce!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if not 0 < min_coverage <= 1:
        raise ValueError(f"min_coverage must be in (0, 1], got {min_coverage}")
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be f32[N, T, L], got shape {maps.shape}")
    N, T, L = maps.shape
    for name, v in (("r", r), ("lo", lo), ("hi", hi)):
        if np.shape(v) != (N,):
            raise ValueError(f"{name} must have shape ({N},), got {np.shape(v)}")
    w = timebase.to_samples(seg_s, fs)
    if w < 1:
        raise ValueError(f"segment of {seg_s} s at {fs} Hz has no samples")
    S = 2 * n_per_side
    a_all, _ = segment_bounds(r, w, n_per_side)
    if mode == "paper":
        lo_eff = np.zeros(N, np.int64)
        hi_eff = np.full(N, T, np.int64)
    else:
        lo_eff = np.clip(np.asarray(lo, np.int64), 0, T)
        hi_eff = np.clip(np.asarray(hi, np.int64), 0, T)
    values = np.empty((N, L, S), np.float32)
    coverage = np.empty((N, L, S), np.float32)
    off = np.arange(w)
    for s0 in range(0, N, chunk):
        s1 = min(s0 + chunk, N)
        idx = a_all[s0:s1, :, None] + off  # [n, S, w]
        ok = (idx >= lo_eff[s0:s1, None, None]) & (idx < hi_eff[s0:s1, None, None])
        v = maps[np.arange(s0, s1)[:, None, None], np.clip(idx, 0, T - 1)]  # [n, S, w, L]
        v = v.astype(np.float32)
        if reduce == "absmean":
            v = np.abs(v)
        cnt = ok.sum(-1)  # [n, S]
        okl = ok[..., None]
        if reduce == "max":
            with np.errstate(invalid="ignore"):
                red = np.where(okl, v, -np.inf).max(2)
        else:
            red = np.where(okl, v, 0).sum(2) / np.maximum(cnt, 1)[..., None]
        cov = (cnt / w).astype(np.float32)
        keep = cnt > 0 if mode == "paper" else (cnt > 0) & (cov >= min_coverage - 1e-9)
        red = np.where(keep[..., None], red, np.nan)
        values[s0:s1] = red.transpose(0, 2, 1)
        coverage[s0:s1] = np.broadcast_to(cov[:, None, :], (s1 - s0, L, S))
    offsets = np.concatenate([-np.arange(n_per_side, 0, -1), np.arange(n_per_side)]) * w / fs
    if lead_names is not None and len(lead_names) != L:
        raise ValueError(f"lead_names has {len(lead_names)} names for {L} leads")
    return Segments(values, coverage, segment_labels(L if lead_names is None else lead_names, n_per_side), offsets, w)
