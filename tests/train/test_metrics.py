"""Metrics against a hand-computed example and independent sklearn-style definitions."""

import json

import numpy as np
import pytest

from ecgjax.train import metrics

CLASSES = ["N", "S", "V", "F"]
# 10 beats; F has no support and is never predicted; S is predicted once wrongly
Y_TRUE = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])
Y_PRED = np.array([0, 0, 0, 0, 1, 1, 0, 2, 2, 0])
RECORD = np.array(["a", "a", "a", "b", "b", "b", "c", "c", "c", "c"])


def test_hand_computed_example():
    r = metrics.report(Y_TRUE, Y_PRED, CLASSES)
    assert r["confusion"] == [[4, 1, 0, 0], [1, 1, 0, 0], [1, 0, 2, 0], [0, 0, 0, 0]]
    assert r["accuracy"] == pytest.approx(0.7)
    n, s, v, f = (r["per_class"][c] for c in CLASSES)
    # N: TP 4, FP 2, FN 1, TN 3
    assert n["precision"] == pytest.approx(4 / 6) and n["recall"] == pytest.approx(4 / 5)
    assert n["specificity"] == pytest.approx(3 / 5) and n["fpr"] == pytest.approx(2 / 5)
    assert n["f1"] == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    # S: TP 1, FP 1, FN 1, TN 7
    assert (s["se"], s["ppv"], s["specificity"], s["support"]) == (pytest.approx(0.5), pytest.approx(0.5), pytest.approx(7 / 8), 2)
    # V: TP 2, FP 0, FN 1, TN 7
    assert v["precision"] == 1.0 and v["recall"] == pytest.approx(2 / 3) and v["fpr"] == 0.0
    # F: no support, never predicted -> 0 (sklearn zero_division=0), specificity 1
    assert f["support"] == 0 and f["recall"] == 0.0 and f["f1"] == 0.0 and f["specificity"] == 1.0
    f1s = [n["f1"], s["f1"], v["f1"]]
    assert r["macro"]["present"]["f1"] == pytest.approx(np.mean(f1s))
    assert r["macro"]["sklearn"]["f1"] == pytest.approx(np.mean(f1s))  # F is neither true nor predicted
    assert r["macro"]["all"]["f1"] == pytest.approx(np.sum(f1s) / 4)
    assert r["macro"]["all"]["specificity"] == pytest.approx((3 / 5 + 7 / 8 + 7 / 7 + 1) / 4)
    assert r["macro_classes"]["present"] == ["N", "S", "V"]
    np.testing.assert_allclose(np.asarray(r["confusion_row_normalised"])[2], [1 / 3, 0, 2 / 3, 0])
    assert np.asarray(r["confusion_row_normalised"])[3].sum() == 0


def _sklearn_style(y_true, y_pred, labels):
    """Independent re-statement of sklearn's precision_recall_fscore_support(average='macro', zero_division=0)."""
    ps, rs, fs = [], [], []
    for c in labels:
        tp = sum(1 for t, p in zip(y_true, y_pred) if t == c and p == c)
        pred = sum(1 for p in y_pred if p == c)
        true = sum(1 for t in y_true if t == c)
        prec = tp / pred if pred else 0.0
        rec = tp / true if true else 0.0
        ps.append(prec)
        rs.append(rec)
        fs.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return np.mean(ps), np.mean(rs), np.mean(fs)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_against_sklearn_style(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, 200)
    y_true[y_true == 3] = 0  # class 3 absent from the truth
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 5, 200))  # class 4 predicted, never true
    classes = list("abcde")
    r = metrics.report(y_true, y_pred, classes)
    union = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    p, rec, f = _sklearn_style(y_true, y_pred, union)
    assert r["macro"]["sklearn"]["precision"] == pytest.approx(p)
    assert r["macro"]["sklearn"]["recall"] == pytest.approx(rec)
    assert r["macro"]["sklearn"]["f1"] == pytest.approx(f)
    p, rec, f = _sklearn_style(y_true, y_pred, range(5))
    assert r["macro"]["all"]["f1"] == pytest.approx(f) and r["macro"]["all"]["recall"] == pytest.approx(rec)
    p, rec, f = _sklearn_style(y_true, y_pred, sorted(set(y_true.tolist())))
    assert r["macro"]["present"]["f1"] == pytest.approx(f)
    assert r["accuracy"] == pytest.approx(np.mean(y_true == y_pred))


def test_bootstrap_over_records_is_seeded_and_brackets_the_estimate():
    a = metrics.report(Y_TRUE, Y_PRED, CLASSES, record=RECORD, n_bootstrap=200, seed=5)
    b = metrics.report(Y_TRUE, Y_PRED, CLASSES, record=RECORD, n_bootstrap=200, seed=5)
    c = metrics.report(Y_TRUE, Y_PRED, CLASSES, record=RECORD, n_bootstrap=200, seed=6)
    same = lambda u, v: json.dumps(u, sort_keys=True) == json.dumps(v, sort_keys=True)  # noqa: E731 (NaN-safe)
    assert same(a["ci"], b["ci"]) and not same(a["ci"], c["ci"])
    lo, hi = a["ci"]["accuracy"]
    assert lo <= a["accuracy"] <= hi and lo < hi
    # every resample pools whole records: with 3 records accuracy takes few values
    assert lo >= 0.0 and hi <= 1.0
    # one record only: every resample is the data itself -> a degenerate interval at the estimate
    one = metrics.report(Y_TRUE, Y_PRED, CLASSES, record=np.full(10, "x"), n_bootstrap=20, seed=0)
    assert one["ci"]["accuracy"] == [pytest.approx(0.7), pytest.approx(0.7)]
    assert one["ci"]["S.recall"] == [pytest.approx(0.5), pytest.approx(0.5)]
    assert np.isnan(one["ci"]["F.recall"]).all()  # undefined in every resample
    assert "accuracy" in metrics.format_table(a)


def test_bootstrap_resamples_records_not_beats():
    # record r0: all correct; record r1: all wrong. Any record-level resample has accuracy in {0, .5, 1}
    y = np.zeros(20, int)
    p = np.r_[np.zeros(10, int), np.ones(10, int)]
    rec = np.r_[np.full(10, "r0"), np.full(10, "r1")]
    ci = metrics.bootstrap_ci(y, p, rec, ["a", "b"], n_samples=300, seed=0)
    assert ci["accuracy"][0] == 0.0 and ci["accuracy"][1] == 1.0
