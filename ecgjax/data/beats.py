"""Beat windows from one record: pure numpy, no Python loop per beat.

Shape vocabulary (see ``ecgjax.types``): ``S`` samples in a record, ``L`` leads,
``A`` annotations, ``N`` beats, ``T`` samples in a beat window.

The two window shapes the protocols use:

* ``midpoint`` (Jones et al. 2020): from half-way to the previous boundary
  annotation to half-way to the next one, ``[prev + (cur-prev)//2,
  cur + (next-cur)//2)``; the R position inside the window is
  ``ceil((cur - prev) / 2)``. Windows longer than ``max_len`` are dropped and
  the rest are zero-padded on the right to ``max_len``.
* ``fixed``: ``before`` samples before R and ``after`` samples after it
  (the R sample itself is the first of the ``after`` part), so ``r = before``
  for every beat. Samples beyond the record's ends are zero and marked invalid.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Beat annotation codes of the MIT/PhysioNet annotation standard
# (wfdb.io.annotation's "beat" codes). Everything else (+ ~ | " x ! [ ] ...)
# is a non-beat mark.
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


@dataclasses.dataclass(frozen=True)
class RecordBeats:
    """Beats of one record, before labels are mapped to class indices.

    Attributes:
      x: f32[N, T, L] windows, zero outside each beat's valid part.
      lo, hi: i32[N] the valid (real-signal) samples of a window are
        ``lo <= t < hi``; the rest is zero padding.
      r: i32[N] R-peak (annotation) position inside the window.
      sample: i64[N] annotation sample index in the record.
      symbol: U1[N] the original annotation symbol.
      rr_prev: i32[N] samples to the previous beat annotation (0 if none).
      rr_next: i32[N] samples to the next beat annotation (0 if none).
    """

    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    r: np.ndarray
    sample: np.ndarray
    symbol: np.ndarray
    rr_prev: np.ndarray
    rr_next: np.ndarray


def beat_rr(ann_samples: np.ndarray, ann_symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RR intervals (samples) to the previous and next *beat* annotation.

    Args:
      ann_samples: i64[A] annotation sample indices, sorted.
      ann_symbols: U[A] annotation symbols.

    Returns:
      (rr_prev, rr_next): i64[A] each; the distance to the previous and next
      beat annotation in file order, 0 where there is no such beat. Non-beat
      annotations get the distances to the beats around them.
    """
    ann_samples = np.asarray(ann_samples, np.int64)
    is_beat = np.isin(ann_symbols, list(BEAT_SYMBOLS))
    bs = ann_samples[is_beat]
    if len(bs) == 0:
        zero = np.zeros(len(ann_samples), np.int64)
        return zero, zero.copy()
    # Neighbours are found by annotation order, not by sample value, so two beats
    # on the same sample are each other's neighbours (RR 0).
    # last_i: index into bs of the last beat at or before each annotation (in file order).
    last_i = np.cumsum(is_beat) - 1
    prev_i = np.where(is_beat, last_i - 1, last_i)
    next_i = last_i + 1
    rr_prev = np.where(prev_i >= 0, ann_samples - bs[np.clip(prev_i, 0, len(bs) - 1)], 0)
    rr_next = np.where(next_i < len(bs), bs[np.clip(next_i, 0, len(bs) - 1)] - ann_samples, 0)
    return rr_prev.astype(np.int64), rr_next.astype(np.int64)


def midpoint_bounds(
    ann_samples: np.ndarray, *, skip_first_last: bool, n_samples: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window bounds half-way to the neighbouring boundary annotations.

    Args:
      ann_samples: i64[A] boundary annotation samples, sorted.
      skip_first_last: if True, the first and last annotation get no window
        (``ok`` is False); otherwise a missing neighbour is replaced by the
        mirror of the other one (``prev = 2*s[0] - s[1]``, ``next = 2*s[-1] -
        s[-2]``) and the window is then clipped to ``[0, n_samples)``.
      n_samples: S, the record length.

    Returns:
      (start, end, ok): i64[A], i64[A], bool[A]; the window is [start, end)
      and, where ``ok``, ``start <= ann_samples < end``.
    """
    s = ann_samples.astype(np.int64)
    a = len(s)
    prev = np.empty(a, np.int64)
    nxt = np.empty(a, np.int64)
    if a:
        prev[1:] = s[:-1]
        nxt[:-1] = s[1:]
        # Mirror the missing neighbour (only used when not skipping).
        prev[0] = s[0] - (s[1] - s[0] if a > 1 else 0)
        nxt[-1] = s[-1] + (s[-1] - s[-2] if a > 1 else 0)
    start = prev + (s - prev) // 2
    end = s + (nxt - s) // 2
    ok = np.ones(a, bool)
    if skip_first_last and a:
        ok[0] = ok[-1] = False
    start = np.clip(start, 0, n_samples)
    end = np.clip(end, 0, n_samples)
    # The window must hold its own annotation. This fails only for a lone
    # annotation (no neighbour to mirror) and for the earlier of two
    # annotations on one sample, whose window would end at its R.
    ok &= (start <= s) & (s < end)
    return start, end, ok


def valid_mask(lo: np.ndarray, hi: np.ndarray, width: int) -> np.ndarray:
    """bool[N, T]: ``lo[n] <= t < hi[n]``."""
    t = np.arange(width)[None, :]
    return (t >= lo[:, None]) & (t < hi[:, None])


def gather_windows(
    signal: np.ndarray, start: np.ndarray, length: np.ndarray, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cut right-zero-padded windows out of a record, all beats at once.

    Args:
      signal: f[S, L] the record.
      start: i64[N] first sample of each window (may be negative).
      length: i64[N] number of samples of each window (``<= width``).
      width: T, the padded window length.

    Returns:
      (x, lo, hi): f32[N, T, L], i32[N], i32[N]. Samples outside ``[0, S)`` or
      past ``length`` are zero; the valid ones are ``lo <= t < hi``.
    """
    n_samples, n_leads = signal.shape
    start = np.asarray(start, np.int64)
    lo = np.clip(-start, 0, width)
    hi = np.clip(np.minimum(length, n_samples - start), lo, width)
    # Zero-pad the record by `width` on both sides: every window is then a plain
    # slice of it (no index array, no clipping), and samples outside the record
    # are already zero.
    padded = np.zeros((n_samples + 2 * width, n_leads), np.float32)
    padded[width : width + n_samples] = signal
    view = np.lib.stride_tricks.sliding_window_view(padded, width, axis=0)  # [S + width + 1, L, T]
    x = view[np.clip(start + width, 0, n_samples + width)].transpose(0, 2, 1)  # [N, T, L]
    x = np.ascontiguousarray(x)
    x[np.arange(width)[None, :] >= hi[:, None]] = 0  # past the window's end
    return x, lo.astype(np.int32), hi.astype(np.int32)


def extract_record_beats(
    signal: np.ndarray,
    ann_samples: np.ndarray,
    ann_symbols: np.ndarray,
    *,
    keep_symbols: frozenset[str],
    window: str,
    boundary: str = "beats",
    skip_first_last: bool = True,
    max_len: int | None = 430,
    before: int = 0,
    after: int = 0,
) -> RecordBeats:
    """All labelled beat windows of one record.

    Args:
      signal: f[S, L] samples in physical units.
      ann_samples: i64[A] annotation samples (sorted, as in the .atr file).
      ann_symbols: U[A] annotation symbols.
      keep_symbols: symbols that become beats in the output (case-exact).
      window: ``"midpoint"`` or ``"fixed"``.
      boundary: for ``midpoint``: ``"beats"`` uses only beat annotations as
        neighbours (non-beat marks removed first, as the paper describes);
        ``"all"`` keeps every annotation as a boundary (the authors' code).
      skip_first_last: for ``midpoint``: the first and last boundary
        annotation of the record get no window.
      max_len: for ``midpoint``: windows longer than this are dropped, the
        rest padded to it; ``None`` pads to the longest window.
      before, after: for ``fixed``: samples before R and from R on.

    Returns:
      RecordBeats for the kept beats, in annotation order.
    """
    ann_samples = np.asarray(ann_samples, np.int64)
    ann_symbols = np.asarray(ann_symbols).astype("U1") if len(ann_symbols) else np.zeros(0, "U1")
    n_samples = signal.shape[0]
    rr_prev_all, rr_next_all = beat_rr(ann_samples, ann_symbols)

    if window == "midpoint":
        if boundary == "beats":
            bmask = np.isin(ann_symbols, list(BEAT_SYMBOLS))
        elif boundary == "all":
            bmask = np.ones(len(ann_samples), bool)
        else:
            raise ValueError(f"boundary must be 'beats' or 'all', got {boundary!r}")
        bs, bsym = ann_samples[bmask], ann_symbols[bmask]
        rrp, rrn = rr_prev_all[bmask], rr_next_all[bmask]
        start, end, ok = midpoint_bounds(bs, skip_first_last=skip_first_last, n_samples=n_samples)
        length = end - start
        keep = ok & np.isin(bsym, list(keep_symbols))
        if max_len is not None:
            keep &= length <= max_len
        width = max_len if max_len is not None else int(length[keep].max(initial=1))
        start, length, bs, bsym, rrp, rrn = (a[keep] for a in (start, length, bs, bsym, rrp, rrn))
        r = bs - start
    elif window == "fixed":
        keep = np.isin(ann_symbols, list(keep_symbols))
        bs, bsym = ann_samples[keep], ann_symbols[keep]
        rrp, rrn = rr_prev_all[keep], rr_next_all[keep]
        width = before + after
        start = bs - before
        length = np.full(len(bs), width, np.int64)
        r = np.full(len(bs), before, np.int64)
    else:
        raise ValueError(f"window must be 'midpoint' or 'fixed', got {window!r}")

    x, lo, hi = gather_windows(signal, start, length, width)
    return RecordBeats(
        x=x,
        lo=lo,
        hi=hi,
        r=r.astype(np.int32),
        sample=bs.astype(np.int64),
        symbol=bsym.astype("U1"),
        rr_prev=rrp.astype(np.int32),
        rr_next=rrn.astype(np.int32),
    )


NORMALISATIONS = ("minmax_beat", "minmax_lead", "zscore_lead", "none")


def normalise(x: np.ndarray, valid: np.ndarray, method: str) -> np.ndarray:
    """Per-beat scaling of windows.

    Args:
      x: f32[N, T, L] windows, zero where not valid.
      valid: bool[N, T] real-signal mask.
      method: one of
        ``"minmax_beat"``: the paper's, (x - min)/(max - min) over all T*L
        values of a beat *including the zero padding* (so padding becomes a
        beat-specific level); a constant beat is left unchanged.
        ``"minmax_lead"``: per lead over the valid samples only, padding kept 0.
        ``"zscore_lead"``: per lead (x - mean)/std over valid samples, padding 0.
        For both, a lead that is constant over the valid samples becomes 0.
        ``"none"``: unchanged.

    Returns:
      f32[N, T, L].
    """
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose {', '.join(NORMALISATIONS)}")
    x = x.astype(np.float32, copy=True)
    if method == "none":
        return x
    if method == "minmax_beat":
        lo = x.min(axis=(1, 2), keepdims=True)
        rng = x.max(axis=(1, 2), keepdims=True) - lo
        flat = rng == 0
        x -= lo
        x /= np.where(flat, 1, rng)
        x += np.where(flat, lo, 0)  # a constant beat is left unchanged
        return x
    m = valid[..., None]
    # Statistics over valid samples only, accumulated in float64. A lead whose
    # valid samples are all equal (flat, saturated, or none valid) maps to 0
    # instead of amplifying rounding error (a float32 mean of a constant is not
    # exact, so its "std" is ~1e-8, not 0).
    lo = np.where(m, x, np.inf).min(axis=1, keepdims=True)
    hi = np.where(m, x, -np.inf).max(axis=1, keepdims=True)
    varies = hi > lo
    if method == "minmax_lead":
        x -= np.where(varies, lo, 0).astype(np.float32)
        x /= np.where(varies, hi - lo, 1).astype(np.float32)
    else:  # zscore_lead
        cnt = np.maximum(m.sum(axis=1, keepdims=True), 1)
        mean = (np.where(m, x, 0).sum(axis=1, keepdims=True, dtype=np.float64) / cnt).astype(np.float32)
        x -= mean
        var = (np.where(m, x, 0) ** 2).sum(axis=1, keepdims=True, dtype=np.float64) / cnt
        x /= np.sqrt(np.where(varies & (var > 0), var, 1)).astype(np.float32)
    x[~(m & varies)] = 0
    return x
