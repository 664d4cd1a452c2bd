"""Seeded splits and training-set balancing on synthetic labels and record tags."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.data import balance, check_patient_disjoint, make_split
from ecgjax.data.protocols import DS1, DS2, JONES_LPO_TEST, MITDB_RECORDS, PACED_RECORDS
from ecgjax.data.splits import Split
from ecgjax.errors import ConfigError


@pytest.fixture(scope="module")
def beats():
    """(y, record): i32[N] labels over 5 classes, U[N] records; 20-80 beats per mitdb record."""
    rng = np.random.default_rng(1)
    n = rng.integers(20, 80, len(MITDB_RECORDS))
    record = np.repeat(np.array(MITDB_RECORDS), n)
    y = rng.choice(5, size=len(record), p=[0.7, 0.15, 0.1, 0.04, 0.01]).astype(np.int32)
    return y, record


def records_of(record, idx) -> set[str]:
    return set(record[idx].tolist())


def assert_partition(split: Split, n: int):
    """train/val/test: sorted i64, disjoint, together every beat exactly once."""
    for part in split.parts().values():
        assert part.dtype == np.int64 and (np.diff(part) > 0).all()
    allidx = np.concatenate(list(split.parts().values()))
    assert len(allidx) == len(np.unique(allidx))
    return np.sort(allidx)


SPLIT_ARGS = [("holdout", {}), ("lpo", {}), ("ds1ds2", {}), ("kfold", {"fold": 2})]


@pytest.mark.parametrize("name,kw", SPLIT_ARGS)
def test_same_seed_same_split_bit_for_bit(beats, name, kw):
    y, record = beats
    a = make_split(name, y, record, seed=7, **kw)
    b = make_split(name, y, record, seed=7, **kw)
    c = make_split(name, y, record, seed=8, **kw)
    for part in ("train", "val", "test"):
        assert a.parts()[part].tobytes() == b.parts()[part].tobytes()
    assert any(not np.array_equal(a.parts()[p], c.parts()[p]) for p in ("train", "val", "test"))


def test_holdout_stratified_and_complete(beats):
    y, record = beats
    s = make_split("holdout", y, record, seed=0)
    assert not s.patient_wise
    np.testing.assert_array_equal(assert_partition(s, len(y)), np.arange(len(y)))
    for c in np.unique(y):
        n_c = int((y == c).sum())
        assert (y[s.test] == c).sum() == round(0.25 * n_c)
        assert (y[s.val] == c).sum() == round(0.10 * n_c)
        assert abs((y[s.train] == c).sum() - 0.65 * n_c) <= 1
    # It mixes patients (the paper's protocol): every record has beats in train and test.
    assert records_of(record, s.train) == records_of(record, s.test) == set(MITDB_RECORDS)
    with pytest.raises(AssertionError, match="is in both"):
        check_patient_disjoint(s, record)


def test_holdout_fractions_must_sum_to_one(beats):
    with pytest.raises(ConfigError, match="sum to 1"):
        make_split("holdout", *beats, fractions=(0.6, 0.1, 0.2))


def test_lpo_test_records(beats):
    y, record = beats
    s = make_split("lpo", y, record, seed=0)
    assert records_of(record, s.test) == {"104", "113", "119", "208", "210"} == set(JONES_LPO_TEST)
    assert len(records_of(record, s.val)) == 4
    assert records_of(record, s.train) | records_of(record, s.val) == set(MITDB_RECORDS) - set(JONES_LPO_TEST)
    np.testing.assert_array_equal(assert_partition(s, len(y)), np.arange(len(y)))
    check_patient_disjoint(s, record)


def test_ds1ds2_train_val_from_ds1_test_ds2(beats):
    y, record = beats
    keep = ~np.isin(record, PACED_RECORDS)  # the aami records
    s = make_split("ds1ds2", y[keep], record[keep], seed=0)
    r = record[keep]
    assert records_of(r, s.train) | records_of(r, s.val) == set(DS1)
    assert records_of(r, s.test) == set(DS2)
    assert len(records_of(r, s.val)) == 4
    np.testing.assert_array_equal(assert_partition(s, keep.sum()), np.arange(keep.sum()))
    check_patient_disjoint(s, r)
    # On all 48 records the paced ones are in no part.
    s48 = make_split("ds1ds2", y, record, seed=0)
    used = np.concatenate(list(s48.parts().values()))
    assert not set(PACED_RECORDS) & records_of(record, used)


def test_kfold_every_record_is_test_exactly_once(beats):
    y, record = beats
    k = 5
    seen: list[str] = []
    for fold in range(k):
        s = make_split("kfold", y, record, seed=3, fold=fold, k=k)
        check_patient_disjoint(s, record)
        np.testing.assert_array_equal(assert_partition(s, len(y)), np.arange(len(y)))
        assert len(records_of(record, s.val)) == 4
        seen += sorted(records_of(record, s.test))
    assert sorted(seen) == sorted(MITDB_RECORDS)
    with pytest.raises(ConfigError, match="fold"):
        make_split("kfold", y, record, fold=5, k=5)


def test_check_patient_disjoint_raises_on_overlap(beats):
    y, record = beats
    i100 = np.flatnonzero(record == "100")
    i101 = np.flatnonzero(record == "101")
    bad = Split(train=i100[:10], val=i101, test=i100[10:], name="bad")
    with pytest.raises(AssertionError, match="record 100 is in both train and test"):
        check_patient_disjoint(bad, record)
    check_patient_disjoint(Split(train=i100, val=i101, test=i101[:0], name="ok"), record)


def test_unknown_split(beats):
    with pytest.raises(ConfigError, match="unknown split 'loo'; available: holdout, lpo, ds1ds2, ds1, kfold"):
        make_split("loo", *beats)


def test_too_many_validation_records(beats):
    y, record = beats
    with pytest.raises(ConfigError, match="cannot draw 43 validation records from 43"):
        make_split("lpo", y, record, n_val_records=43)


# -- balancing ---------------------------------------------------------------------------


@pytest.fixture
def labelled():
    """y: sizes 100 / 40 / 10 / 25 in the training part, more beats outside it."""
    y = np.concatenate([np.full(100, 0), np.full(40, 1), np.full(10, 2), np.full(25, 3), np.full(50, 0), np.full(5, 2)])
    train = np.arange(175)
    return y.astype(np.int32), train


def test_downsample_majority(labelled):
    y, train = labelled
    out = balance(y, train, mode="downsample_majority", seed=0)
    assert out.dtype == np.int64
    assert set(out.tolist()) <= set(train.tolist())  # only training indices
    counts = np.bincount(y[out], minlength=4)
    assert counts.tolist() == [40, 40, 40, 40]  # the second-largest class's size
    maj = out[y[out] == 0]
    assert len(np.unique(maj)) == 40  # drawn without replacement
    assert sorted(out[y[out] == 1].tolist()) == list(range(100, 140))  # M2 class kept as is
    minority = out[y[out] == 2]
    assert len(np.unique(minority)) <= 10  # drawn with replacement from its 10
    assert not np.array_equal(out, np.sort(out))  # shuffled, not in class order


def test_upsample(labelled):
    y, train = labelled
    out = balance(y, train, mode="upsample", seed=0)
    assert set(out.tolist()) <= set(train.tolist())
    assert np.bincount(y[out], minlength=4).tolist() == [100, 100, 100, 100]
    assert sorted(out[y[out] == 0].tolist()) == list(range(100))


def test_balance_seeded(labelled):
    y, train = labelled
    for mode in ("none", "downsample_majority", "upsample"):
        a = balance(y, train, mode=mode, seed=1)
        assert a.tobytes() == balance(y, train, mode=mode, seed=1).tobytes()
        assert not np.array_equal(a, balance(y, train, mode=mode, seed=2))
    assert sorted(balance(y, train, mode="none").tolist()) == train.tolist()


def test_balance_edge_cases(labelled):
    y, train = labelled
    with pytest.raises(ConfigError, match="unknown balancing mode"):
        balance(y, train, mode="smote")
    assert balance(y, train[:0], mode="downsample_majority").tolist() == []
    one_class = balance(y, np.arange(20), mode="downsample_majority")
    assert sorted(one_class.tolist()) == list(range(20))
