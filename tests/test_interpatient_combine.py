"""experiments/interpatient_combine.py: the weight and offsets come from DS1 out-of-record predictions only."""

import json
from pathlib import Path

import numpy as np

from tests.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "interpatient_combine.py"
CLASSES = ["N", "S", "V", "F", "Q"]


def _script():
    return load_script(SCRIPT)


def _workdir(root: Path, name: str, ds1: dict, ds2: dict) -> Path:
    w = root / name
    for s, (idx, logits, y) in ds1.items():
        (w / "runs" / f"seed{s}").mkdir(parents=True)
        np.savez(w / "runs" / f"seed{s}" / "predictions.npz", index=idx, logits=logits, y_true=y, record=np.array(["101"] * len(y)))
    (w / "ds2").mkdir()
    for s, (logits, y) in ds2.items():
        np.savez(w / "ds2" / f"seed{s}.npz", logits=logits, y_true=y, record=np.array(["100", "103"] * (len(y) // 2)), y_pred=y, offsets=np.zeros(5))
    (w / "results.json").write_text(json.dumps({
        "name": name, "seeds": sorted(ds1), "classes": CLASSES, "test_records": ["100", "103"], "train_records": ["101"],
        "ds1_cv": {}, "config": {"tune_offsets": ["S", "V"]}, "published": [], "goal": {}}))
    return w


def test_second_expert_chosen_when_it_alone_separates_ds1(tmp_path):
    rng = np.random.default_rng(0)
    y = np.array([0] * 40 + [1] * 10 + [2] * 10, np.int32)
    idx = np.arange(len(y))
    noise = rng.standard_normal((len(y), 5)).astype(np.float32)
    good = noise.copy()
    good[np.arange(len(y)), y] += 6.0  # expert b knows the classes, expert a is noise
    y2 = np.array([0, 1] * 10, np.int32)
    z2 = rng.standard_normal((20, 5)).astype(np.float32)
    a = _workdir(tmp_path, "a", {0: (idx, noise, y)}, {0: (z2, y2)})
    b = _workdir(tmp_path, "b", {0: (idx, good, y)}, {0: (z2, y2)})
    res = _script().combine(a, b, n_bootstrap=0)
    assert res["ds1_cv"]["chosen_w"] > 0
    # DS2's labels were never used to choose: the same w whatever the DS2 labels are
    np.savez(b / "ds2" / "seed0.npz", logits=z2, y_true=1 - y2, record=np.array(["100", "103"] * 10), y_pred=y2, offsets=np.zeros(5))
    np.savez(a / "ds2" / "seed0.npz", logits=z2, y_true=1 - y2, record=np.array(["100", "103"] * 10), y_pred=y2, offsets=np.zeros(5))
    assert _script().combine(a, b, n_bootstrap=0)["ds1_cv"] == res["ds1_cv"]


def test_different_folds_exit_2(tmp_path, capsys):
    y = np.zeros(6, np.int32)
    z = np.zeros((6, 5), np.float32)
    a = _workdir(tmp_path, "a", {0: (np.arange(6), z, y)}, {0: (z, y)})
    b = _workdir(tmp_path, "b", {0: (np.arange(6) + 1, z, y)}, {0: (z, y)})
    assert _script().main([str(a), str(b), "--out", str(tmp_path / "o.json")]) == 2
    assert "different DS1 beats" in capsys.readouterr().err
    assert _script().main([str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "o.json")]) == 2
