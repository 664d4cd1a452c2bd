"""Clustering of aligned attributions: a planted subtype is found; patients and noise are told apart."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.analysis.clusters import cluster_class, feature_rows


def _class(seed, n=240, R=12, S=24, by_record=False):
    """Relevance of one class: subtype 0 peaks at segment 5, subtype 1 at segment 16 (plus noise);
    the subtype is drawn per beat (across records) or is a property of the record."""
    rng = np.random.default_rng(seed)
    record = rng.integers(0, R, n)
    sub = (record % 2) if by_record else rng.integers(0, 2, n)
    v = np.abs(rng.normal(0, 0.1, (n, 1, S)))
    v[np.arange(n), 0, np.where(sub == 0, 5, 16)] += 1.0
    return v, record.astype(str), sub


def test_planted_subtype_across_records_is_found():
    from sklearn.metrics import adjusted_rand_score

    v, rec, sub = _class(0)
    c = cluster_class(v, rec, ks=(2, 3, 4))
    assert c.k == 2 and adjusted_rand_score(sub, c.labels) > 0.95
    assert c.silhouette > 0.5 and abs(c.ari_record) < 0.1  # a pattern shared by patients, not patients
    assert c.sizes.sum() == len(v) and c.n_records == 12
    assert c.summary()["k"] == 2


def test_subtype_that_is_the_record_shows_in_the_adjusted_rand_index():
    v, rec, sub = _class(1, by_record=True)
    c = cluster_class(v, rec, ks=(2, 3))
    assert c.k == 2 and c.ari_record > 0.1  # each cluster is a set of records (6 per cluster)
    v0, rec0, _ = _class(1, by_record=False)
    assert c.ari_record > cluster_class(v0, rec0, ks=(2, 3)).ari_record + 0.1


def test_no_structure_has_a_low_silhouette():
    rng = np.random.default_rng(2)
    v = np.abs(rng.normal(1, 0.1, (200, 1, 24)))
    c = cluster_class(v, rng.integers(0, 10, 200), ks=(2, 3))
    assert c.silhouette < 0.2


def test_feature_rows_drop_sparse_columns_fill_gaps_and_normalise():
    v = np.array([[[1.0, np.nan, 3.0]], [[2.0, np.nan, np.nan]], [[3.0, 5.0, 3.0]]])
    X, kept = feature_rows(v, min_present=0.6)
    assert kept.tolist() == [True, False, True]
    np.testing.assert_allclose(X, [[0.25, 0.75], [0.4, 0.6], [0.5, 0.5]])  # gap filled with the column mean 3, rows / sum
    with pytest.raises(ValueError, match="more beats than clusters"):
        cluster_class(v, np.array(["a", "b", "c"]), ks=(3, 4))
