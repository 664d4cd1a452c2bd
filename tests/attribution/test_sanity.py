"""Sanity checks: cascading randomisation and segment deletion/insertion."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ecgjax import attribution as attr
from ecgjax.analysis import segment_values
from ecgjax.analysis.segments import segment_ids
from ecgjax.attribution import sanity

from conftest import linear_init, linear_make


def test_spearman_rows_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 7, 2))
    b = a + rng.normal(size=a.shape)
    b[0, 0, 0] = b[0, 1, 0]  # a tie
    got = sanity.spearman_rows(a, b)
    for i in range(5):
        assert got[i] == pytest.approx(spearmanr(a[i].ravel(), b[i].ravel()).statistic)


def test_replace_top_level_keeps_structure():
    p = {"W": np.ones(3), "b": {"x": np.zeros(2)}}
    f = {"W": np.full(3, 5.0), "b": {"x": np.full(2, 7.0)}}
    out = sanity.replace_top_level(p, f, ["b"])
    assert out["W"][0] == 1 and out["b"]["x"][0] == 7
    assert jax.tree.structure(out) == jax.tree.structure(p)


def test_cascade_on_linear_model(tmp_path):
    p = linear_init(jax.random.key(0))
    fresh = linear_init(jax.random.key(1))
    x = np.random.default_rng(0).normal(size=(8, 48, 2)).astype(np.float32)
    res = sanity.cascading_randomization((linear_make, p), fresh, ("b", "W"), attr.get("saliency"), x, 2, batch_size=8)
    assert res.spearman_signed.shape == (2, 8)
    np.testing.assert_allclose(res.spearman_signed[0], 1.0)  # bias does not change a linear model's gradient
    assert np.all(np.abs(res.spearman_signed[1]) < 0.6)  # a fresh W is a different map
    assert abs(np.median(res.random_signed)) < 0.3
    res.save(tmp_path)
    assert (tmp_path / "cascade_saliency.json").exists() and (tmp_path / "cascade_saliency.npz").exists()
    from ecgjax.analysis import plotting

    plotting.save_figure(plotting.plot_cascade(res), tmp_path / "cascade.png")
    assert (tmp_path / "cascade.png").stat().st_size > 1000


def test_segment_ids_agree_with_segmenter():
    rng = np.random.default_rng(1)
    N, T, L, w, K = 10, 120, 2, 5, 6
    maps = rng.normal(size=(N, T, L))
    r = rng.integers(10, 110, N)
    lo = np.minimum(rng.integers(0, 20, N), r)
    hi = np.maximum(rng.integers(80, T + 1, N), r + 1)
    ids = segment_ids(r, lo, hi, T, L, w, K)
    seg = segment_values(maps, r, lo, hi, 360.0, seg_s=w / 360, n_per_side=K, min_coverage=1e-9).flat()
    for n in range(N):
        for j in range(2 * K * L):
            sel = ids[n] == j
            if sel.any():
                assert maps[n][sel].mean() == pytest.approx(seg[n, j], rel=1e-5, abs=1e-6)
            else:
                assert np.isnan(seg[n, j])


def test_deletion_insertion_linear(tmp_path):
    p = linear_init(jax.random.key(3))
    fns = linear_make(p)
    rng = np.random.default_rng(2)
    N, T, L = 6, 48, 2
    x = rng.normal(size=(N, T, L)).astype(np.float32)
    t = np.asarray(np.argmax(fns.logit_fn(x), -1), np.int32)
    gxi = np.asarray(attr.attribute(attr.get("gradient_x_input"), fns, x, t))
    r, lo, hi = np.full(N, 24), np.zeros(N, int), np.full(N, T)
    res = sanity.deletion_insertion((linear_make, p), x, t, {"gxi": gxi}, r, lo, hi, 360.0, seg_s=2 / 360, n_per_side=12, batch_size=8)
    K = 48
    assert res.steps[-1] == K and set(res.deletion) == {"gxi", "random_order"}
    prob = np.take_along_axis(np.asarray(jax.nn.softmax(fns.logit_fn(x))), t[:, None], 1)[:, 0]
    p0 = np.asarray(jax.nn.softmax(fns.logit_fn(np.zeros_like(x))))[np.arange(N), t]
    np.testing.assert_allclose(res.deletion["gxi"][0], prob.mean(), rtol=1e-5)
    np.testing.assert_allclose(res.deletion["gxi"][-1], p0.mean(), rtol=1e-5)  # everything deleted
    np.testing.assert_allclose(res.insertion["gxi"][-1], prob.mean(), rtol=1e-5)  # everything restored
    assert res.deletion_auc["gxi"].mean() < res.deletion_auc["random_order"].mean()
    res.save(tmp_path)
    assert (tmp_path / "faithfulness.json").exists()
    from ecgjax.analysis import plotting

    plotting.save_figure(plotting.plot_faithfulness(res), tmp_path / "faith.png")
    assert (tmp_path / "faith.png").stat().st_size > 1000


def _one_segment_model(T, L, C, seg, lead):
    """(make, params): class 0's logit is 8 x the sum of the samples of ``seg`` (a slice) in ``lead``."""
    W = np.zeros((T, L, C), np.float32)
    W[seg, lead, 0] = 8.0
    return linear_make, {"W": jax.numpy.asarray(W), "b": jax.numpy.zeros(C)}


def test_deletion_insertion_ranks_only_existing_segments():
    """Beats with padding (most of the 48 segments do not exist); the output depends on one
    segment only, and the map points at it: deletion drops and insertion rises at step 1."""
    N, T, L, C, w = 5, 48, 2, 4, 2  # segments of 2 samples, 12 a side: 24 per lead, 48 in all
    r, lo, hi = np.full(N, 24), np.full(N, 18), np.full(N, 30)  # 3 + 3 segments per lead exist
    seg = slice(26, 28)  # segment +2 of lead 1
    model = _one_segment_model(T, L, C, seg, 1)
    x = np.zeros((N, T, L), np.float32)
    x[:, 18:30] = np.random.default_rng(0).uniform(0.5, 1.0, size=(N, 12, L))
    maps = np.zeros_like(x)
    maps[:, seg, 1] = 1.0
    maps[:, 18:30] += 1e-3  # every real segment has some attribution, the known one the most
    t = np.zeros(N, np.int32)
    res = sanity.deletion_insertion(model, x, t, {"known": maps}, r, lo, hi, 360.0, seg_s=w / 360, n_per_side=12, batch_size=8)
    assert res.steps[-1] == 12  # the existing segments only
    fns = linear_make(model[1])
    prob = np.asarray(jax.nn.softmax(fns.logit_fn(x)))[:, 0]
    p0 = np.asarray(jax.nn.softmax(fns.logit_fn(np.zeros_like(x))))[:, 0]
    assert prob.min() > 0.9 and p0.max() < 0.3
    np.testing.assert_allclose(res.deletion["known"][:2], [prob.mean(), p0.mean()], rtol=1e-5)  # drops at step 1
    np.testing.assert_allclose(res.deletion["known"][1:], p0.mean(), rtol=1e-5)
    np.testing.assert_allclose(res.insertion["known"][:2], [p0.mean(), prob.mean()], rtol=1e-5)  # rises at step 1
    assert res.deletion_auc["known"].mean() < res.deletion_auc["random_order"].mean()
    # the random order also walks only existing segments: everything is deleted by the last step
    np.testing.assert_allclose(res.deletion["random_order"][-1], p0.mean(), rtol=1e-5)


def test_saliency_beats_random_order_on_a_trained_model():
    """A small CNN trained (seconds) on beats whose class is the signs of two bumps (one
    0.1 s-like segment in each lead), with padding around the real signal: saliency's
    deletion AUC is below the random order's and its insertion AUC above."""
    import optax

    from conftest import cnn_init, cnn_make

    rng = np.random.default_rng(0)
    N, T, L, C, fs = 256, 48, 2, 4, 360.0
    w = 4
    r, lo, hi = np.full(N, 24), np.full(N, 8), np.full(N, 40)  # 4 + 4 segments of 4 samples per lead
    y = rng.integers(0, C, N).astype(np.int32)
    x = rng.normal(0, 0.3, size=(N, T, L)).astype(np.float32)
    x[:, 16:20, 0] += np.where(y % 2, 1.5, -1.5)[:, None]
    x[:, 28:32, 1] += np.where(y // 2, 1.5, -1.5)[:, None]
    x[:, :8], x[:, 40:] = 0.0, 0.0
    params = cnn_init(jax.random.key(0), T, L, C)
    opt = optax.adam(3e-2)
    state = opt.init(params)

    @jax.jit
    def step(p, s):
        loss, g = jax.value_and_grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(cnn_make(p).logit_fn(x), y).mean())(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    for _ in range(150):
        params, state, loss = step(params, state)
    fns = cnn_make(params)
    assert float(np.mean(np.argmax(fns.logit_fn(x), -1) == y)) > 0.95  # it learned
    sal = np.asarray(attr.attribute(attr.get("saliency"), fns, x, y))
    res = sanity.deletion_insertion((cnn_make, params), x, y, {"saliency": sal}, r, lo, hi, fs, seg_s=w / fs, n_per_side=12, batch_size=256)
    assert res.steps[-1] == 16
    d, i = res.deletion_auc, res.insertion_auc
    assert d["saliency"].mean() < d["random_order"].mean() - 0.1
    assert i["saliency"].mean() > i["random_order"].mean() + 0.1


def test_cascade_summary_of_constant_maps_is_nan_without_warnings():
    """Constant maps (Grad-CAM on a one-step feature map) make every Spearman undefined: the
    summary says so (NaN, n_defined 0) and numpy's All-NaN RuntimeWarning is not raised."""
    import warnings

    nan = np.full((2, 5), np.nan)
    res = sanity.CascadeResult(("head", "conv"), nan, nan.copy(), nan[0], nan[0], "grad_cam")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = res.summary()
    assert np.isnan(s["median_spearman_abs"]).all() and s["n_defined"] == [0, 0] and np.isnan(s["random_control_abs"])
