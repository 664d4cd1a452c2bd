"""The ground-truth check: targets and segments from the delineation, shares on a model whose answer is known."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ecgjax import attribution
from ecgjax.data.delineation import Waves
from ecgjax.study.groundtruth import rank_methods, share_stats, targets_and_segments
from tests.attribution.conftest import linear_make

FS = 360.0


def test_linear_regressor_on_a_known_segment():
    """Output 0 = sum of x over samples 10..19 of lead 0: saliency, gradient x input and IG put all relevance
    there (share 1); the random control gets the segment's fraction; |x| gets its amplitude share."""
    T, L, N = 48, 2, 64
    W = np.zeros((T, L, 1), np.float32)
    W[10:20, 0, 0] = 1.0
    params = {"W": jnp.asarray(W), "b": jnp.zeros(1)}
    x = np.random.default_rng(0).normal(size=(N, T, L)).astype(np.float32)
    seg = np.zeros((N, T, L), bool)
    seg[:, 10:20, 0] = True
    valid = np.ones((N, T), bool)
    record = np.repeat(np.arange(8).astype(str), 8)
    rows = {}
    for name in ("saliency", "gradient_x_input", "integrated_gradients", "random"):
        maps = attribution.attribute_dataset((linear_make, params), x, 0, attribution.get(name), key=jax.random.key(0),
                                             progress=False).maps
        rows[name] = share_stats(maps, x, seg, valid, record, n_boot=100)
    for name in ("saliency", "gradient_x_input", "integrated_gradients"):
        assert rows[name]["share"] == pytest.approx(1.0, abs=1e-6), name
        assert rows[name]["vs_random"] == pytest.approx(1 - 10 / 96, abs=1e-6)
    assert rows["random"]["random"] == pytest.approx(10 / 96)
    assert rows["random"]["share"] == pytest.approx(10 / 96, abs=0.03)
    assert rows["random"]["share_ci"][0] <= rows["random"]["share"] <= rows["random"]["share_ci"][1]
    ranking = rank_methods({"t": rows})
    assert ranking[-1]["method"] == "random" and ranking[0]["mean_rank"] == 1.0


def _fake(T=200):
    r = np.array([150, 150, 150])
    x = np.zeros((3, T, 2), np.float32)
    x[:, 150, 0] = 3.0
    x[1, 148, 0] = 5.0  # beat 1's largest lead-0 value in the QRS is at 148
    x[2, 10, 0] = 9.0  # outside the QRS: not the R amplitude
    beats = types.SimpleNamespace(x=x, r=r, lo=np.zeros(3, np.int32), hi=np.full(3, T, np.int32),
                                  rr_prev=np.array([100, 130, 0]), fs=FS)
    b = np.array([[100, 110, 140, 170, 180, 195]] * 3, np.float32)
    return beats, Waves(b, np.array([True, True, True]), {}, "dwt")


def test_targets_and_segments_closed_form():
    beats, waves = _fake()
    out = targets_and_segments(beats, waves)
    rr, seg, ok = out["rr"]
    np.testing.assert_allclose(rr, [100 / FS, 130 / FS, 0])
    # +-18 samples (50 ms) around R (150) and the previous R (50 and 20); beat 1's previous R is 20 < 22 (60 ms): unusable
    assert np.flatnonzero(seg[0, :, 1]).tolist() == list(range(32, 69)) + list(range(132, 169))
    assert ok.tolist() == [True, False, False]
    width, seg, ok = out["qrs_width"]
    np.testing.assert_allclose(width, 30 / FS)
    assert np.flatnonzero(seg[0, :, 0]).tolist() == list(range(140, 170)) and ok.all()
    amp, seg, ok = out["r_amplitude"]
    np.testing.assert_allclose(amp, [3.0, 5.0, 3.0])
    assert np.flatnonzero(seg[1, :, 0]).tolist() == list(range(139, 158)) and not seg[..., 1].any()


def test_rank_methods_orders_by_mean_rank():
    rows = {"a": {"m1": {"share": 0.9}, "m2": {"share": 0.5}, "m3": {"share": np.nan}},
            "b": {"m1": {"share": 0.2}, "m2": {"share": 0.6}, "m3": {"share": 0.1}}}
    r = rank_methods(rows)
    assert [d["method"] for d in r] == ["m1", "m2", "m3"]
    assert r[0]["ranks"] == {"a": 1, "b": 2} and r[2]["ranks"] == {"a": 3, "b": 3}
