"""The ground-truth and expert-rule checks end to end on tiny WFDB records of a synthetic ECG (delineated by the default envelope method)."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from ecgjax.data import load_beats, protocols
from ecgjax.study.groundtruth import GroundTruthSpec, ground_truth_check
from tests.data.test_delineation import synthetic_ecg

RECORDS = {"g1": (0.8, 0.025), "g2": (0.7, 0.03), "g3": (0.9, 0.02), "g4": (0.75, 0.04)}  # RR s, QRS half-width s


@pytest.fixture
def gdb(tiny_db):
    for name, (rr, h) in RECORDS.items():
        x, r = synthetic_ecg(n_beats=30, rr_s=rr, qrs_half_s=h)
        sym = ["V" if i % 5 == 2 else "N" for i in range(len(r))]
        tiny_db.record(name, list(zip(r.tolist(), sym)), signal=np.round(np.stack([x, 0.5 * x], 1) * 200).astype(np.int16))
    return tiny_db


@pytest.mark.slow  # three regressors trained and explained: minutes on a loaded 2-core CPU
def test_ground_truth_check_on_records(gdb, cache_path, tmp_path):
    spec = GroundTruthSpec(train_records=("g1", "g2"), test_records=("g3", "g4"), max_train=48, max_test=20, epochs=1,
                           batch_size=16, methods=("saliency", "random"), n_boot=20,
                           model_kwargs={"filters": (4, 4, 4, 4), "lead_layout": "channels", "dropout": 0.0})
    out = ground_truth_check(spec, tmp_path, data_dir=gdb.root, cache=cache_path)
    assert set(out["targets"]) == {"rr", "qrs_width", "r_amplitude"}
    for t, res in out["targets"].items():
        assert res["n_test_records"] == 2 and 0 < res["n_test"] <= 20 and np.isfinite(res["r2_test"]), t
        rnd = res["methods"]["random"]
        assert 0 < rnd["random"] < 0.5 and rnd["share"] == pytest.approx(rnd["random"], abs=0.1), t
        sal = res["methods"]["saliency"]
        assert 0 <= sal["share_ci"][0] <= sal["share"] <= sal["share_ci"][1] <= 1
    assert {d["method"] for d in out["ranking"]} == {"saliency", "random"}
    assert json.loads((tmp_path / "ground_truth.json").read_text())["ranking"] == out["ranking"]


def test_expert_rules_on_records(gdb, cache_path, tmp_path):
    """V beats' maps all in their QRS (from the delineation), N beats' maps uniform: V's QRS share is 1 and enriched."""
    from ecgjax.analysis.waves import wave_masks
    from ecgjax.attribution.attributions import Attributions
    from ecgjax.data.delineation import load_waves
    from ecgjax.report import Report
    from ecgjax.study.expert_rules import expert_rule_check
    from ecgjax.study.report_waves import add_expert_rules_section

    beats = load_beats(protocols.get("aami", records=tuple(RECORDS)), gdb.root, cache=cache_path)
    idx = np.arange(len(beats))
    waves = load_waves(beats, gdb.root, cache=cache_path)
    qrs = wave_masks(waves.bounds, beats.x.shape[1], beats.lo, beats.hi)[:, 2]
    v = beats.classes.index("V")
    maps = np.where((beats.y == v)[:, None, None], qrs[:, :, None], 1.0).astype(np.float32) * np.ones_like(beats.x)
    a = Attributions(maps, beats.y, beats.y, beats.y, idx, "saliency", {"hparams": {}, "target": "label"}, {}, beats.classes, beats.fs)
    a.save(tmp_path / "attr")
    run = types.SimpleNamespace(beats=beats)
    out = expert_rule_check(run, {"methods": {"saliency-label-abs": {"attr_dir": str(tmp_path / "attr")}}}, tmp_path,
                            data_dir=gdb.root, cache=cache_path, n_boot=20)
    st = out["methods"]["saliency-label-abs"]["V"]
    assert out["classes"] == {"V": "QRS", "S": "P", "F": "QRS"}
    assert st["wave"] == "QRS" and st["share"] == pytest.approx(1.0) and st["enrichment"] > 3 and st["enrichment_others"] == 0
    assert st["n"] == out["quality"]["V"][0] > 0 and st["n_records"] == 4
    assert (tmp_path / "expert_rules.json").exists()
    # per record: the beats used and their QRS width, against the planted extent (+-(half-width + 20 ms))
    by = out["by_record"]["V"]
    assert sum(n for n, _ in by.values()) == st["n"]
    for rec, (rr, h) in RECORDS.items():
        assert by[rec][1] == pytest.approx(2 * (1000 * h + 20), abs=15), rec  # planted_ms of tests/data/test_delineation.py
    rep = Report("t")
    add_expert_rules_section(rep, out)
    md = rep.to_markdown()
    assert f"| V | QRS | g4 | {by['g4'][0]} | {by['g4'][1]:.0f} |" in md


@pytest.mark.slow  # the whole stage with its figures, twice: seconds; the fast check is tests/analysis/test_waves.py's
def test_glocal_by_wave_leaves_out_failed_delineations(gdb, cache_path, tmp_path, monkeypatch):
    """The audit's glocal stage by wave: beats whose delineation failed the quality flag (here every third V beat,
    given a huge map) are not averaged, and the stage counts them per class; by subgroup, the waves where two
    subgroups' CIs do not overlap are counted (records g3 and g4 given twice the relevance of g1 and g2: every
    lead x wave column of N and V) and the report lists them."""
    from ecgjax.analysis.segments import segment_values
    from ecgjax.attribution.attributions import Attributions
    from ecgjax.data import delineation
    from ecgjax.io import atomic_savez
    from ecgjax.study import audit

    beats = load_beats(protocols.get("aami", records=tuple(RECORDS)), gdb.root, cache=cache_path)
    idx = np.arange(len(beats))
    v = beats.classes.index("V")
    failed = (beats.y == v) & (np.cumsum(beats.y == v) % 3 == 0)
    real = delineation.load_waves
    fails = {(str(r), int(t)) for r, t in zip(beats.record[failed], beats.sample[failed])}

    def some_fail(b, *a, **k):  # the real delineation, with the chosen beats' quality flag off
        w = real(b, *a, **k)
        off = np.array([(str(r), int(t)) in fails for r, t in zip(b.record, b.sample)])
        return delineation.Waves(w.bounds, w.quality & ~off, w.lead, w.method)

    monkeypatch.setattr(delineation, "load_waves", some_fail)
    halves = {"record": {r: r for r in RECORDS}, "half": {"g1": "a", "g2": "a", "g3": "b", "g4": "b"}}
    monkeypatch.setattr(audit, "_subgroupings", lambda cfg, run, data_dir: halves)
    maps = np.ones_like(beats.x)
    maps[np.isin(beats.record, ["g3", "g4"])] = 2.0
    maps[failed] = 1000.0
    Attributions(maps, beats.y, beats.y, beats.y, idx, "saliency", {"hparams": {}, "target": "label"}, {}, beats.classes,
                 beats.fs).save(tmp_path / "attr")
    seg = segment_values(maps, beats.r, beats.lo, beats.hi, beats.fs)
    (tmp_path / "prof").mkdir()
    atomic_savez(tmp_path / "prof" / "segments.npz", index=idx, values=seg.values, label=beats.y, pred=beats.y,
                 labels=np.array([f"s{i}" for i in range(seg.values.shape[1] * seg.values.shape[2])]))
    cfg = types.SimpleNamespace(audit=types.SimpleNamespace(waves=True, glocal_splits=2), n_boot=5, seed=0)
    run = types.SimpleNamespace(beats=beats, config=types.SimpleNamespace(data=types.SimpleNamespace(protocol="aami")))
    one = {"attr_dir": str(tmp_path / "attr"), "profile_dir": str(tmp_path / "prof"), "spec": {"transform": "abs"}}
    info = {"saliency-label-abs": one, "again-label-abs": one}  # two methods: the stage's loop runs twice
    out = audit.glocal_stage(cfg, run, info, tmp_path / "glocal", data_dir=gdb.root, cache=cache_path)
    w = out["methods"]["saliency-label-abs"]["waves"]
    n_v, n_failed = int((beats.y == v).sum()), int(failed.sum())
    assert n_failed > 0 and w["quality"]["V"] == [n_v - n_failed, n_v] and w["method"] == "envelope"
    assert w["quality"]["N"][0] == w["quality"]["N"][1] == int((beats.y == beats.classes.index("N")).sum())
    assert w["n_beats"][v] == n_v - n_failed
    assert np.nanmax(w["mean"][v]) <= 2.0  # the failed beats' 1000s are not in V's means
    assert out["methods"]["again-label-abs"]["waves"]["quality"] == w["quality"]
    sep = out["methods"]["saliency-label-abs"]["separated_waves"]["half"]
    n_cols = len(w["labels"])
    assert n_cols == 10 and sep["N"] == sep["V"] == n_cols and sep["S"] == 0  # S: no beats, no CIs
    from ecgjax.report import Report

    rep = Report("t")
    audit.render(rep, audit.AuditResult("r", None, out, None, None, {}))
    assert "| saliency-label-abs | half | 10 | 0 | 10 |" in rep.to_markdown()
