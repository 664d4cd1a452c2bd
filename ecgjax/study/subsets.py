"""Which test beats a study explains and checks: seeded per-class subsets."""

from __future__ import annotations

import numpy as np


def explain_subset(y: np.ndarray, idx: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """At most ``max_per_class`` of ``idx`` per class (seeded), sorted; all if None.

    Args:
      y: i32[N] labels of the whole BeatSet; idx: i64[M] candidates (test beats).
    Returns:
      i64[K] a sorted subset of ``idx``.
    """
    if max_per_class is None:
        return np.sort(idx)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        keep.append(members if len(members) <= max_per_class else rng.choice(members, max_per_class, replace=False))
    return np.sort(np.concatenate(keep)) if keep else idx[:0]


def balanced_subset(y: np.ndarray, idx: np.ndarray, n: int, seed: int) -> np.ndarray:
    """About ``n`` of ``idx``, the same number from each class present (fewer if a class is short).

    Args:
      y: i32[N] labels; idx: i64[M] candidates (test beats).
    """
    present = np.unique(y[idx])
    return explain_subset(y, idx, max(1, n // max(1, len(present))), seed)
