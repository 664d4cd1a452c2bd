"""The inter-patient benchmark: DS1-only training, DS2 read once, the quick config end to end."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgjax import interpatient
from ecgjax.data import wfdb_io
from ecgjax.data.dataset import BeatSet
from ecgjax.data.protocols import DS1, DS2
from ecgjax.data.rr import FEATURES
from ecgjax.data.splits import make_split
from ecgjax.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

QUICK = "experiments/configs/aami_rr.py:quick"


def _narrow(cfg):
    """``cfg`` with a two-block waveform branch: these tests follow the records and predictions, not the model's depth."""
    model = cfg.train.model
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, model=dataclasses.replace(
        model, kwargs={**model.kwargs, "filters": (4, 4)})))


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


# :aug (rhythm augmentation, ecgjax.data.rhythm) runs the same path with synthetic training beats appended
# (slow; tests/data/test_rhythm.py checks its data preparation reads no DS2 record in the default suite)
@pytest.mark.heavy
@pytest.mark.parametrize("variant", [QUICK, pytest.param(QUICK + ",aug", marks=pytest.mark.slow)])
def test_quick_run_trains_on_ds1_only_and_reads_ds2_once(tiny_mitdb, cache_path, tmp_path, reads, variant):
    cfg = _narrow(interpatient.load_config(variant))
    work = tmp_path / "work"
    # --ds1-only: train, score the out-of-record DS1 predictions, read no DS2 record
    scores = interpatient.ds1_phase(cfg, work, data_dir=tiny_mitdb.root, cache=cache_path)
    assert reads and set(reads) <= set(DS1), sorted(set(reads) - set(DS1))
    assert json.loads((work / "ds1_cv.json").read_text()) == json.loads(json.dumps(scores))
    assert set(scores["records"]) <= set(DS1) and 0 <= scores["S"]["ap"] <= 1
    # the beat cache the training wrote holds DS1 records only
    (entry,) = list(cache_path.iterdir())
    assert set(BeatSet.load(entry).record.tolist()) <= set(DS1)
    # seed 0 validated on DS1 fold 0 of cv_folds, and only those records' beats are its out-of-record predictions
    d = interpatient.seed_config(cfg, 0).data
    assert d.split_kwargs == {"fold": 0, "k": cfg.cv_folds}
    fold0 = np.array_split(np.random.default_rng(d.split_seed).permutation(sorted(DS1)), cfg.cv_folds)[0]
    with np.load(work / "runs" / "seed0" / "predictions.npz") as z:
        assert set(z["record"].tolist()) == set(fold0.tolist())

    # the synthetic-rhythm screen of the trained seeds: held-out DS1 beats only, no DS2 record
    screen = interpatient.rhythm_screen(cfg, work, fractions=(0.5,), n_rhythms=1, n_beats=40, min_s=2, data_dir=tiny_mitdb.root, cache=cache_path)
    assert set(reads) <= set(DS1) and set(screen["records"]["0"]) <= set(fold0.tolist()) and screen["records"]["0"]
    d5 = screen["fractions"]["0.5"]["offsets"]
    assert d5["n_S"] + d5["n_N"] == 40 * len(screen["records"]["0"]) and 0 <= d5["S_se"] <= 1 and 0 <= d5["N_called_S"] <= 1

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
        # the decision: argmax of the logits plus the offsets chosen on DS1 validation beats (N, F, Q untuned)
        np.testing.assert_array_equal(z["y_pred"], (z["logits"] + z["offsets"]).argmax(-1))
        assert z["offsets"][[0, 3, 4]].tolist() == [0, 0, 0]
    assert on_disk["ds2"]["offsets"]["0"]["N"] == 0 and "summary_argmax" in on_disk["ds2"]
    assert set(on_disk["ds1_cv"]["records"]) == set(fold0.tolist()) and on_disk["ds1_cv"]["offsets"] == on_disk["ds2"]["offsets"]["0"]
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

    # the irregular-rhythm rule on top (experiments/interpatient_af_rule.py): switched off (tau above every irreg) it
    # gives the benchmark's own DS2 decisions (the same offsets, chosen again on the same DS1 predictions); with tau
    # under 1 (irreg >= 1 everywhere) no beat is called S; every DS1 and DS2 beat lines up with its irreg
    import interpatient_af_rule as af_rule

    off, res_off, (y2, _) = af_rule.apply_rule(work, 1e9, data_dir=tiny_mitdb.root, cache=cache_path, n_bootstrap=0)
    with np.load(work / "ds2" / "seed0.npz") as z:
        np.testing.assert_array_equal(off[0], z["y_pred"])
        np.testing.assert_array_equal(y2, z["y_true"])
    assert res_off["ds2"]["offsets"]["0"] == on_disk["ds2"]["offsets"]["0"]
    on, res_on, _ = af_rule.apply_rule(work, 0.5, data_dir=tiny_mitdb.root, cache=cache_path, n_bootstrap=0)
    assert not np.any(on[0] == on_disk["classes"].index("S")) and res_on["ds2"]["summary"]["S"]["se"]["mean"] == 0
    assert af_rule.main([str(tmp_path / "missing"), "--tau", "1.1", "--out", str(tmp_path / "r.json")]) == 2
    # the P-wave rule (plock in [0, 1], computed from the leads): below 0 nothing is suppressed, below 2 every S call
    off_p, _, _ = af_rule.apply_rule(work, 0.0, rule="plock", data_dir=tiny_mitdb.root, cache=cache_path, n_bootstrap=0)
    np.testing.assert_array_equal(off_p[0], off[0])
    on_p, res_on_p, _ = af_rule.apply_rule(work, 2.0, rule="plock", data_dir=tiny_mitdb.root, cache=cache_path, n_bootstrap=0)
    assert not np.any(on_p[0] == on_disk["classes"].index("S")) and res_on_p["name"].endswith("no S where plock < 2")
    on_n, res_on_n, _ = af_rule.apply_rule(work, 2.0, rule="plock", to="N", data_dir=tiny_mitdb.root, cache=cache_path, n_bootstrap=0)
    assert not np.any(on_n[0] == on_disk["classes"].index("S")) and res_on_n["name"].endswith("plock < 2, S to N")

    # the same rule named in the benchmark's config (s_rule) gives the script's decisions and offsets, from one command;
    # a copy of the workdir: the seeds are read back, not retrained
    import shutil

    want, res_want, _ = af_rule.apply_rule(work, 0.5, rule="plock", to="N", data_dir=tiny_mitdb.root, cache=cache_path, n_bootstrap=0)
    shutil.copytree(work, tmp_path / "ruled")
    ruled = interpatient.run(dataclasses.replace(cfg, s_rule=("plock", 0.5, "N")), tmp_path / "ruled", data_dir=tiny_mitdb.root, cache=cache_path)
    with np.load(tmp_path / "ruled" / "ds2" / "seed0.npz") as z:
        np.testing.assert_array_equal(z["y_pred"], want[0])
    assert ruled["ds2"]["offsets"] == res_want["ds2"]["offsets"] and ruled["ds1_cv"]["s_rule"] == ["plock", 0.5, "N"]
    for key in ("summary", "summary_argmax"):  # json: one seed's sd is NaN, which == never matches
        assert json.dumps(ruled["ds2"][key], sort_keys=True) == json.dumps(res_want["ds2"][key], sort_keys=True)


def test_config_refuses_test_records_in_training():
    cfg = interpatient.load_config(QUICK)
    bad_data = dataclasses.replace(cfg.train.data, protocol_overrides={"records": DS1 + ("100",)})
    with pytest.raises(ConfigError, match="DS1 only"):
        interpatient.check(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=bad_data)))
    with pytest.raises(ConfigError, match="'ds1'"):
        interpatient.check(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, data=dataclasses.replace(cfg.train.data, split="ds1ds2"))))


def test_every_variant_loads():
    for arg in ("both", "waveform", "rr", "quick", "rr,quick", "seeds2", "meanref"):
        cfg = interpatient.load_config(f"experiments/configs/aami_rr.py:{arg}")
        assert cfg.train.model.name == "rr_net"
    assert interpatient.load_config("experiments/configs/aami_rr.py").seeds == (0, 1, 2, 3, 4)
    ref = lambda arg: interpatient.load_config(f"experiments/configs/aami_rr.py:{arg}").train.data.protocol_overrides["rr_reference"]  # noqa: E731
    assert (ref("both"), ref("meanref"), ref("legacy")) == ("median", "mean", "mean")
    local = interpatient.load_config("experiments/configs/aami_rr.py:both,localrr").train
    assert local.data.protocol_overrides["rr_features"] == local.model.kwargs["rr_features"] == FEATURES[:11]
    irreg = interpatient.load_config("experiments/configs/aami_rr.py:both,localrr,irreg").train
    assert irreg.data.protocol_overrides["rr_features"] == irreg.model.kwargs["rr_features"] == FEATURES
    wavedrop = interpatient.load_config("experiments/configs/aami_rr.py:both,wavedrop").train.model.kwargs
    assert interpatient.load_config("experiments/configs/aami_rr.py:both,lr0.0003").train.train.lr == 0.0003
    assert interpatient.load_config("experiments/configs/aami_rr.py:both").train.train.lr == 1e-3
    assert wavedrop["wave_dropout"] == 0.5 and "wave_dropout" not in interpatient.load_config("experiments/configs/aami_rr.py").train.model.kwargs
    assert "rr_features" not in interpatient.load_config("experiments/configs/aami_rr.py").train.data.protocol_overrides
    rt = lambda arg: interpatient.load_config(f"experiments/configs/aami_rr.py:{arg}").train.model.kwargs["rr_transform"]  # noqa: E731
    assert (rt("both"), rt("both,rate"), rt("rr,rate"), rt("logrr")) == ("ratios", "ratios+rate", "ratios+rate", "log")
    ref = lambda arg: interpatient.load_config(f"experiments/configs/aami_rr.py:{arg}").train.data.template_reference  # noqa: E731
    assert (ref("both"), ref("both,sinus"), ref("quick,sinus")) == ("mean", "sinus", "sinus")
    # plock: computed by the data config from the leads (not a protocol feature), named last in the model's RR features
    plock = interpatient.load_config("experiments/configs/aami_rr.py:both,sinus,plock").train
    assert plock.data.atrial_lock_beats == 32 and interpatient.load_config("experiments/configs/aami_rr.py").train.data.atrial_lock_beats == 0
    assert plock.model.kwargs["rr_features"][-1] == "plock" and "rr_features" not in plock.data.protocol_overrides
    with pytest.raises(ConfigError, match="rhythm_aug"):
        interpatient.load_config("experiments/configs/aami_rr.py:both,plock,aug")
    # plockrule: the P-wave rule on top, no change to the training (a :sinus workdir is re-tested, not retrained)
    rule = interpatient.load_config("experiments/configs/aami_rr.py:both,sinus,plockrule")
    assert rule.s_rule == ("plock", 0.15, "N") and rule.train == interpatient.load_config("experiments/configs/aami_rr.py:both,sinus").train
    assert interpatient.load_config("experiments/configs/aami_rr.py").s_rule == ()
    for bad in (("nope", 0.1, None), ("plock", "0.1", None), ("plock", 0.1, "S"), ("plock", 0.1)):
        with pytest.raises(ConfigError, match="s_rule"):
            interpatient.check(dataclasses.replace(rule, s_rule=bad))
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


def test_choose_offsets_finds_the_threshold_and_leaves_untuned_classes_at_zero():
    # class 1 is always under-scored by 1.0: its beats have logit 1 below class 0; a few class-0 beats sit lower
    rng = np.random.default_rng(0)
    y = np.array([0] * 200 + [1] * 20)
    logits = np.zeros((220, 3))
    logits[:, 0] = 2.0
    logits[:200, 1] = rng.uniform(-2.0, 0.0, 200)  # class-0 beats: class 1 at least 2 below
    logits[200:, 1] = rng.uniform(0.5, 1.0, 20)  # class-1 beats: 1.0-1.5 below class 0
    assert np.all(logits.argmax(-1) == 0)
    b = interpatient.choose_offsets(logits, y, [1])
    assert b[0] == 0 and b[2] == 0
    pred = (logits + b).argmax(-1)
    assert interpatient._f1(y, pred, 1) == 1.0
    assert 1.0 < b[1] <= 2.0  # the first grid value that separates them
    np.testing.assert_array_equal(interpatient.choose_offsets(logits, y, []), np.zeros(3, np.float32))


def test_offsets_come_from_ds1_out_of_record_predictions_only(tmp_path):
    cfg = interpatient.load_config(QUICK)
    assert cfg.tune_offsets == ("S", "V")
    run = tmp_path / "runs" / "seed0"
    run.mkdir(parents=True)
    logits = np.zeros((4, 5), np.float32)
    np.savez(run / "predictions.npz", index=np.arange(4), logits=logits, y_true=np.zeros(4, np.int32),
             record=np.array(["101", "106", "108", "100"]))
    with pytest.raises(ConfigError, match="holds test records"):
        interpatient.cv_offsets(cfg, tmp_path, ["N", "S", "V", "F", "Q"])


def test_cv_folds_partition_ds1_and_each_seed_validates_on_its_own_fold():
    record = np.repeat(np.array(DS1), 3)
    cfg = dataclasses.replace(interpatient.load_config("experiments/configs/aami_rr.py:both"), seeds=(7, 3, 9, 1, 5))
    vals = []
    for seed in cfg.seeds:
        d = interpatient.seed_config(cfg, seed).data
        s = make_split(d.split, np.zeros(len(record), np.int32), record, seed=d.split_seed, **d.split_kwargs)
        vals.append(set(record[s.val]))
        assert not vals[-1] & set(record[s.train]) and set(record[s.train]) | vals[-1] == set(DS1)
        np.testing.assert_array_equal(s.test, s.val)
    assert set().union(*vals) == set(DS1) and sum(map(len, vals)) == len(DS1)  # every DS1 record out of fold once
    with pytest.raises(ConfigError, match="cv_folds"):
        interpatient.check(dataclasses.replace(cfg, cv_folds=1))


def test_segment_shares_partition_the_attribution_mass():
    rng = np.random.default_rng(0)
    fs, t = 360.0, 252
    wave = rng.standard_normal((6, t, 2))
    rr = rng.standard_normal((6, 8))
    valid = np.ones((6, t), bool)
    valid[0, :30] = False  # padding at a record's start: not counted anywhere
    r = np.full(6, 90)
    seg = interpatient.segment_shares(wave, rr, valid, r, fs)
    share, _ = interpatient.rr_shares(wave, rr, valid)
    np.testing.assert_allclose(seg.sum(axis=1) + share, 1.0, rtol=1e-12)
    # closed form: all waveform mass in [R, R + 0.1 s) -> that segment holds it
    one = np.zeros((1, t, 2))
    one[0, 90 + 5, 1] = 3.0
    got = interpatient.segment_shares(one, np.array([[1.0] + [0.0] * 7]), np.ones((1, t), bool), np.array([90]), fs)
    np.testing.assert_allclose(got[0], [0, 0, 0, 0.75, 0, 0, 0, 0])


def test_ensemble_of_identical_seeds_is_the_seed_and_averages_log_probabilities():
    rng = np.random.default_rng(1)
    test = rng.standard_normal((50, 5))
    zero = np.zeros(5)
    np.testing.assert_array_equal(interpatient.ensemble({0: test, 1: test + 3.0}, zero), test.argmax(-1))  # a shift changes no probability
    other = rng.standard_normal((50, 5))
    ls = lambda z: z - np.log(np.exp(z).sum(-1, keepdims=True))  # noqa: E731
    b = np.array([0.0, 1.5, -0.5, 0.0, 0.0])
    np.testing.assert_array_equal(interpatient.ensemble({0: test, 1: other}, b), ((ls(test) + ls(other)) / 2 + b).argmax(-1))


def test_most_counts_lists_the_largest_first_whatever_the_dict_order():
    counts = {"101": 1, "108": 2, "201": 5, "203": 9, "209": 5}  # keys sorted, as a JSON line writes them
    assert interpatient.most_counts(counts, 3) == "203: 9, 201: 5, 209: 5"  # ties by record
    assert interpatient.most_counts(dict(reversed(counts.items())), 2) == "203: 9, 201: 5"
    assert interpatient.most_counts({}, 3) == ""


def test_cli_a_file_as_workdir_is_one_line_exit_2(tmp_path, capsys):
    """Before: a FileExistsError traceback (the library raised an OSError the CLI did not handle)."""
    (tmp_path / "w").write_text("a file")
    assert interpatient.main(["--config", "experiments/configs/aami_rr.py:quick", "--workdir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"aami_interpatient: error: {tmp_path / 'w'}: File exists"]
