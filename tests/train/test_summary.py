"""``ecgjax summarize``: a Markdown table read from results.json, numbers and CIs as computed."""

import json

import numpy as np
import pytest

from ecgjax import cli
from ecgjax.errors import EcgjaxError
from ecgjax.train import metrics
from ecgjax.train.summary import summarize

CLASSES = ["N", "S", "V", "F", "Q"]


def _results(tmp_path, name, seed, stopped=False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, 600)  # Q absent from the test set
    pred = np.where(rng.random(600) < 0.8, y, rng.integers(0, 5, 600))
    rec = np.array([f"r{i % 12}" for i in range(600)])
    rep = metrics.report(y, pred, CLASSES, record=rec, n_bootstrap=50, seed=0)
    wd = tmp_path / name
    wd.mkdir()
    res = {"name": name, "test": rep, "epochs_run": 4, "steps": 120, "stopped_early": stopped,
           "wall_time_s": 1500.0, "config": {"train": {"epochs": 70}},
           "device": {"count": 1, "kind": "cpu", "platform": "cpu", "cpu_count": 2}}
    (wd / "results.json").write_text(json.dumps(res))
    return wd, rep


def test_table_has_one_row_per_run_with_the_computed_numbers(tmp_path):
    (a, ra), (b, _) = _results(tmp_path, "run_a", 0), _results(tmp_path, "run_b", 1, stopped=True)
    lines = summarize([a, b], ["S", "V"]).splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == 13
    row = [c.strip() for c in lines[2].strip("|").split("|")]
    assert row[:5] == ["run_a", "4 / 70", "120", "25 min", "1 x cpu (2 CPU cores)"]
    lo, hi = ra["ci"]["accuracy"]
    assert row[5] == f"{ra['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"
    assert row[6].startswith(f"{ra['macro']['sklearn']['f1']:.3f} [")
    assert row[7].startswith(f"{ra['macro']['present']['f1']:.3f} [")
    se, ci = ra["per_class"]["S"]["recall"], ra["ci"]["S.recall"]
    assert row[8] == f"{100 * se:.1f} [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]"
    assert row[11].startswith(f"{100 * ra['per_class']['V']['precision']:.1f} [")
    assert "(early stop)" in lines[3] and "(early stop)" not in lines[2]


def test_unfinished_run_and_unknown_class_are_clear_errors(tmp_path, capsys):
    (tmp_path / "unfinished").mkdir()
    with pytest.raises(EcgjaxError, match="unfinished: no results.json"):
        summarize([tmp_path / "unfinished"])
    wd, _ = _results(tmp_path, "run_a", 0)
    with pytest.raises(EcgjaxError, match=r"\['SVEB'\] not in"):
        summarize([wd], ["SVEB"])
    assert cli.main(["summarize", str(wd), str(tmp_path / "unfinished")]) == 2
    assert "no results.json" in capsys.readouterr().err
    assert cli.main(["summarize", str(wd), "--classes", "V"]) == 0
    assert "| run_a | 4 / 70 |" in capsys.readouterr().out


def test_undefined_precision_and_recall_are_na_with_the_reason(tmp_path, capsys):
    """V never predicted (+P is 0/0), Q absent from the test set (Se is 0/0); results.json written
    as training writes it (NaN CIs become null), which used to crash with a TypeError."""
    from ecgjax.train.writers import dumps

    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 600)
    pred = np.where(y == 2, 0, y)  # V (2) is never predicted
    rep = metrics.report(y, pred, CLASSES, record=np.array([f"r{i % 12}" for i in range(600)]), n_bootstrap=20)
    wd = tmp_path / "run"
    wd.mkdir()
    res = {"name": "run", "test": rep, "epochs_run": 1, "steps": 10, "wall_time_s": 60.0, "config": {"train": {"epochs": 1}},
           "device": {"count": 1, "kind": "cpu", "platform": "cpu", "cpu_count": 2}}
    (wd / "results.json").write_text(dumps(res))
    assert json.loads((wd / "results.json").read_text())["test"]["ci"]["V.precision"] == [None, None]
    assert cli.main(["summarize", str(wd), "--classes", "V,Q,N"]) == 0
    row = [c.strip() for c in capsys.readouterr().out.splitlines()[2].strip("|").split("|")]
    assert row[8:12] == ["0.0 [0.0, 0.0]", "n/a (never predicted)", "n/a (no test beats)", "n/a (never predicted)"]
    assert row[12] == f"{100 * rep['per_class']['N']['recall']:.1f}" + " [" + f"{100 * rep['ci']['N.recall'][0]:.1f}, {100 * rep['ci']['N.recall'][1]:.1f}]"
