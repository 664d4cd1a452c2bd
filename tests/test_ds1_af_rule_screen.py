"""experiments/ds1_af_rule_screen.py and the rules it screens (ecgjax.interpatient.suppress_s: irreg, plock)."""

import sys
from pathlib import Path

import numpy as np
import pytest

from ecgjax import interpatient as ip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import ds1_af_rule_screen as screen  # noqa: E402

CLASSES = ["N", "S", "V", "F", "Q"]


def test_the_rule_lowers_only_s_and_only_in_irregular_rhythm():
    lp = np.log(np.full((3, 5), 0.2))
    out = ip.suppress_s(lp, np.array([1.0, 1.2, 1.5]), 1.15, CLASSES)
    np.testing.assert_array_equal(out[0], lp[0])
    np.testing.assert_allclose(out[1:, 1], lp[1:, 1] - ip.AF_SUPPRESS)
    np.testing.assert_array_equal(np.delete(out, 1, axis=1), np.delete(lp, 1, axis=1))
    # plock: the other way round, S suppressed where the P window is not locked to R (below tau)
    out = ip.suppress_s(lp, np.array([0.03, 0.5, 0.9]), 0.1, CLASSES, rule="plock")
    np.testing.assert_allclose(out[0, 1], lp[0, 1] - ip.AF_SUPPRESS)
    np.testing.assert_array_equal(out[1:], lp[1:])
    with pytest.raises(ip.ConfigError, match="use one of"):
        ip.suppress_s(lp, np.ones(3), 1.0, CLASSES, rule="nope")
    # to="N": the suppressed beat's S probability is added to N's; the rest as without it
    p = np.array([[0.1, 0.5, 0.3, 0.05, 0.05], [0.6, 0.1, 0.1, 0.1, 0.1]])
    out = ip.suppress_s(np.log(p), np.array([0.03, 0.5]), 0.1, CLASSES, rule="plock", to="N")
    np.testing.assert_allclose(np.exp(out[0, [0, 2, 3, 4]]), [0.6, 0.3, 0.05, 0.05])
    np.testing.assert_allclose(out[0, 1], np.log(0.5) - ip.AF_SUPPRESS)
    np.testing.assert_array_equal(out[1], np.log(p[1]))
    assert np.argmax(out[0]) == 0 and np.argmax(ip.suppress_s(np.log(p), np.array([0.03, 0.5]), 0.1, CLASSES, rule="plock")[0]) == 2
    with pytest.raises(ip.ConfigError, match="a class other than S"):
        ip.suppress_s(lp, np.ones(3), 1.0, CLASSES, to="S")


def test_rule_scores_on_a_case_whose_answer_is_known():
    # 40 N beats in an irregular rhythm the model calls S, 10 true S beats in a regular one, 50 plain N beats
    y = np.array([0] * 40 + [1] * 10 + [0] * 50)
    irreg = np.array([1.4] * 40 + [1.0] * 10 + [1.0] * 50)
    logits = np.zeros((100, 5))
    logits[:50, 1] = 3.0  # the 40 irregular N and the 10 S look S
    logits[50:, 0] = 3.0
    without, with_rule = screen.rule_scores(logits, y, irreg, None), screen.rule_scores(logits, y, irreg, 1.15)
    assert without["S +P"] == pytest.approx(20.0) and without["S Se"] == pytest.approx(100.0)
    assert with_rule["S +P"] == pytest.approx(100.0) and with_rule["S Se"] == pytest.approx(100.0)
    assert with_rule["S AP"] == pytest.approx(100.0) and with_rule["S F1"] > without["S F1"]
    # the same case told by plock: the 40 N beats without P waves locked to R, the S beats with them
    plock = np.where(irreg > 1.15, 0.03, 0.6)
    assert screen.rule_scores(logits, y, plock, 0.1, "plock") == with_rule


def test_synthetic_share_grows_as_tau_falls_and_bad_input_is_one_line(tmp_path, capsys):
    shares = [screen.synthetic_share(t, 0.5, n=3) for t in (1.5, 1.15, 1.02)]
    assert shares[0] <= shares[1] <= shares[2] and 0.0 <= shares[0] and shares[2] <= 100.0
    assert screen.main([str(tmp_path / "a"), str(tmp_path / "b"), "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--ds1-only" in err[0]


def test_table_of_each_rule_from_one_file():
    scores = lambda f1: [{"S F1": f1, "S AP": 10.0, "S Se": 50.0, "S +P": 20.0, "V F1": 80.0}] * 2  # noqa: E731
    irreg = {"rule": "irreg", "command": "c1", "when": "w", "workdirs": ["a", "b"], "scores": {"none": scores(20.0), "1.1": scores(25.0)},
             "s_suppressed": {"1.1": {"share": 5.0, "by_record": {"201": 3}}}, "synthetic": {"1.1": {"0.1": 2.0, "0.85": 9.0}}}
    plock = {**irreg, "rule": "plock", "command": "c2", "scores": {"none": scores(20.0), "0.1": scores(30.0)},
             "s_suppressed": {"0.1": {"share": 4.0, "by_record": {"201": 2, "220": 7}}}, "synthetic": {}}
    older = {key: value for key, value in irreg.items() if key != "rule"}  # lines written before --rule: irreg
    text = screen.table([older, plock])
    assert "`c1`" in text and "| irreg > 1.1 | 25.0 ± 0.0 (+5.0, se 0.0) |" in text and "synthetic 85% S" in text
    text = screen.table([older, plock, irreg], "plock")
    assert "`c2`" in text and "| plock < 0.1 | 30.0 ± 0.0 (+10.0, se 0.0) |" in text and "synthetic" not in text
    assert "| 4.0% (220: 7, 201: 2) |" in text
    header = text.splitlines()[2]
    assert header.count("|") == 8 and "|  |" not in header  # rule, 5 scores, the DS1 column: no empty synthetic column
    with pytest.raises(KeyError, match="no screen of the rule 'plock'"):
        screen.table([older], "plock")
    # the same rule with S to N is its own table, named so
    to_n = {**plock, "to": "N", "command": "c3"}
    assert "`c2`" in screen.table([plock, to_n], "plock") and "`c3`" not in screen.table([plock, to_n], "plock")
    assert "| plock < 0.1, S to N | 30.0" in screen.table([plock, to_n], "plock", "N")
    # rows in the order no rule, then tau as a number, whatever the order of the line's keys
    text = screen.table([{**plock, "scores": {"0.2": scores(31.0), "0.05": scores(29.0), "none": scores(20.0), "0.1": scores(30.0)},
                          "s_suppressed": {t: {"share": 1.0, "by_record": {}} for t in ("0.05", "0.1", "0.2")}}], "plock")
    assert [line.split(" |")[0] for line in text.splitlines() if line.startswith(("| no", "| plock"))] == \
        ["| no rule", "| plock < 0.05", "| plock < 0.1", "| plock < 0.2"]
