"""RR-interval features per beat, from a record's annotations: pure numpy, causal.

The inter-patient methods that detect supraventricular beats (de Chazal et al.,
2004; Llamedo & Martinez, 2011; Mar et al., 2011) rest on prematurity: a beat's
RR interval against the rhythm around it. This module computes, per beat
annotation (every beat symbol of the record, not only the kept classes; in
file order), in seconds:

* ``pre``: RR to the previous beat (the first beat of a record takes its
  ``post``);
* ``post``: RR to the next beat (the next annotation is allowed to be seen, as
  in every published method; the last beat takes its ``pre``);
* ``local``: mean ``pre`` of the last ``local_beats`` beats, this one included
  (past beats only);
* ``long``: mean ``pre`` of the beats in the last ``long_s`` seconds, this one
  included (past only);
* reference-free local context (past beats only, this one excluded): ``prev``,
  the previous beat's ``pre`` (so ``pre / prev`` is the prematurity against
  the interval just before, without any running reference), and ``lmin`` /
  ``lmax``, the shortest and longest ``pre`` of the ``local_beats`` beats
  before this one (``lmax / lmin``: the local RR variability); the first beat
  takes its own ``pre``. They are not in ``DEFAULT_FEATURES`` (the ``aami_rr``
  protocol's): ``experiments/configs/aami_rr.py:localrr`` adds them;
* ``irreg``: the rhythm's irregularity before this beat, robust to isolated
  ectopic beats: the median, over the successive pairs of the ``local_beats``
  intervals before this beat (this beat's ``pre`` excluded), of the longer
  over the shorter interval of the pair (>= 1; 1 for the first two beats).
  An isolated premature beat makes two irregular pairs, which the median
  ignores while they are under half of the pairs; atrial fibrillation makes
  them all irregular, so its normal beats, irregular but not premature, are
  told from premature beats in a regular rhythm (docs/results.md, "Recipe
  changes gated on DS1"). Not in ``DEFAULT_FEATURES``:
  ``experiments/configs/aami_rr.py:irreg`` adds it;

and each of the four divided by the record's *running reference*
(``reference``): ``"median"``, the median ``pre`` of the last ``ref_beats``
beats (this one included), ``"upper75"``, their 75th percentile, or
``"mean"``, the mean ``pre`` of every beat so far: ``pre_norm``,
``post_norm``, ``local_norm``, ``long_norm``. Premature beats only shorten
intervals, so they fill the lower part of the window: the 75th percentile
stays on the sinus cycle while at least a quarter of the last ``ref_beats``
intervals are sinus-length, where the median follows an ectopic rhythm as soon
as it makes up half of them (``experiments/ds1_rr_screen.py``, synthetic
ectopic-dominant rhythms). The median (the aami_rr default) follows the
dominant rhythm, and neither a burst of premature beats nor a few long pauses
move it much; it ranked DS1's S beats best (leave-one-record-out screen and
the RR-only network's 5-fold CV inside DS1), but on DS2 it hides record 232's S
beats, which are most of that record's beats (docs/results.md §3).
No statistic looks at a record's future or at the whole record, so a test
beat's features are known when the next beat arrives. A ratio with a zero
reference (beats sharing one sample) is 1.

Shape vocabulary: ``A`` annotations, ``K`` beat annotations, ``N`` kept beats,
``F`` features.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ecgjax.data.beats import BEAT_SYMBOLS

FEATURES = ("pre", "post", "local", "long", "pre_norm", "post_norm", "local_norm", "long_norm", "prev", "lmin", "lmax",
            "irreg")
# The aami_rr protocol's features (the first recipe's 8).
DEFAULT_FEATURES = FEATURES[:8]
REFERENCES = ("median", "mean", "upper75")


def _window_mean(v: np.ndarray, start: np.ndarray) -> np.ndarray:
    """f64[K]: mean of ``v[start[i] : i + 1]`` for every i (``start <= i``)."""
    c = np.concatenate([[0.0], np.cumsum(v, dtype=np.float64)])
    i = np.arange(len(v))
    return (c[i + 1] - c[start]) / (i + 1 - start)


def running_median(v: np.ndarray, k: int) -> np.ndarray:
    """f64[K]: median of ``v[max(0, i - k + 1) : i + 1]`` for every i (past and present only)."""
    return running_percentile(v, k, 50.0)


def running_percentile(v: np.ndarray, k: int, q: float) -> np.ndarray:
    """f64[K]: the ``q``-th percentile (linear interpolation, as ``np.percentile``) of
    ``v[max(0, i - k + 1) : i + 1]`` for every i (past and present only)."""
    v = np.asarray(v, np.float64)
    if not len(v):
        return v.copy()
    padded = np.concatenate([np.full(k - 1, np.nan), v])
    return np.nanpercentile(np.lib.stride_tricks.sliding_window_view(padded, k), q, axis=1)


def beat_features(times: np.ndarray, *, local_beats: int = 10, long_s: float = 300.0, ref_beats: int = 32,
                  reference: str = "median") -> np.ndarray:
    """RR features of a sequence of beats.

    Args:
      times: f64[K] beat times in seconds, in file order (non-decreasing).
      local_beats: beats in the local mean (>= 1).
      long_s: seconds in the long-run mean (> 0).
      ref_beats: beats in the running median the ``*_norm`` features divide by (>= 1).
      reference: ``"median"`` or ``"upper75"`` (the 75th percentile) of the last ``ref_beats``, or
        ``"mean"`` (of all beats so far).

    Returns:
      f32[K, 12], columns in the order of ``FEATURES``; when K < 2 the
      intervals are 0 and the ratios 1.
    """
    if reference not in REFERENCES:
        raise ValueError(f"RR reference must be one of {REFERENCES}, got {reference!r}")
    t = np.asarray(times, np.float64)
    k = len(t)
    out = np.zeros((k, len(FEATURES)), np.float64)
    if k < 2:
        out[:, 4:8] = 1.0
        out[:, FEATURES.index("irreg")] = 1.0
        return out.astype(np.float32)
    d = np.diff(t)
    pre = np.concatenate([[d[0]], d])
    post = np.concatenate([d, [d[-1]]])
    i = np.arange(k)
    local = _window_mean(pre, np.maximum(i - local_beats + 1, 0))
    long = _window_mean(pre, np.minimum(np.searchsorted(t, t - long_s, side="left"), i))
    if reference == "mean":
        ref = _window_mean(pre, np.zeros(k, np.int64))
    else:
        ref = running_percentile(pre, ref_beats, 50.0 if reference == "median" else 75.0)
    raw = np.stack([pre, post, local, long], axis=1)
    safe = np.where(ref > 0, ref, 1.0)[:, None]
    norm = np.where(ref[:, None] > 0, raw / safe, 1.0)
    prev = np.concatenate([pre[:1], pre[:-1]])
    # the local_beats intervals before this beat: window i - local_beats .. i - 1 of pre, padded at the start
    win = np.lib.stride_tricks.sliding_window_view(np.concatenate([np.full(local_beats, np.nan), pre[:-1]]), local_beats)
    with np.errstate(all="ignore"):
        lmin, lmax = np.nanmin(win[1:], axis=1), np.nanmax(win[1:], axis=1)
    lmin, lmax = np.concatenate([pre[:1], lmin]), np.concatenate([pre[:1], lmax])
    return np.concatenate([raw, norm, np.stack([prev, lmin, lmax, irregularity(pre, local_beats)], axis=1)], axis=1).astype(np.float32)


def irregularity(pre: np.ndarray, n: int) -> np.ndarray:
    """f64[K]: ``irreg`` of every beat (module docstring): exp of the median of ``|log(pre[j] / pre[j - 1])|``
    over ``i - n < j < i`` (the pairs of the ``n`` intervals before beat i, its own ``pre`` excluded); 1 where there
    is no pair. Intervals are floored at 1 ms (beats sharing a sample).

    Args:
      pre: f64[K] RR intervals before each beat (s).
      n: intervals in the window (``local_beats``).

    Returns:
      f64[K], >= 1.
    """
    k = len(pre)
    if n < 2 or k < 3:
        return np.ones(k)
    d = np.abs(np.diff(np.log(np.maximum(np.asarray(pre, np.float64), 1e-3))))  # d[j - 1]: pair (j - 1, j)
    # window w covers d[w - n + 1 .. w - 1]; beat i >= 1 takes window i - 1 (pairs up to (i - 2, i - 1))
    win = np.lib.stride_tricks.sliding_window_view(np.concatenate([np.full(n - 1, np.nan), d]), n - 1)[: k - 1]
    with warnings.catch_warnings():  # all-NaN windows (the first beats) warn; they take 1 below
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(win, axis=1)
    return np.concatenate([[1.0], np.exp(np.where(np.isnan(med), 0.0, med))])


def record_features(
    ann_samples: np.ndarray, ann_symbols: np.ndarray, samples: np.ndarray, fs: float, *,
    local_beats: int = 10, long_s: float = 300.0, ref_beats: int = 32, reference: str = "median",
) -> np.ndarray:
    """RR features of the kept beats of one record.

    The features are computed over every beat annotation of the record; the
    kept beats are then looked up by their sample. Kept beats must be beat
    annotations, in file order; of several beat annotations on one sample the
    k-th kept one takes the k-th.

    Args:
      ann_samples: i64[A] annotation samples (file order).
      ann_symbols: U[A] annotation symbols.
      samples: i64[N] samples of the kept beats (a subsequence of the beat
        annotations).
      fs: sampling rate of the samples (Hz).
      local_beats, long_s, ref_beats, reference: see ``beat_features``.

    Returns:
      f32[N, 12] in the order of ``FEATURES``.

    Raises:
      ValueError: a kept sample is not a beat annotation.
    """
    ann_samples = np.asarray(ann_samples, np.int64)
    is_beat = np.isin(np.asarray(ann_symbols), list(BEAT_SYMBOLS))
    bs = ann_samples[is_beat]
    feats = beat_features(bs / float(fs), local_beats=local_beats, long_s=long_s, ref_beats=ref_beats, reference=reference)
    samples = np.asarray(samples, np.int64)
    first = np.searchsorted(bs, samples, side="left")
    # rank of each kept sample among the earlier kept beats on the same sample
    if len(samples):
        new = np.concatenate([[True], samples[1:] != samples[:-1]])
        run_start = np.maximum.accumulate(np.where(new, np.arange(len(samples)), 0))
        idx = first + np.arange(len(samples)) - run_start
    else:
        idx = first
    if len(idx) and (idx.max() >= len(bs) or not np.array_equal(bs[idx], samples)):
        raise ValueError("kept beats are not beat annotations of the record (samples do not match)")
    return feats[idx]


def append_channels(beats):
    """The beats with their RR features appended to the leads as channels constant over time.

    Args:
      beats: a ``BeatSet`` with x f32[N, T, L] and rr f32[N, F].

    Returns:
      A ``BeatSet`` with x f32[N, T, L+F] (``x[:, t, L + j] == rr[:, j]``);
      everything else (``lead_names`` too: L names) unchanged. Models read the
      split from their own ``n_leads`` / ``rr_features``
      (``ecgjax.models.rr_net``).
    """
    rr = np.broadcast_to(beats.rr[:, None, :], (len(beats), beats.x.shape[1], beats.rr.shape[1]))
    return dataclasses.replace(beats, x=np.concatenate([beats.x, rr.astype(beats.x.dtype)], axis=-1))
