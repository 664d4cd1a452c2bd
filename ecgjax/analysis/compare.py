"""Group comparisons per segment: Mann-Whitney U, Benjamini-Hochberg FDR, rank-biserial effect size.

* :func:`correct_vs_incorrect`: beats of class c classified correctly vs incorrectly.
* :func:`mistaken_vs_class`: beats of class c misclassified as k vs beats of
  class k classified correctly (the paper compared with *all* of class k;
  reference_pipeline §5.5).

Caveat stated in every result: beats of one patient are not independent, so
p-values from a beat-level U test are optimistic; read them with the
record-bootstrap CIs of :mod:`ecgjax.analysis.profiles`.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Per-column results of group A vs group B; arrays f64[L, S] (or [K] for flat input).

    Attributes:
      u: Mann-Whitney U of group A; p: two-sided p-values; q: BH-adjusted p-values
      (over all tested columns); effect: rank-biserial correlation
      ``2 U / (n_a n_b) - 1`` in [-1, 1] (> 0: A tends to be larger);
      n_a, n_b: i64 non-NaN counts per column; median_a, median_b.
      label_a, label_b: group descriptions.
    """

    u: np.ndarray
    p: np.ndarray
    q: np.ndarray
    effect: np.ndarray
    n_a: np.ndarray
    n_b: np.ndarray
    median_a: np.ndarray
    median_b: np.ndarray
    label_a: str
    label_b: str

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in dataclasses.asdict(self).items()}


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (step-up FDR), same shape as ``p``; NaNs are left out and stay NaN.

    ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` for sorted p-values, m = number of non-NaN p.
    """
    p = np.asarray(p, np.float64)
    flat = p.ravel()
    ok = ~np.isnan(flat)
    q = np.full_like(flat, np.nan)
    pv = flat[ok]
    m = pv.size
    if m:
        order = np.argsort(pv)
        ranked = pv[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty(m)
        out[order] = np.minimum(adj, 1.0)
        q[ok] = out
    return q.reshape(p.shape)


def compare_groups(a: np.ndarray, b: np.ndarray, label_a: str = "A", label_b: str = "B", min_n: int = 2) -> Comparison:
    """Column-wise two-sided Mann-Whitney U of ``a`` vs ``b`` (NaNs dropped per column), BH over columns.

    Args:
      a: f[n_a, ...]; b: f[n_b, ...] with the same trailing shape (e.g. [L, S]).
      min_n: columns with fewer than ``min_n`` values in either group get NaN.
    Returns:
      :class:`Comparison` with arrays of the trailing shape.
    """
    from scipy.stats import mannwhitneyu

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"groups must share trailing shape, got {a.shape[1:]} and {b.shape[1:]}")
    tail = a.shape[1:]
    A = a.reshape(a.shape[0], -1)
    Bm = b.reshape(b.shape[0], -1)
    K = A.shape[1]
    u, p, eff, ma, mb = (np.full(K, np.nan) for _ in range(5))
    na = np.sum(~np.isnan(A), 0)
    nb = np.sum(~np.isnan(Bm), 0)
    for k in range(K):  # a loop over columns (48), not beats
        xa = A[:, k][~np.isnan(A[:, k])]
        xb = Bm[:, k][~np.isnan(Bm[:, k])]
        if xa.size:
            ma[k] = np.median(xa)
        if xb.size:
            mb[k] = np.median(xb)
        if xa.size < min_n or xb.size < min_n:
            continue
        r = mannwhitneyu(xa, xb, alternative="two-sided")
        u[k], p[k] = r.statistic, r.pvalue
        eff[k] = 2 * r.statistic / (xa.size * xb.size) - 1
    q = benjamini_hochberg(p)
    rs = lambda v: v.reshape(tail)  # noqa: E731
    return Comparison(rs(u), rs(p), rs(q), rs(eff), rs(na), rs(nb), rs(ma), rs(mb), label_a, label_b)


def _sel(idx, n):
    return np.arange(n) if idx is None else np.asarray(idx)


def correct_vs_incorrect(values: np.ndarray, y: np.ndarray, y_pred: np.ndarray, cls: int, *, idx=None, min_n: int = 2) -> Comparison:
    """Beats of true class ``cls`` predicted correctly (A) vs incorrectly (B).

    Args:
      values: f[N, L, S] segment values; y, y_pred: i[N]; idx: beats to use (e.g. ``split.test``).
    """
    sel = _sel(idx, len(y))
    ys, ps = np.asarray(y)[sel], np.asarray(y_pred)[sel]
    a = values[sel[(ys == cls) & (ps == cls)]]
    b = values[sel[(ys == cls) & (ps != cls)]]
    return compare_groups(a, b, f"class {cls} correct", f"class {cls} incorrect", min_n)


def mistaken_vs_class(values: np.ndarray, y: np.ndarray, y_pred: np.ndarray, cls: int, taken_for: int, *, idx=None, min_n: int = 2) -> Comparison:
    """Beats of class ``cls`` misclassified as ``taken_for`` (A) vs correctly classified ``taken_for`` beats (B)."""
    if cls == taken_for:
        raise ValueError("taken_for must differ from cls")
    sel = _sel(idx, len(y))
    ys, ps = np.asarray(y)[sel], np.asarray(y_pred)[sel]
    a = values[sel[(ys == cls) & (ps == taken_for)]]
    b = values[sel[(ys == taken_for) & (ps == taken_for)]]
    return compare_groups(a, b, f"class {cls} taken for {taken_for}", f"class {taken_for} correct", min_n)
