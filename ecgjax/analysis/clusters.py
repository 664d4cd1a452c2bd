"""Clustering of aligned attributions within a class (knowledge discovery, Wagner et al. 2023).

The beats of one class are clustered by their aligned relevance (per-lead 0.1 s
segment values counted from R, or waves): k-means (scikit-learn) for each k in a
range, the k with the best silhouette kept. Two numbers say what was found:

* the **silhouette** (-1..1): how well separated the clusters are (near 0: no
  structure, the k-means partition is arbitrary);
* the **adjusted Rand index against the records** (0: clusters cut across
  patients; 1: each cluster is a set of patients). A high value means the
  "subtypes" are patients, a low one with a high silhouette a pattern shared
  across patients.

Rows are made comparable first: segments with no value in many beats are
dropped, the remaining gaps filled with the column mean, and (by default) each
beat's relevance divided by its total, so clusters differ in *where* relevance
lies, not in how much there is.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np


def feature_rows(values: np.ndarray, *, min_present: float = 0.9, normalise: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rows ready for clustering: ``(X f64[n, K'], kept bool[L*S])``.

    Args:
      values: f[n, L, S] (or f[n, K]) aligned relevance, NaN where a beat has no value.
      min_present: keep the columns that have a value in at least this share of the beats.
      normalise: divide each row by the sum of its absolute values (rows of zeros stay zero).
    """
    v = np.asarray(values, np.float64).reshape(len(values), -1)
    kept = np.isfinite(v).mean(0) >= min_present if len(v) else np.zeros(v.shape[1], bool)
    X = v[:, kept]
    if X.size:
        col = np.nanmean(np.where(np.isfinite(X), X, np.nan), 0)
        X = np.where(np.isfinite(X), X, col[None])
    if normalise and X.size:
        tot = np.abs(X).sum(1, keepdims=True)
        X = np.where(tot > 0, X / np.where(tot > 0, tot, 1.0), 0.0)
    return X, kept


@dataclasses.dataclass(frozen=True)
class Clusters:
    """k-means of one class's aligned relevance.

    Attributes:
      k: the number of clusters kept (best silhouette).
      labels: i64[n] cluster of each beat.
      centroids: f64[k, K'] in the feature space of :func:`feature_rows`; kept: bool[L*S] its columns.
      silhouette: of the kept partition; silhouette_by_k: {k: silhouette} for every k tried.
      ari_record: adjusted Rand index of the clusters against the records.
      sizes: i64[k] beats per cluster; n_records: records among the beats.
    """

    k: int
    labels: np.ndarray
    centroids: np.ndarray
    kept: np.ndarray
    silhouette: float
    silhouette_by_k: dict
    ari_record: float
    sizes: np.ndarray
    n_records: int

    def summary(self) -> dict:
        return {"k": self.k, "silhouette": self.silhouette, "silhouette_by_k": {str(k): v for k, v in self.silhouette_by_k.items()},
                "ari_record": self.ari_record, "sizes": self.sizes.tolist(), "n": int(len(self.labels)), "n_records": self.n_records}


def cluster_class(values: np.ndarray, record: np.ndarray, *, ks: Sequence[int] = (2, 3, 4, 5), seed: int = 0,
                  normalise: bool = True, silhouette_sample: int = 2000) -> Clusters:
    """Cluster one class's beats by their aligned relevance (k-means, k by silhouette).

    Args:
      values: f[n, L, S] aligned relevance of the class's beats; record: [n] their records.
      ks: the numbers of clusters tried (each < n).
      seed: k-means initialisation and the silhouette's subsample.
      normalise: see :func:`feature_rows`.
      silhouette_sample: at most this many beats enter the silhouette (a seeded subsample).
    Returns:
      :class:`Clusters`.
    Raises:
      ValueError: fewer beats than the smallest k + 1, or no column with enough values.
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    X, kept = feature_rows(values, normalise=normalise)
    n = len(X)
    ks = [int(k) for k in ks if 2 <= int(k) < n]
    if not ks:
        raise ValueError(f"clustering needs more beats than clusters: {n} beats for k in {list(ks)}")
    if X.shape[1] == 0:
        raise ValueError("no segment has a value in enough beats to cluster on")
    best, by_k = None, {}
    for k in ks:
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(X)
        if len(np.unique(km.labels_)) < 2:
            by_k[k] = float("nan")
            continue
        s = float(silhouette_score(X, km.labels_, sample_size=min(silhouette_sample, n), random_state=seed))
        by_k[k] = s
        if best is None or s > by_k[best[0]]:
            best = (k, km)
    if best is None:  # every partition degenerate (identical rows)
        return Clusters(1, np.zeros(n, np.int64), X.mean(0, keepdims=True), kept, float("nan"), by_k, 0.0, np.array([n]),
                        len(np.unique(record)))
    k, km = best
    labels = km.labels_.astype(np.int64)
    return Clusters(k, labels, km.cluster_centers_, kept, by_k[k], by_k, float(adjusted_rand_score(np.asarray(record).astype(str), labels)),
                    np.bincount(labels, minlength=k), len(np.unique(record)))
