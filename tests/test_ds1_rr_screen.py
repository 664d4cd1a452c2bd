"""experiments/ds1_rr_screen.py: the candidate references against direct loops, the design, bad input."""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from tests.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "ds1_rr_screen.py"


def _screen():
    return load_script(SCRIPT)


def test_references_match_loops():
    mod = _screen()
    rng = np.random.default_rng(0)
    pre = rng.uniform(0.4, 1.6, 300)
    t = np.cumsum(pre)
    ref = mod.references(t, pre)
    i = 150
    np.testing.assert_allclose(ref["mean"][i], np.mean(pre[: i + 1]), rtol=1e-12)
    np.testing.assert_allclose(ref["median32"][i], statistics.median(pre[i - 31 : i + 1]), rtol=1e-12)
    np.testing.assert_allclose(ref["median300s"][i], statistics.median(pre[(t >= t[i] - 300.0) & (np.arange(300) <= i)]), rtol=1e-12)
    # robust: the mean of the last 32 accepted beats, a beat accepted within 0.8-1.2x the reference before it
    buf = [pre[0]]
    for p in pre[: i + 1]:
        if 0.8 <= p / np.mean(buf[-32:]) <= 1.2:
            buf.append(p)
    np.testing.assert_allclose(ref["robust"][i], np.mean(buf[-32:]))
    for q in (75, 90):
        np.testing.assert_allclose(ref[f"upper{q}"][i], np.percentile(pre[i - 31 : i + 1], q), rtol=1e-12)
        np.testing.assert_allclose(ref[f"upper{q}"][5], np.percentile(pre[:6], q), rtol=1e-12)  # fewer than 32 so far


def test_design_columns():
    mod = _screen()
    raw = np.log(np.array([[0.6, 1.4, 0.9, 1.0]]))
    refs = {"mean": np.log([1.0]), "median64": np.log([0.5])}
    x = mod.design(raw, refs, "mean")
    assert x.shape == (1, 9)
    np.testing.assert_allclose(x[0, :2], [np.log(0.6 / 0.9), np.log(1.4 / 0.6)])  # pre/local, post/pre
    np.testing.assert_allclose(x[0, 5:], raw[0])  # over a reference of 1 s: the log intervals
    assert mod.design(raw, refs, "mean+median64").shape == (1, 13)
    np.testing.assert_allclose(mod.design(raw, refs, "median64+raw")[0, 9:], raw[0])


def test_local_columns_need_no_reference():
    mod = _screen()
    # pre, post, local, long, prev, lmin, lmax (s)
    raw = np.log(np.array([[0.6, 1.4, 0.9, 1.0, 1.2, 0.5, 1.5]]))
    x = mod.design(raw, {"median32": np.log([2.0])}, "median32+prev+spread+pmin")
    assert x.shape == (1, 12)
    np.testing.assert_allclose(x[0, 9:], np.log([0.6 / 1.2, 1.5 / 0.5, 0.6 / 0.5]))
    np.testing.assert_allclose(mod.design(raw, {}, "prev+spread+pmin")[0, 5:], x[0, 9:])  # no running reference at all


def test_unknown_candidate_exits_2(capsys):
    assert _screen().main(["nope", "--data-dir", "."]) == 2
    assert "unknown candidate" in capsys.readouterr().err


def test_a_data_dir_without_mitdb_exits_2(tmp_path, capsys):
    """Before: a FileNotFoundError traceback from wfdb on the first DS1 record."""
    assert _screen().main(["median32", "--data-dir", str(tmp_path)]) == 2
    assert f"{tmp_path}/mitdb" in capsys.readouterr().err
