"""Glocal aggregation (Wagner et al. 2023): mean aligned relevance per class x lead x segment, by subgroup,
with bootstrap CIs over records, and the split-half stability of the class profiles.

Relevance is *aligned* when each beat's value sits at the same place relative to
its R peak (0.1 s segments counted from R, ``ecgjax.analysis.segments``) or in the
same wave: ``values`` is any f[N, L, S] array of per-beat, per-lead, per-position
relevance with NaN where a beat has no value (padding). Records (patients) are
the bootstrap unit: beats of one patient are correlated.

* :func:`glocal_means`: for each subgroup (e.g. sex, age band, a medication, or
  the record itself) and class, the mean over the beats and a percentile CI from
  resampling the subgroup's records with replacement.
* :func:`split_half`: the records split at random into two disjoint halves, the
  class profiles computed on each, and their Pearson correlation per class; over
  many splits the median and a percentile interval. High agreement means the
  profile is a property of the class, not of a few patients.

References: Wagner, Mehari, Haverkamp & Strodthoff 2023, "Explaining deep
learning for ECG analysis: building blocks for auditing and knowledge discovery".
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Mapping, Sequence

import numpy as np


def _record_sums(v: np.ndarray, codes: np.ndarray, n_rec: int) -> tuple[np.ndarray, np.ndarray]:
    """(sums, counts) f64[R, K] of the finite values of v f[n, K] per record code i[n]."""
    ok = np.isfinite(v)
    sums = np.zeros((n_rec, v.shape[1]))
    cnt = np.zeros((n_rec, v.shape[1]))
    np.add.at(sums, codes, np.where(ok, v, 0.0))
    np.add.at(cnt, codes, ok)
    return sums, cnt


@dataclasses.dataclass(frozen=True)
class GlocalTable:
    """Mean aligned relevance by subgroup and class.

    Attributes:
      subgrouping: what the groups are (``"sex"``, ``"age"``, ``"record"``, a drug).
      groups: G group names; classes: C class names.
      mean, ci_lo, ci_hi: f64[G, C, L, S] (NaN where a group has no beat of the class).
      n_beats, n_records: i64[G, C].
      ci: confidence level; n_boot: bootstrap replicates over records.
    """

    subgrouping: str
    groups: tuple[str, ...]
    classes: tuple[str, ...]
    mean: np.ndarray
    ci_lo: np.ndarray
    ci_hi: np.ndarray
    n_beats: np.ndarray
    n_records: np.ndarray
    ci: float
    n_boot: int

    def save(self, path) -> None:
        from ecgjax.io import atomic_savez

        atomic_savez(path, **{f.name: np.asarray(getattr(self, f.name)) for f in dataclasses.fields(self)})


def glocal_means(values: np.ndarray, y: np.ndarray, record: np.ndarray, classes: Sequence[str], group_of: Mapping[str, str], *,
                 subgrouping: str = "", n_boot: int = 1000, ci: float = 0.95, seed: int = 0) -> GlocalTable:
    """Mean relevance per subgroup, class, lead and position, with record-bootstrap CIs.

    Args:
      values: f[N, L, S] aligned relevance (NaN = no value).
      y: i[N] class of each beat; record: [N] its record; classes: C names (``y`` indexes them).
      group_of: {record: group name}; a beat whose record is missing is left out.
      n_boot: replicates (0: no CI); a replicate draws the group's records (of that class)
        with replacement and averages their beats.
      ci, seed: interval level and the generator's seed.
    Returns:
      :class:`GlocalTable` (groups sorted by name).
    """
    v = np.asarray(values, np.float64)
    if v.ndim != 3:
        raise ValueError(f"values must be f[N, L, S], got shape {v.shape}")
    N, L, S = v.shape
    y, record = np.asarray(y), np.asarray(record).astype(str)
    if y.shape != (N,) or record.shape != (N,):
        raise ValueError(f"y and record must have shape ({N},)")
    grp = np.array([group_of.get(r, "") for r in record])
    names = tuple(sorted({g for g in grp if g}))
    C, G = len(classes), len(names)
    shp = (G, C, L, S)
    mean, lo, hi = np.full(shp, np.nan), np.full(shp, np.nan), np.full(shp, np.nan)
    n_beats, n_rec = np.zeros((G, C), np.int64), np.zeros((G, C), np.int64)
    rng = np.random.default_rng(seed)
    a = (1 - ci) / 2
    for gi, g in enumerate(names):
        for c in range(C):
            rows = np.flatnonzero((grp == g) & (y == c))
            if not len(rows):
                continue
            uniq, codes = np.unique(record[rows], return_inverse=True)
            sums, cnt = _record_sums(v[rows].reshape(len(rows), -1), codes, len(uniq))
            n_beats[gi, c], n_rec[gi, c] = len(rows), len(uniq)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean[gi, c] = (sums.sum(0) / cnt.sum(0)).reshape(L, S)
                if n_boot > 0:
                    w = np.stack([np.bincount(rng.integers(0, len(uniq), len(uniq)), minlength=len(uniq)) for _ in range(n_boot)])
                    bm = (w @ sums) / (w @ cnt)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        q = np.nanquantile(bm, [a, 1 - a], axis=0)
                    lo[gi, c], hi[gi, c] = q[0].reshape(L, S), q[1].reshape(L, S)
    return GlocalTable(subgrouping, names, tuple(classes), mean, lo, hi, n_beats, n_rec, ci, n_boot)


def _class_means(v: np.ndarray, y: np.ndarray, rows: np.ndarray, C: int) -> np.ndarray:
    """f64[C, K]: mean of the finite values of v[rows] per class (NaN where none)."""
    K = v.shape[1]
    sums, cnt = np.zeros((C, K)), np.zeros((C, K))
    ok = np.isfinite(v[rows])
    np.add.at(sums, y[rows], np.where(ok, v[rows], 0.0))
    np.add.at(cnt, y[rows], ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / cnt


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """f64[C]: Pearson correlation of a[c] and b[c] over the columns finite in both (NaN with < 3 or no variance)."""
    out = np.full(len(a), np.nan)
    for c in range(len(a)):
        ok = np.isfinite(a[c]) & np.isfinite(b[c])
        if ok.sum() >= 3 and np.std(a[c][ok]) > 0 and np.std(b[c][ok]) > 0:
            out[c] = np.corrcoef(a[c][ok], b[c][ok])[0, 1]
    return out


@dataclasses.dataclass(frozen=True)
class SplitHalf:
    """Attributes:
    classes: C class names.
    r: f64[n_splits, C] Pearson correlation of the two halves' class profiles per split (NaN where
      a half has no beat of the class).
    n_records: i64[C] records with beats of the class.
    ci: the interval level of :meth:`summary`.
    """

    classes: tuple[str, ...]
    r: np.ndarray
    n_records: np.ndarray
    ci: float = 0.95

    def summary(self) -> dict:
        """{class: {"median", "lo", "hi", "n_splits" (with a value), "n_records"}}."""
        a = (1 - self.ci) / 2
        out = {}
        for c, name in enumerate(self.classes):
            v = self.r[:, c][np.isfinite(self.r[:, c])]
            q = np.quantile(v, [a, 0.5, 1 - a]) if len(v) else [np.nan] * 3
            out[name] = {"median": float(q[1]), "lo": float(q[0]), "hi": float(q[2]), "n_splits": int(len(v)),
                         "n_records": int(self.n_records[c])}
        return out


def split_half(values: np.ndarray, y: np.ndarray, record: np.ndarray, classes: Sequence[str], *, n_splits: int = 100,
               seed: int = 0) -> SplitHalf:
    """Split-half stability of the class profiles over disjoint halves of the records.

    Each split shuffles the records (seeded), gives the first half (rounded down)
    to A and the rest to B, computes each class's mean profile (all L x S positions
    flattened) on A's beats and on B's, and correlates the two (Pearson).

    Args:
      values: f[N, L, S]; y: i[N] classes; record: [N]; classes: C names.
      n_splits: random splits.
    Returns:
      :class:`SplitHalf`.
    """
    v = np.asarray(values, np.float64)
    N = v.shape[0]
    v = v.reshape(N, -1)
    y = np.asarray(y)
    record = np.asarray(record).astype(str)
    uniq, codes = np.unique(record, return_inverse=True)
    if len(uniq) < 2:
        raise ValueError(f"split-half needs beats from at least 2 records, got {len(uniq)}")
    C = len(classes)
    rng = np.random.default_rng(seed)
    r = np.full((n_splits, C), np.nan)
    for s in range(n_splits):
        in_a = np.zeros(len(uniq), bool)
        in_a[rng.permutation(len(uniq))[: len(uniq) // 2]] = True
        a = in_a[codes]
        r[s] = _pearson_rows(_class_means(v, y, np.flatnonzero(a), C), _class_means(v, y, np.flatnonzero(~a), C))
    n_records = np.array([len(np.unique(record[y == c])) for c in range(C)], np.int64)
    return SplitHalf(tuple(classes), r, n_records)
