"""explain_run -> Attributions folder -> profile_run end to end on a tiny model and a synthetic BeatSet."""

from __future__ import annotations

import json
import jax
import numpy as np
import pytest

from ecgjax import attribution as attr
from ecgjax.analysis import AttributionProfiles, profile_attributions, profile_run, transform_maps
from ecgjax.attribution import Attributions
from ecgjax.attribution.explain import explain_run
from ecgjax.cli import build_parser

from conftest import cnn_init, cnn_make


def _beats(n=60, T=48, L=2):
    from ecgjax.data.dataset import BeatSet

    rng = np.random.default_rng(0)
    z = np.zeros(n, np.int32)
    recs = ("100", "101", "102", "103")
    return BeatSet(
        x=rng.normal(size=(n, T, L)).astype(np.float32), y=rng.integers(0, 4, n).astype(np.int32),
        record=rng.choice(np.array(recs), n), r=rng.integers(18, 30, n).astype(np.int32),
        lo=z, hi=rng.integers(40, T + 1, n).astype(np.int32), fs=120.0, sample=np.arange(n), symbol=np.array(["N"] * n),
        rr_prev=z, rr_next=z, classes=("N", "V", "A", "L"), protocol={"name": "synthetic"},
        lead_names={r: ("MLII", "V1") for r in recs})


def test_explain_then_profile(tmp_path):
    beats = _beats()
    p = cnn_init(jax.random.key(0))
    test_idx = np.arange(10, 60)
    out = explain_run((cnn_make, p), beats, test_idx, attr.get("saliency"), tmp_path / "attr", batch_size=16,
                      model_info={"name": "tiny_cnn"})
    meta = json.loads((out["dir"] / "meta.json").read_text())
    assert meta["n"] == 50 and meta["method"] == "saliency" and meta["model"] == {"name": "tiny_cnn"}
    direct = np.asarray(attr.attribute(attr.get("saliency"), cnn_make(p), beats.x, beats.y))
    for c, path in out["files"].items():
        z = attr.load_class_npz(path)
        assert np.all(z["index"] >= 10) and np.all(beats.y[z["index"]] == c)  # indices into the BeatSet
        np.testing.assert_allclose(z["maps"], direct[z["index"]], rtol=1e-5, atol=1e-6)
    stored = Attributions.load(out["dir"])
    assert stored.method == "saliency" and stored.model == {"name": "tiny_cnn"} and stored.classes == beats.classes
    assert sorted(stored.index.tolist()) == test_idx.tolist() and stored.settings["target"] == "label"
    np.testing.assert_allclose(stored.maps, direct[stored.index], rtol=1e-5, atol=1e-6)
    res = profile_run(out["dir"], beats, tmp_path / "prof", n_boot=20, min_n=2)
    assert isinstance(res, AttributionProfiles) and res.transform == "abs" and res.values.shape == (50, 2, 24)
    assert json.loads((tmp_path / "prof" / "comparisons.json").read_text()) == json.loads(json.dumps(res.comparisons_dict()))
    # the same profiles from the in-memory value as from the folder read one class at a time
    again = profile_attributions(stored, beats, n_boot=20, min_n=2)
    np.testing.assert_array_equal(again.profiles.median, res.profiles.median)
    assert again.correct_vs_incorrect.keys() == res.correct_vs_incorrect.keys()
    with np.load(tmp_path / "prof" / "profiles.npz", allow_pickle=False) as z:
        assert z["median"].shape == (4, 2, 24)
        assert int(z["count"].max()) <= 50
    assert (tmp_path / "prof" / "figures" / "class_heatmap.png").exists()
    assert res.lead_names == ("MLII", "V1") and res.lead_note == ""
    with np.load(tmp_path / "prof" / "segments.npz", allow_pickle=False) as z:
        assert list(z["labels"][:2]) == ["MLII-12", "MLII-11"] and z["labels"][24] == "V1-12"
    # with a minimum no class reaches, every class is listed as not compared, with its counts
    few = profile_run(out["dir"], beats, tmp_path / "prof_few", n_boot=0, min_n=50, figures=False).comparisons_dict()
    assert few["correct_vs_incorrect"] == {} and few["mistaken_vs_class"] == {}
    nc = few["not_compared"]
    y = beats.y[test_idx]
    assert {c: d["n_correct"] + d["n_incorrect"] for c, d in nc["correct_vs_incorrect"].items()} == \
        {beats.classes[c]: int(np.sum(y == c)) for c in np.unique(y)}
    assert sum(d["n_mistaken"] for d in nc["mistaken_vs_class"].values()) == sum(d["n_incorrect"] for d in nc["correct_vs_incorrect"].values())


def test_transforms_and_cli_registered():
    m = np.array([[[-2.0, 1.0]], [[0.5, -0.25]]])
    np.testing.assert_array_equal(transform_maps(m, "abs"), np.abs(m))
    np.testing.assert_array_equal(transform_maps(m, "relu"), np.maximum(m, 0))
    np.testing.assert_allclose(transform_maps(m, "paper").max(axis=(1, 2)), 1.0, atol=1e-6)
    args = build_parser().parse_args(["explain", "--workdir", "w", "--method", "integrated_gradients", "--hp", "steps=8"])
    assert args.method == "integrated_gradients" and args.hp == ["steps=8"]
    from ecgjax.attribution.cli import _hparams

    assert _hparams(["steps=8", "baseline=zeros"]) == {"steps": 8, "baseline": "zeros"}


def test_ig_completeness_is_measured_and_warned(tmp_path, caplog):
    """explain_run stores IG's completeness error; too few steps on a curved model is a warning naming
    the error; the error itself matches sum(maps) vs z(x) - z(x0) computed here."""
    from ecgjax.attribution.sanity import completeness_error

    beats = _beats()
    p = cnn_init(jax.random.key(0))
    idx = np.arange(0, 40)
    caplog.set_level("INFO")
    out = explain_run((cnn_make, p), beats, idx, attr.get("integrated_gradients", steps=1), tmp_path / "a", batch_size=16)
    meta = json.loads((out["dir"] / "meta.json").read_text())
    c1 = meta["completeness"]
    assert meta["hparams"]["baseline"] == "'zeros'"  # the default "model" is recorded resolved (a CNN declares zeros)
    assert c1["n"] == 40 and c1["steps"] == 1 and not c1["ok"]
    assert f"median completeness error {100 * c1['median_rel_error']:.2f}% over 40 beats with steps=1, baseline=zeros" in caplog.text
    assert "above the 5% tolerance" in caplog.text and "--hp steps=N" in caplog.text and "--hp baseline=blurred" in caplog.text
    stored = Attributions.load(out["dir"])
    fns = cnn_make(p)
    x = beats.x[stored.index]
    z = np.asarray(fns.logit_fn(x), np.float64)[np.arange(40), stored.target]
    z0 = np.asarray(fns.logit_fn(np.zeros_like(x)), np.float64)[np.arange(40), stored.target]
    ref = np.abs(stored.maps.sum(axis=(1, 2), dtype=np.float64) - (z - z0)) / np.abs(z - z0)
    assert c1["median_rel_error"] == pytest.approx(float(np.median(ref)), rel=1e-4)
    np.testing.assert_allclose(completeness_error((cnn_make, p), x, np.zeros_like(x), stored.target,
                                                  stored.maps.sum(axis=(1, 2))), ref, rtol=1e-4, atol=1e-6)
    caplog.clear()
    out = explain_run((cnn_make, p), beats, idx, attr.get("integrated_gradients", steps=128), tmp_path / "b", batch_size=16)
    c128 = json.loads((out["dir"] / "meta.json").read_text())["completeness"]
    assert c128["ok"] and c128["median_rel_error"] < c1["median_rel_error"] / 10 and "tolerance" not in caplog.text


def test_profiles_cut_only_the_waveform_leads_of_a_model_with_rr_features():
    """rr_net's inputs carry RR features as trailing channels: profiles segment the L leads only."""
    import dataclasses

    beats = _beats()
    rr = np.random.default_rng(1).normal(size=(len(beats), 3)).astype(np.float32)
    with_rr = dataclasses.replace(beats, rr=rr, rr_names=("pre", "post", "local"),
                                  x=np.concatenate([beats.x, np.broadcast_to(rr[:, None], (len(beats), beats.x.shape[1], 3))], -1))
    rng = np.random.default_rng(2)
    idx = np.arange(len(beats))
    maps = rng.normal(size=with_rr.x.shape).astype(np.float32)
    maps[..., 2:] *= 1e3  # RR channels: any leak into the segments would dominate them
    kw = dict(pred=beats.y, label=beats.y, index=idx, method="saliency", settings={}, model={}, classes=beats.classes, fs=beats.fs)
    both = profile_attributions(Attributions(maps=maps, target=beats.y, **kw), with_rr, n_boot=0, min_n=2)
    wave = profile_attributions(Attributions(maps=maps[..., :2], target=beats.y, **kw), beats, n_boot=0, min_n=2)
    assert both.values.shape == wave.values.shape == (len(beats), 2, 24)
    np.testing.assert_array_equal(both.values, wave.values)
    # one column name per value (the figures index the names by the values' columns)
    assert both.labels == wave.labels and len(both.labels) == 48 and both.lead_names == ("MLII", "V1")


def test_profiles_by_wave_equal_wave_values_of_each_beat():
    """With ``waves``, the columns are P, PR, QRS, ST, T per lead: the same numbers as wave_values beat by beat
    (NaN for a beat whose delineation failed), profiled and compared like segments."""
    from ecgjax.analysis.waves import wave_masks, wave_values
    from ecgjax.data.delineation import Waves

    beats = _beats()
    rng = np.random.default_rng(3)
    bounds = np.sort(rng.integers(0, 48, size=(len(beats), 6)), axis=1).astype(np.float32)
    bounds[5, 0] = np.nan  # beat 5 has no P wave
    ok = np.ones(len(beats), bool)
    ok[7] = False  # beat 7's delineation failed the quality flag: no values
    waves = Waves(bounds, ok, {}, "envelope")
    maps = rng.normal(size=beats.x.shape).astype(np.float32)
    idx = np.arange(len(beats))
    kw = dict(pred=beats.y, label=beats.y, index=idx, method="saliency", settings={}, model={}, classes=beats.classes, fs=beats.fs)
    res = profile_attributions(Attributions(maps=maps, target=beats.y, **kw), beats, n_boot=0, min_n=2, waves=waves)
    ref = wave_values(np.abs(maps), wave_masks(bounds, 48, beats.lo, beats.hi), reduce="mean")
    ref[7] = np.nan
    np.testing.assert_array_equal(res.values, ref)
    assert res.values.shape == (len(beats), 2, 5) and np.isnan(res.values[5, :, 0]).all()
    assert res.labels[:3] == ("MLII:P", "MLII:PR", "MLII:QRS") and res.mode == "waves"
    assert res.profiles.median.shape == (4, 2, 5)
    with pytest.raises(ValueError, match="pass load_waves"):
        profile_attributions(Attributions(maps=maps, target=beats.y, **kw), beats, n_boot=0, waves=Waves(bounds[:3], np.ones(3, bool), {}, "dwt"))
