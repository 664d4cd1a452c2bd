"""The real-data smoke run (experiments/configs/smoke.py): trains, checkpoints, survives a
crash, resumes, evaluates, and load_run reads it back. Needs the MIT-BIH records.

Slow (real-data training, ~15 s of CPU): the default suite checks the same behaviours on tiny data
(tests/train/test_train.py: a killed run resumes exactly; tests/test_interpatient.py: a quick run trains and
evaluates on real records; tests/study: load_run reads a run back)."""

import json
import time
from pathlib import Path

import pytest

from ecgjax.config import load_config
from ecgjax.train import load_run, train_and_evaluate

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.realdata, pytest.mark.slow]


class _Crash(Exception):
    pass


def test_smoke_config_trains_crashes_resumes_and_evaluates(real_data_dir, tmp_path):
    data_dir = real_data_dir
    cfg = load_config(str(ROOT / "experiments" / "configs" / "smoke.py"))
    wd = tmp_path / "smoke"
    cache = tmp_path / "cache"
    t0 = time.time()

    def crash(step):
        if step == 20:
            raise _Crash

    with pytest.raises(_Crash):
        train_and_evaluate(cfg, wd, data_dir=data_dir, cache=cache, on_step=crash)
    assert (wd / "checkpoints" / "16").is_dir() and not (wd / "results.json").exists()
    res = train_and_evaluate(cfg, wd, data_dir=data_dir, cache=cache)
    wall = time.time() - t0
    assert res["resumed_from_step"] == 18  # the epoch-end checkpoint after step 18 (18 steps/epoch)
    assert res["epochs_run"] == cfg.train.epochs
    epochs = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    epochs = [e for e in epochs if e["kind"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [0, 1]  # epoch 0 from the crashed run, kept; epoch 1 after resuming
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]  # it trains
    assert 0.0 <= res["test"]["accuracy"] <= 1.0 and res["test"]["n"] == res["split"]["test"] > 0
    assert res["test"]["ci"]["accuracy"][0] <= res["test"]["accuracy"] <= res["test"]["ci"]["accuracy"][1]
    assert set(res["test"]["per_class"]) == {"N", "S", "V", "F", "Q"}
    run = load_run(wd, data_dir=data_dir, cache=cache)
    assert run.beats.x.shape[1:] == (252, 2) and len(run.predictions["index"]) == res["split"]["test"]
    print(f"smoke wall time {wall:.1f} s")
