"""Profile statistics and group comparisons against independent computations."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.analysis import benjamini_hochberg, class_profiles, compare_groups, correct_vs_incorrect, mistaken_vs_class, weighted_median


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(3)
    N, L, S = 300, 2, 5
    v = rng.normal(size=(N, L, S))
    v[rng.random((N, L, S)) < 0.1] = np.nan
    y = rng.integers(0, 3, N)
    rec = rng.choice(np.array(["100", "101", "102", "103", "104", "105"]), N)
    test = np.sort(rng.choice(N, 200, replace=False))
    return v, y, rec, test


def test_profile_quantiles_match_percentile(toy):
    v, y, rec, test = toy

    class S:
        pass

    split = S()
    split.test = test
    prof = class_profiles(v, y, rec, split=split, n_boot=50, seed=1)
    for c in range(3):
        rows = test[y[test] == c]
        for lead in range(2):
            for s in range(5):
                col = v[rows, lead, s]
                col = col[~np.isnan(col)]
                q25, med, q75 = np.percentile(col, [25, 50, 75])
                assert prof.median[c, lead, s] == pytest.approx(med)
                assert prof.q25[c, lead, s] == pytest.approx(q25)
                assert prof.iqr[c, lead, s] == pytest.approx(q75 - q25)
                assert prof.count[c, lead, s] == col.size
                assert prof.ci_lo[c, lead, s] <= prof.ci_hi[c, lead, s]
    # seeded: same seed, same CI; different seed, different CI
    again = class_profiles(v, y, rec, split=split, n_boot=50, seed=1)
    np.testing.assert_array_equal(again.ci_lo, prof.ci_lo)
    assert not np.array_equal(class_profiles(v, y, rec, split=split, n_boot=50, seed=2).ci_lo, prof.ci_lo)
    with pytest.raises(ValueError, match="exactly one"):
        class_profiles(v, y, rec)


def test_weighted_median_equals_expanded_median():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = rng.integers(1, 12)
        vals = rng.normal(size=(n, 3))
        vals[rng.random((n, 3)) < 0.2] = np.nan
        w = rng.integers(0, 4, n)
        got = weighted_median(vals, w)
        for k in range(3):
            exp = np.repeat(vals[:, k], w)
            exp = exp[~np.isnan(exp)]
            if exp.size:
                assert got[k] == pytest.approx(np.median(exp))
            else:
                assert np.isnan(got[k])


def test_bootstrap_resamples_records(toy):
    """The CI equals an explicit loop that concatenates the beats of resampled records."""
    v, y, rec, test = toy
    prof = class_profiles(v, y, rec, idx=test, n_boot=30, seed=5)
    rng = np.random.default_rng(5)
    rows = test[y[test] == 0]
    uniq, codes = np.unique(rec[rows], return_inverse=True)
    meds = []
    for _ in range(30):
        draw = rng.integers(0, uniq.size, uniq.size)
        beats = np.concatenate([rows[codes == d] for d in draw])
        meds.append(np.nanmedian(v[beats].reshape(beats.size, -1), 0))
    lo, hi = np.nanquantile(np.array(meds), [0.025, 0.975], axis=0)
    np.testing.assert_allclose(prof.ci_lo[0].ravel(), lo)
    np.testing.assert_allclose(prof.ci_hi[0].ravel(), hi)
    assert prof.n_records[0] == uniq.size


def test_benjamini_hochberg_by_hand():
    p = np.array([0.01, 0.04, 0.03, 0.20, np.nan])
    # sorted: 0.01, 0.03, 0.04, 0.20 (m=4): 0.04, 0.06, 0.0533, 0.20 -> step-up min: 0.04, 0.0533, 0.0533, 0.20
    np.testing.assert_allclose(benjamini_hochberg(p), [0.04, 0.16 / 3, 0.16 / 3, 0.20, np.nan], equal_nan=True)
    from scipy.stats import false_discovery_control

    rng = np.random.default_rng(0)
    pp = rng.random(48) ** 3
    np.testing.assert_allclose(benjamini_hochberg(pp), false_discovery_control(pp))


def test_compare_groups_effect_and_u():
    from scipy.stats import mannwhitneyu

    a = np.array([[1.0], [2.0], [3.0], [4.0]])
    b = np.array([[0.5], [1.5], [np.nan]])
    c = compare_groups(a, b)
    # A beats B in 7 of 8 pairs: U = 7, rank-biserial = 2*7/8 - 1 = 0.75
    assert c.u[0] == 7 and c.effect[0] == pytest.approx(0.75)
    assert c.p[0] == pytest.approx(mannwhitneyu([1, 2, 3, 4], [0.5, 1.5]).pvalue)
    assert c.n_b[0] == 2 and c.median_b[0] == 1.0


def test_group_selection():
    v = np.arange(8, dtype=float).reshape(8, 1, 1)
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0, 0, 1, 1, 1, 1, 0, 1])
    c = correct_vs_incorrect(v, y, p, 0)
    assert (c.n_a[0, 0], c.n_b[0, 0], c.median_a[0, 0], c.median_b[0, 0]) == (2, 2, 0.5, 2.5)
    m = mistaken_vs_class(v, y, p, 0, 1)
    assert (m.n_a[0, 0], m.n_b[0, 0], m.median_b[0, 0]) == (2, 3, 5.0)
    with pytest.raises(ValueError):
        mistaken_vs_class(v, y, p, 1, 1)


def test_profiles_save_roundtrip(toy, tmp_path):
    v, y, rec, test = toy
    prof = class_profiles(v, y, rec, idx=test, n_boot=5, classes=("N", "V", "A"))
    prof.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["median"], prof.median)
        assert tuple(z["classes"]) == ("N", "V", "A")
