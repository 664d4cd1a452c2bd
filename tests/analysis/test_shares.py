"""Shares of |attribution| in a mask, their chance levels and record-level statistics, against direct loops and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from ecgjax.analysis.shares import mask_fraction, mask_share, record_bootstrap, record_means, record_wilcoxon


def test_mask_share_matches_a_loop():
    rng = np.random.default_rng(0)
    N, T, L = 5, 30, 2
    maps = rng.normal(size=(N, T, L))
    mask = rng.random((N, T, L)) < 0.3
    lo, hi = rng.integers(0, 5, N), rng.integers(20, 31, N)
    valid = (np.arange(T)[None] >= lo[:, None]) & (np.arange(T)[None] < hi[:, None])
    got = mask_share(maps, mask, valid)
    for n in range(N):
        a = np.abs(maps[n, lo[n]:hi[n]])
        assert got[n] == pytest.approx(a[mask[n, lo[n]:hi[n]]].sum() / a.sum())
    # a [N, T] mask means every lead; a zero map has no share
    m2 = mask_share(maps, mask[..., 0], valid)
    assert m2[0] == pytest.approx(np.abs(maps[0, lo[0]:hi[0]][mask[0, lo[0]:hi[0], 0]]).sum() / np.abs(maps[0, lo[0]:hi[0]]).sum())
    assert np.isnan(mask_share(np.zeros((1, T, L)), mask[:1], valid[:1]))[0]
    frac = mask_fraction(mask, valid, L)
    assert frac[1] == pytest.approx(mask[1, lo[1]:hi[1]].sum() / (2 * (hi[1] - lo[1])))


def test_random_maps_share_is_the_mask_fraction():
    rng = np.random.default_rng(1)
    N, T, L = 4000, 40, 2
    mask = np.zeros((N, T), bool)
    mask[:, 5:15] = True
    valid = np.ones((N, T), bool)
    s = mask_share(rng.normal(size=(N, T, L)), mask, valid)
    assert s.mean() == pytest.approx(mask_fraction(mask, valid, L).mean(), abs=0.005)
    assert mask_fraction(mask, valid, L)[0] == 0.25


def test_record_bootstrap_is_a_record_resampling():
    rng = np.random.default_rng(2)
    v = rng.normal(size=60)
    rec = np.repeat(np.array(["a", "b", "c", "d", "e"]), 12)
    v[3] = np.nan
    mean, lo, hi = record_bootstrap(v, rec, n_boot=300, seed=7)
    assert mean == pytest.approx(np.nanmean(v))
    # the same draws, written as a loop over replicates
    ok = ~np.isnan(v)
    recs = np.unique(rec)
    r2 = np.random.default_rng(7)
    draws = r2.integers(0, 5, size=(300, 5))
    ref = [np.mean(np.concatenate([v[ok & (rec == recs[i])] for i in d])) for d in draws]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(ref, [0.025, 0.975])))
    # one record: no spread between records
    m1, l1, h1 = record_bootstrap(np.arange(5.0), np.array(["x"] * 5), n_boot=50)
    assert m1 == l1 == h1 == 2.0


def test_record_wilcoxon_uses_record_means():
    rng = np.random.default_rng(3)
    rec = np.repeat(np.arange(8).astype(str), 10)
    d = rng.normal(0.5, 0.3, 80)
    p, n = record_wilcoxon(d, rec)
    _, means = record_means(d, rec)
    assert n == 8 and p == pytest.approx(stats.wilcoxon(means).pvalue)
    assert np.isnan(record_wilcoxon(d[:40], rec[:40])[0])  # 4 records: too few
