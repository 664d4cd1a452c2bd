"""Glocal means (against a direct concatenating bootstrap), split-half stability on planted structure,
and the MIT-BIH header parser."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.analysis.glocal import glocal_means, split_half
from ecgjax.data.demographics import age_group, parse_comments, subgroups


def _data(seed=0, n=300, L=2, S=6, R=10, C=3):
    rng = np.random.default_rng(seed)
    v = rng.random((n, L, S))
    v[rng.random((n, L, S)) < 0.1] = np.nan
    return v, rng.integers(0, C, n), np.array([f"r{i}" for i in rng.integers(0, R, n)])


def test_glocal_means_match_a_direct_bootstrap():
    v, y, rec = _data()
    group_of = {f"r{i}": ("odd" if i % 2 else "even") for i in range(10)}
    t = glocal_means(v, y, rec, ("a", "b", "c"), group_of, subgrouping="parity", n_boot=50, seed=3)
    assert t.groups == ("even", "odd") and t.mean.shape == (2, 3, 2, 6)
    rng = np.random.default_rng(3)
    grp = np.array([group_of[r] for r in rec])
    for gi, g in enumerate(t.groups):
        for c in range(3):
            rows = np.flatnonzero((grp == g) & (y == c))
            np.testing.assert_allclose(t.mean[gi, c], np.nanmean(v[rows], 0))
            uniq = np.unique(rec[rows])
            assert t.n_beats[gi, c] == len(rows) and t.n_records[gi, c] == len(uniq)
            boots = []
            for _ in range(50):  # the same draws, concatenating the drawn records' beats
                draw = uniq[rng.integers(0, len(uniq), len(uniq))]
                boots.append(np.nanmean(np.concatenate([v[rows][rec[rows] == r] for r in draw]), 0))
            q = np.nanquantile(np.array(boots), [0.025, 0.975], axis=0)
            np.testing.assert_allclose(t.ci_lo[gi, c], q[0], rtol=1e-10)
            np.testing.assert_allclose(t.ci_hi[gi, c], q[1], rtol=1e-10)
            assert np.all(t.ci_lo[gi, c] <= t.mean[gi, c] + 1e-12) and np.all(t.mean[gi, c] <= t.ci_hi[gi, c] + 1e-12)


def test_glocal_one_record_has_no_spread_and_missing_class_is_nan():
    v = np.arange(12, dtype=float).reshape(3, 1, 4)
    t = glocal_means(v, np.array([0, 0, 0]), np.array(["a", "a", "a"]), ("x", "y"), {"a": "g"}, n_boot=20)
    np.testing.assert_allclose(t.ci_lo[0, 0], t.mean[0, 0])
    np.testing.assert_allclose(t.ci_hi[0, 0], t.mean[0, 0])
    assert np.isnan(t.mean[0, 1]).all() and t.n_beats[0, 1] == 0


def test_split_half_finds_class_structure_and_its_absence():
    rng = np.random.default_rng(0)
    R, per, C, K = 40, 30, 3, 24
    rec = np.repeat(np.arange(R), per).astype(str)
    y = rng.integers(0, C, R * per)
    profile = rng.normal(size=(C, K))  # a class profile shared by every record
    shared = profile[y] + rng.normal(0, 0.5, (R * per, K))
    own = rng.normal(size=(R, C, K))[np.repeat(np.arange(R), per), y] + rng.normal(0, 0.5, (R * per, K))  # each record its own
    s1 = split_half(shared.reshape(-1, 1, K), y, rec, ("a", "b", "c"), n_splits=30).summary()
    s2 = split_half(own.reshape(-1, 1, K), y, rec, ("a", "b", "c"), n_splits=30).summary()
    for c in "abc":
        assert s1[c]["median"] > 0.95 and s1[c]["n_splits"] == 30 and s1[c]["n_records"] == R
        assert abs(s2[c]["median"]) < 0.5
        assert s1[c]["lo"] <= s1[c]["median"] <= s1[c]["hi"]


def test_split_half_class_of_one_record_is_undefined():
    v, y, rec = _data()
    y = np.where(rec == "r0", 2, y % 2)  # class 2 only in record r0: one half never has it
    s = split_half(v, y, rec, ("a", "b", "c"), n_splits=10).summary()
    assert s["c"]["n_splits"] == 0 and np.isnan(s["c"]["median"]) and s["c"]["n_records"] == 1
    with pytest.raises(ValueError, match="2 records"):
        split_half(v, y, np.full(len(y), "r0"), ("a", "b", "c"))


def test_header_comments_parse():
    i = parse_comments("100", ["69 M 1085 1629 x1", "Aldomet, Inderal"])
    assert (i.age, i.sex, i.medications) == (69, "M", ("Aldomet", "Inderal"))
    i = parse_comments("103", ["# -1 M 742 654 x1", "None", "The PVCs are uniform."])
    assert (i.age, i.sex, i.medications) == (None, "M", ())
    i = parse_comments("x", [])
    assert (i.age, i.sex, i.medications) == (None, None, None)
    assert [age_group(a) for a in (None, 23, 50, 69, 70)] == ["unknown", "<50", "50-69", "50-69", ">=70"]
    g = subgroups({"100": parse_comments("100", ["69 M", "Digoxin, Lasix"]), "101": parse_comments("101", ["75 F"])})
    assert g["sex"] == {"100": "M", "101": "F"} and g["Digoxin"] == {"100": "yes", "101": "unknown"}


def test_header_comments_read_with_wfdb(tiny_db):
    """A header written by wfdb with comments is read back (wfdb_io.read_header_comments)."""
    from ecgjax.data.demographics import record_info

    base = tiny_db.record("900", [(100, "N"), (500, "N")])
    hea = base.parent / "900.hea"
    hea.write_text(hea.read_text().rstrip("\n") + "\n# 57 F 1234 x1\n# Digoxin, Quinidine\n")
    info = record_info(hea.parent, ["900"])["900"]
    assert (info.age, info.sex, info.medications) == (57, "F", ("Digoxin", "Quinidine"))
