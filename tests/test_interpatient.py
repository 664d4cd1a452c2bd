"""The inter-patient benchmark: DS1-only training, DS2 read once, the quick config end to end."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from ecgjax import interpatient
from ecgjax.data import wfdb_io
from ecgjax.data.dataset import BeatSet
from ecgjax.data.protocols import DS1, DS2
from ecgjax.data.splits import make_split
from ecgjax.errors import ConfigError

QUICK = "experiments/configs/aami_rr.py:quick"


@pytest.fixture
def reads(monkeypatch):
    """Names of the records read from disk, in order."""
    names = []
    real = wfdb_io.read_record

    def spy(folder, name, **kw):
        names.append(name)
        return real(folder, name, **kw)

    monkeypatch.setattr(wfdb_io, "read_record", spy)
    return names


def test_quick_run_trains_on_ds1_only_and_reads_ds2_once(tiny_mitdb, cache_path, tmp_path, reads):
    cfg = interpatient.load_config(QUICK)
    work = tmp_path / "work"
    interpatient.train_phase(cfg, work, data_dir=tiny_mitdb.root, cache=cache_path)
    assert reads and set(reads) <= set(DS1), sorted(set(reads) - set(DS1))
    # the beat cache the training wrote holds DS1 records only
    (entry,) = list(cache_path.iterdir())
    assert set(BeatSet.load(entry).record.tolist()) <= set(DS1)

    n_before = len(reads)
    results = interpatient.run(cfg, work, data_dir=tiny_mitdb.root, cache=cache_path)
    test_reads = reads[n_before:]
    assert sorted(test_reads) == sorted(DS2), "DS2 is read once, every record, after training"

    on_disk = json.loads((work / "results.json").read_text())
    assert on_disk["test_records"] == list(DS2) and set(on_disk["train_records"]) <= set(DS1)
    rep = on_disk["ds2"]["per_seed"]["0"]
    assert rep["n"] == sum(rep["per_class"][c]["support"] for c in on_disk["classes"])
    with np.load(work / "ds2" / "seed0.npz") as z:
        assert set(z["record"].tolist()) == set(DS2)
        np.testing.assert_array_equal(np.bincount(z["y_true"], minlength=5), [rep["per_class"][c]["support"] for c in on_disk["classes"]])
    for method in ("integrated_gradients", "saliency"):
        for c in ("S", "V"):
            share = on_disk["attribution"][method][c]["rr_share"]
            assert 0 <= share["mean"] <= 1 and share["n_beats"] > 0
            assert len(on_disk["attribution"][method][c]["per_feature"]["mean"]) == 8
    text = (work / "report.md").read_text()
    assert "| de Chazal et al. 2004 | 75.9 | 38.5 |" in text and "RR share" in text
    assert results["ds2"]["summary"]["S"]["se"]["mean"] == rep["per_class"]["S"]["recall"]
    assert interpatient.main(["--table", str(work / "results.json")]) == 0
    assert interpatient.main(["--table", str(tmp_path / "missing.json")]) == 2


def test_config_refuses_test_records_in_training():
    cfg = interpatient.load_config(QUICK)
    bad_data = dataclasses.replace(cfg.train.data, protocol_overrides={"records": DS1 + ("100",)})
    with pytest.raises(ConfigError, match="DS1 only"):
        interpatient.check(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=bad_data)))
    with pytest.raises(ConfigError, match="'ds1'"):
        interpatient.check(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=dataclasses.replace(cfg.train.data, split="ds1ds2"))))


def test_every_variant_loads():
    for arg in ("both", "waveform", "rr", "quick", "rr,quick", "seeds2"):
        cfg = interpatient.load_config(f"experiments/configs/aami_rr.py:{arg}")
        assert cfg.train.model.name == "rr_net"
    assert interpatient.load_config("experiments/configs/aami_rr.py").seeds == (0, 1, 2, 3, 4)
    with pytest.raises(ConfigError, match="unknown variant"):
        interpatient.load_config("experiments/configs/aami_rr.py:nope")


def test_ds1_split_validates_inside_ds1_and_refuses_other_records():
    record = np.repeat(np.array(DS1), 3)
    s = make_split("ds1", np.zeros(len(record), np.int32), record, seed=0, n_val_records=4)
    assert len(set(record[s.val])) == 4 and not set(record[s.val]) & set(record[s.train])
    np.testing.assert_array_equal(s.test, s.val)
    with pytest.raises(ConfigError, match="DS1 records only"):
        make_split("ds1", np.zeros(4, np.int32), np.array(["101", "100", "101", "100"]), seed=0)


def test_rr_shares_closed_form():
    wave = np.zeros((2, 3, 2))
    wave[0, 0, 0], wave[0, 2, 1] = 1.0, -3.0  # t=2 is padding for beat 0
    wave[1] = 0.5
    valid = np.array([[True, True, False], [True, True, True]])
    rr = np.array([[1.0, -1.0], [0.0, 0.0]])
    share, feat = interpatient.rr_shares(wave, rr, valid)
    np.testing.assert_allclose(share, [2 / 3, 0.0])
    np.testing.assert_allclose(feat, [[1 / 3, 1 / 3], [0, 0]])


def test_mean_ci_over_records():
    v = np.array([1.0, 1.0, 3.0, 5.0])
    rec = np.array(["a", "a", "b", "c"])
    out = interpatient.mean_ci_over_records(v, rec, n_boot=2000, seed=0)
    assert out["mean"] == pytest.approx(2.5) and out["n_records"] == 3
    lo, hi = out["ci"]
    assert 1.0 <= lo < 2.5 < hi <= 5.0  # pooled beats: all-"a" resample gives 1, all-"c" gives 5
    assert "ci" not in interpatient.mean_ci_over_records(v, rec, n_boot=0)


def test_lead_labels_name_every_lead_a_position_holds():
    names = {"100": ("MLII", "V5"), "103": ("MLII", "V2"), "114": ("MLII", "V5")}
    assert interpatient._lead_labels(names) == ["MLII", "V2/V5"]
