"""Share of |attribution| inside a mask, its chance levels, and record-level statistics.

The quantitative checks of Wagner et al. (2023) ask how much of a map's
relevance falls where the answer is known to be:

* :func:`mask_share`: per beat, ``sum |A| over the mask / sum |A| over the real
  samples`` (all leads together).
* Its two reference levels: a **random** map (i.i.d. values per sample) puts
  on average exactly the mask's fraction of the real samples there (the samples
  are exchangeable): :func:`mask_fraction`; an **|x|-proportional** map
  (relevance = the signal's amplitude, what a method biased to the QRS gives
  whatever the question): ``mask_share(x, mask, valid)``.
* :func:`record_bootstrap`: mean over beats with a percentile CI that resamples
  records (patients), not beats.
* :func:`record_wilcoxon`: a one-sample Wilcoxon signed-rank test on per-record
  means (records are the independent units).

References: Wagner, Mehari, Haverkamp & Strodthoff 2024, "Explaining deep
learning for ECG analysis: Building blocks for auditing and knowledge
discovery" (Computers in Biology and Medicine 176).
"""

from __future__ import annotations

import numpy as np


def _broadcast_mask(mask: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    m = np.asarray(mask, bool)
    if m.ndim == 2:
        m = m[:, :, None]
    if m.shape[:2] != shape[:2] or m.shape[2] not in (1, shape[2]):
        raise ValueError(f"mask must be bool[N, T] or bool[N, T, L] for maps {shape}, got {np.shape(mask)}")
    return np.broadcast_to(m, shape)


def mask_share(maps: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """f64[N]: each beat's share of ``sum |maps|`` (over its real samples, all leads) that lies in ``mask``.

    Args:
      maps: f[N, T, L] attribution maps (signed; |.| is taken here) or any signal.
      mask: bool[N, T] (every lead) or bool[N, T, L]: the defining segment.
      valid: bool[N, T] real (non-padding) samples.

    Returns:
      f64[N] in [0, 1]; NaN for a beat whose map is zero on all real samples.
    """
    a = np.abs(np.asarray(maps, np.float64))
    if a.ndim != 3:
        raise ValueError(f"maps must be f[N, T, L], got shape {a.shape}")
    v = _broadcast_mask(valid, a.shape)
    m = _broadcast_mask(mask, a.shape) & v
    total = np.where(v, a, 0).sum((1, 2))
    inside = np.where(m, a, 0).sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)


def mask_fraction(mask: np.ndarray, valid: np.ndarray, n_leads: int) -> np.ndarray:
    """f64[N]: the fraction of each beat's real samples (x ``n_leads``) in ``mask``, the expected share of a random map.

    Args:
      mask: bool[N, T] or bool[N, T, L]; valid: bool[N, T]; n_leads: L.
    """
    shape = (np.shape(valid)[0], np.shape(valid)[1], n_leads)
    v = _broadcast_mask(valid, shape)
    m = _broadcast_mask(mask, shape) & v
    with np.errstate(invalid="ignore", divide="ignore"):
        return m.sum((1, 2)) / np.where(v.sum((1, 2)) > 0, v.sum((1, 2)), np.nan)


def record_means(values: np.ndarray, record: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(records U[R], f64[R] mean of the non-NaN values of each record's beats; NaN if none)."""
    v = np.asarray(values, np.float64)
    recs, codes = np.unique(np.asarray(record), return_inverse=True)
    ok = ~np.isnan(v)
    s = np.bincount(codes[ok], v[ok], minlength=len(recs))
    n = np.bincount(codes[ok], minlength=len(recs))
    with np.errstate(invalid="ignore", divide="ignore"):
        return recs, np.where(n > 0, s / np.maximum(n, 1), np.nan)


def record_bootstrap(values: np.ndarray, record: np.ndarray, *, n_boot: int = 1000, ci: float = 0.95,
                     seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` over beats, with a percentile CI from resampling records with replacement.

    Args:
      values: f[N] one value per beat (NaN ignored); record: [N] each beat's record.
      n_boot: replicates (0: no CI, NaN bounds); ci: level; seed: ``np.random.default_rng(seed)``.

    Returns:
      ``(mean, lo, hi)``; a replicate's statistic is the mean over the beats of the drawn
      records (a record drawn twice counts twice). NaN when no value is finite.
    """
    v = np.asarray(values, np.float64)
    ok = ~np.isnan(v)
    if not ok.any():
        return float("nan"), float("nan"), float("nan")
    recs, codes = np.unique(np.asarray(record)[ok], return_inverse=True)
    s = np.bincount(codes, v[ok], minlength=len(recs))
    n = np.bincount(codes, minlength=len(recs)).astype(np.float64)
    mean = float(s.sum() / n.sum())
    if n_boot <= 0:
        return mean, float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(recs), size=(n_boot, len(recs)))
    mult = np.zeros((n_boot, len(recs)))
    np.add.at(mult, (np.arange(n_boot)[:, None], draws), 1.0)
    stats = (mult @ s) / (mult @ n)
    a = (1 - ci) / 2
    lo, hi = np.quantile(stats, [a, 1 - a])
    return mean, float(lo), float(hi)


def record_wilcoxon(diff: np.ndarray, record: np.ndarray, *, min_records: int = 5) -> tuple[float, int]:
    """Two-sided one-sample Wilcoxon signed-rank test that the per-record mean of ``diff`` is centred on 0.

    Args:
      diff: f[N] a paired difference per beat (NaN ignored); record: [N].
      min_records: fewer records with a value give p = NaN (too few to test).

    Returns:
      ``(p, n_records)``.
    """
    from scipy import stats

    _, m = record_means(diff, record)
    m = m[~np.isnan(m)]
    if len(m) < min_records or np.all(m == 0):
        return float("nan"), int(len(m))
    return float(stats.wilcoxon(m).pvalue), int(len(m))
