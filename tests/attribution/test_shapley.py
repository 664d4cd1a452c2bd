"""Shapley attributions against independent references.

* Exact Shapley values by enumerating all 2^M coalitions in float64 numpy, on a
  linear model and on a small nonlinear model (a tanh MLP written twice: numpy
  float64 for the reference, JAX float32 for the method); the features come from
  ``ecgjax.analysis.segments.segment_bounds`` (not from the method's own index).
* Expected gradients on a linear model: ``(x - E[background]) * w`` within the
  Monte-Carlo error of ``n`` samples; completeness in expectation.
* The ``shap`` package's KernelExplainer on the same segment features (rank
  correlation), and KernelExplainer over the background distribution (the game
  expected gradients approximates) for expected gradients.
* The ``shap`` package's GradientExplainer (its expected gradients) on the same
  tiny CNN written in PyTorch with the same weights: GradientExplainer takes
  only TensorFlow or PyTorch models, so this test runs where torch is installed
  (not a project dependency; skipped with the reason otherwise).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ecgjax import attribution as attr
from ecgjax.analysis.segments import segment_bounds, segment_ids
from ecgjax.attribution.shapley import coalition_plan, segment_feature_index
from ecgjax.models.base import Fns, ModelInfo

T, L, C, H = 40, 2, 3, 5
FS, K = 100.0, 2  # 0.1 s = 10 samples; 2 segments per side -> M = 2 leads x 4 = 8 features
M = L * 2 * K
R = np.array([20, 15, 27], np.int32)
INFO = ModelInfo("tiny_mlp", "channels", FS, (T, L), (), "", ())  # the facts methods read: fs = 100 Hz  # 15: segment -2 is half outside, samples 35..39 are in no segment


def _params(seed=0):
    rng = np.random.default_rng(seed)
    return {"W": rng.normal(size=(T, L, H)) * 0.3, "b": rng.normal(size=H) * 0.3, "V": rng.normal(size=(H, C))}


def mlp_np(p, x):
    """float64 reference model: f64[n, T, L] -> f64[n, C]."""
    return np.tanh(np.einsum("ntl,tlh->nh", x, p["W"]) + p["b"]) @ p["V"]


def mlp_fns(p):
    W, b, V = (jnp.asarray(p[k], jnp.float32) for k in ("W", "b", "V"))
    f = lambda x: jnp.tanh(jnp.einsum("btl,tlh->bh", x, W) + b) @ V  # noqa: E731
    return Fns(logit_fn=f, feature_fn=lambda x: x, head_fn=f, info=INFO)


def linear_np(Wl, x):
    return np.einsum("ntl,tlc->nc", x, Wl)


def linear_fns(Wl):
    W = jnp.asarray(Wl, jnp.float32)
    f = lambda x: jnp.einsum("btl,tlc->bc", x, W)  # noqa: E731
    return Fns(logit_fn=f, feature_fn=lambda x: x, head_fn=f, info=INFO)


def feature_masks(r: int) -> np.ndarray:
    """bool[M, T, L] samples of each feature, from analysis.segments (lead-major, -K..-1, +1..+K)."""
    a, b = segment_bounds(np.array([r]), int(round(0.1 * FS)), K)
    out = np.zeros((M, T, L), bool)
    for lead in range(L):
        for s in range(2 * K):
            lo, hi = max(a[0, s], 0), min(b[0, s], T)
            out[lead * 2 * K + s, lo:hi, lead] = True
    return out


def exact_shapley(f_np, x, base, target, r):
    """phi f64[M] by enumerating every coalition (the Shapley formula), float64."""
    masks = feature_masks(r)
    v = {}
    for bits in itertools.product((0, 1), repeat=M):
        keep = np.any(masks[np.asarray(bits, bool)], 0) | ~np.any(masks, 0)
        v[bits] = f_np(np.where(keep, x, base)[None].astype(np.float64))[0, target]
    phi = np.zeros(M)
    for j in range(M):
        for bits in v:
            if bits[j]:
                continue
            s = sum(bits)
            with_j = bits[:j] + (1,) + bits[j + 1 :]
            phi[j] += math.factorial(s) * math.factorial(M - s - 1) / math.factorial(M) * (v[with_j] - v[bits])
    return phi


def _attr(m, fns, x, t, key, r=None):
    """``m``'s maps under one jit (eager dispatch of the unrolled chunks is slow on CPU)."""
    x = jnp.asarray(x)
    t = jnp.broadcast_to(jnp.asarray(t, jnp.int32), (len(x),))
    if m.needs_r:
        return jax.jit(lambda xx, tt, kk, rr: m(fns, xx, tt, kk, r=rr))(x, t, attr.row_keys(key, len(x)), jnp.asarray(r))
    return jax.jit(lambda xx, tt, kk: m(fns, xx, tt, kk))(x, t, attr.row_keys(key, len(x)))


def _values(m, fns, x, t, key, r):
    """``m.feature_values`` under one jit."""
    t = jnp.broadcast_to(jnp.asarray(t, jnp.int32), (len(x),))
    return jax.jit(lambda xx, tt, kk, rr: m.feature_values(fns, xx, tt, kk, rr))(jnp.asarray(x), t, attr.row_keys(key, len(x)), jnp.asarray(r))


def _beats(seed=1):
    return np.random.default_rng(seed).normal(size=(len(R), T, L)).astype(np.float32)


@pytest.fixture(scope="module")
def mlp():
    p = _params()
    return p, mlp_fns(p)


def _kernel(n_evals, baseline=None):
    given = {} if baseline is None else {"baseline": "given", "baseline_value": baseline}
    return attr.get("kernel_shap", n_per_side=K, n_evals=n_evals, chunk_size=32, **given)


def test_feature_index_matches_analysis_segments():
    feat = np.asarray(segment_feature_index(jnp.asarray(R), T, L, 10, K))
    for i, r in enumerate(R):
        masks = feature_masks(int(r))
        for j in range(M):
            np.testing.assert_array_equal(feat[i] == j, masks[j])
        np.testing.assert_array_equal(feat[i] == -1, ~masks.any(0))
    # the numpy twin in analysis (valid range = the whole window) gives the same ids
    np.testing.assert_array_equal(feat, segment_ids(R, np.zeros(3), np.full(3, T), T, L, 10, K))


def test_coalition_plan_budget_and_weights():
    full = coalition_plan(M, 2**M - 2)
    assert full.pairs == 0 and len(full.fixed) == 2**M - 2 and len({z.tobytes() for z in full.fixed}) == 2**M - 2
    sizes = full.fixed.sum(1)
    w = full.fixed_w / full.fixed_w.sum()
    # each coalition's weight is the Shapley kernel (M-1) / (C(M,s) s (M-s)), normalised
    kern = np.array([(M - 1) / (math.comb(M, s) * s * (M - s)) for s in sizes])
    np.testing.assert_allclose(w, kern / kern.sum(), rtol=1e-12)
    part = coalition_plan(M, 64)
    assert part.n_coalitions <= 64 and part.pairs > 0
    assert set(part.fixed.sum(1)) == {1, M - 1}  # sizes 1 and M-1 enumerated first (16 coalitions)
    np.testing.assert_allclose(part.fixed_w.sum() + 2 * part.pairs * part.pair_w, 1.0)


@pytest.mark.parametrize("model", ["linear", "mlp"])
def test_kernel_shap_full_budget_is_exact(model, mlp):
    x = _beats()
    if model == "linear":
        Wl = np.random.default_rng(3).normal(size=(T, L, C))
        f_np, fns = (lambda z: linear_np(Wl, z)), linear_fns(Wl)
    else:
        f_np, fns = (lambda z: mlp_np(mlp[0], z)), mlp[1]
    base = np.random.default_rng(4).normal(size=(T, L)).astype(np.float32) * 0.5
    m = _kernel(2**M - 2, baseline=attr.FrozenArray(base))
    t = jnp.asarray([0, 2, 1])
    phi, feat, fx, f0 = _values(m, fns, x, t, jax.random.key(0), R)
    for i, r in enumerate(R):
        ref = exact_shapley(f_np, x[i], base, int(t[i]), int(r))
        np.testing.assert_allclose(np.asarray(phi[i]), ref, rtol=1e-3, atol=2e-5)
        # efficiency, and the map spreads phi_j evenly over feature j's samples
        np.testing.assert_allclose(ref.sum(), float(fx[i] - f0[i]), rtol=1e-4, atol=1e-5)
    maps = np.asarray(_attr(m, fns, x, t, jax.random.key(0), r=R))
    for i, r in enumerate(R):
        masks = feature_masks(int(r))
        for j in range(M):
            if masks[j].any():
                np.testing.assert_allclose(maps[i][masks[j]], float(phi[i, j]) / masks[j].sum(), rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(maps[i][~masks.any(0)], 0.0)
        np.testing.assert_allclose(maps[i].sum(), float(fx[i] - f0[i]), rtol=1e-4, atol=1e-5)
    if model == "linear":  # closed form: phi_j = sum over feature j of (x - b) * W
        masks = feature_masks(int(R[0]))
        closed = np.array([np.sum(((x[0] - base) * Wl[..., 0])[masks[j]]) for j in range(M)])
        np.testing.assert_allclose(np.asarray(phi[0]), closed, rtol=1e-3, atol=2e-5)


def test_kernel_shap_small_budget_is_close(mlp):
    x = _beats(7)
    t = jnp.asarray([1, 0, 2])
    base = np.zeros((T, L))
    m = _kernel(64)
    phi, *_ = _values(m, mlp[1], x, t, jax.random.key(3), R)
    for i, r in enumerate(R):
        ref = exact_shapley(lambda z: mlp_np(mlp[0], z), x[i], base, int(t[i]), int(r))
        err = np.abs(np.asarray(phi[i]) - ref).max()
        assert err < 0.15 * np.abs(ref).max(), (err, np.abs(ref).max())
        assert np.corrcoef(np.asarray(phi[i]), ref)[0, 1] > 0.97


def test_kernel_shap_needs_r_and_model_facts(mlp):
    from ecgjax.errors import ConfigError

    x = jnp.asarray(_beats())
    with pytest.raises(ValueError, match="R position"):
        attr.attribute(_kernel(64), mlp[1], x, 0, jax.random.key(0))
    bare = Fns(logit_fn=mlp[1].logit_fn, feature_fn=mlp[1].feature_fn, head_fn=mlp[1].head_fn)
    with pytest.raises(ConfigError, match="sampling rate"):
        attr.attribute(_kernel(64), bare, x, 0, jax.random.key(0), r=R)
    assert "n_evals=8 is below 16" in _kernel(8).supports(INFO)
    assert _kernel(16).supports(INFO) is None
    assert "no samples" in attr.get("kernel_shap", seg_s=0.001).supports(INFO)


def test_kernel_shap_through_the_runner(mlp):
    x = _beats()
    m = _kernel(40)
    res = attr.attribute_dataset(mlp[1], x, np.array([0, 1, 2]), m, key=jax.random.key(5), batch_size=2, r=R)
    direct = _attr(m, mlp[1], x, np.array([0, 1, 2]), jax.random.key(5), r=R)
    np.testing.assert_allclose(res.maps, direct, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="pass r="):
        attr.attribute_dataset(mlp[1], x, 0, m, key=jax.random.key(5))


# -- expected gradients -------------------------------------------------------------------


def test_expected_gradients_linear_in_expectation():
    Wl = np.random.default_rng(3).normal(size=(T, L, C))
    bg = np.random.default_rng(8).normal(size=(4, T, L)).astype(np.float32)
    x = _beats()
    n = 256
    m = attr.get("expected_gradients", n=n, chunk_size=n, background=attr.FrozenArray(bg))
    eg = np.asarray(_attr(m, linear_fns(Wl), x, 2, jax.random.key(0)))
    w = Wl[..., 2]
    expect = (x - bg.mean(0)) * w
    sd = bg.std(0) * np.abs(w) / np.sqrt(n)  # the only randomness: which background beat (4, uniform)
    z = np.abs(eg - expect) / np.maximum(sd, 1e-12)
    assert z.max() < 5.0, z.max()
    # completeness: sum = f(x) - f(x0) per sample, so on average f(x) - mean f(background)
    f = linear_np(Wl, x)[:, 2] - linear_np(Wl, bg)[:, 2].mean()
    sd_sum = linear_np(Wl, bg)[:, 2].std() / np.sqrt(n)
    assert np.all(np.abs(eg.sum((1, 2)) - f) < 5 * sd_sum)


def test_expected_gradients_completeness_nonlinear(mlp):
    bg = np.random.default_rng(9).normal(size=(6, T, L)).astype(np.float32)
    x = _beats()
    m = attr.get("expected_gradients", n=512, chunk_size=512, background=bg)
    eg = np.asarray(_attr(m, mlp[1], x, 1, jax.random.key(1)))
    f = mlp_np(mlp[0], x)[:, 1] - mlp_np(mlp[0], bg)[:, 1].mean()
    np.testing.assert_allclose(eg.sum((1, 2)), f, atol=0.1 * np.abs(f).max() + 0.02)


def test_frozen_array_hash_and_background_sample():
    a = np.arange(6.0).reshape(1, 3, 2)
    assert attr.FrozenArray(a) == attr.FrozenArray(a.copy()) and hash(attr.FrozenArray(a)) == hash(attr.FrozenArray(a.copy()))
    assert attr.FrozenArray(a) != attr.FrozenArray(a + 1)
    assert "sha256=" in repr(attr.FrozenArray(a))
    with pytest.raises(ValueError):
        attr.FrozenArray(a).array[0, 0, 0] = 1.0
    x = np.random.default_rng(0).normal(size=(20, 4, 2))
    bg = attr.background_sample(x, 5, seed=1)
    assert bg.array.shape == (5, 4, 2) and bg == attr.background_sample(x, 5, seed=1)
    assert all(any(np.allclose(b, xi) for xi in x) for b in bg.array)
    with pytest.raises(ValueError, match="must be in"):
        attr.background_sample(x, 21)
    ks = attr.KernelShap.with_background(bg)
    assert ks.baseline == "given" and ks.baseline_value == attr.FrozenArray(bg.array.mean(0))
    from ecgjax.errors import ConfigError

    with pytest.raises(ConfigError, match="needs baseline_value"):
        attr.get("kernel_shap", baseline="given")


# -- the shap package ------------------------------------------------------------------------


def _spearman(a, b):
    from scipy.stats import spearmanr

    return spearmanr(a, b).statistic


def test_rank_agreement_with_shap_kernel_explainer(tiny_models):
    """kernel_shap vs shap.KernelExplainer on the same game (features kept from x or from the zero baseline)."""
    shap = pytest.importorskip("shap")
    make, params = tiny_models["cnn"]
    fns = make(params)
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 48, 2)).astype(np.float32)
    r = np.array([24, 18, 30], np.int32)
    # the tiny models read 360 Hz: 10-sample segments (10/360 s), 2 per side around R -> M = 8 features
    m = attr.get("kernel_shap", seg_s=10 / 360, n_per_side=2, n_evals=100, chunk_size=50)
    phi, feat, _, _ = _values(m, fns, x, 0, jax.random.key(0), r)
    for i in range(3):
        fi = np.asarray(feat[i])

        def g(Z, xi=x[i], fi=fi):  # Z: [n, M] in {0, 1}; 1 keeps the feature
            keep = np.concatenate([Z, np.ones((len(Z), 1))], 1)[:, np.where(fi < 0, M, fi)] > 0.5
            return np.asarray(fns.logit_fn(jnp.asarray(np.where(keep, xi, 0.0), jnp.float32)))[:, 0]

        ex = shap.KernelExplainer(g, np.zeros((1, M)))
        ref = ex.shap_values(np.ones((1, M)), nsamples=2**M - 2, silent=True)[0]
        assert _spearman(np.asarray(phi[i]), ref) > 0.9
        np.testing.assert_allclose(np.asarray(phi[i]), ref, atol=0.15 * np.abs(ref).max())


def test_expected_gradients_rank_agreement_with_shap(tiny_models):
    """expected_gradients summed per segment vs shap.KernelExplainer over the background distribution.

    Encoding: a feature's value is the index of the beat its samples come from
    (0 = the explained beat, k = background beat k), so KernelExplainer's
    interventional game is the one expected gradients approximates.
    """
    shap = pytest.importorskip("shap")
    make, params = tiny_models["cnn"]
    fns = make(params)
    rng = np.random.default_rng(12)
    x = rng.normal(size=(3, 48, 2)).astype(np.float32)
    bg = rng.normal(size=(8, 48, 2)).astype(np.float32) * 0.5
    r = np.array([24, 18, 30], np.int32)
    eg = np.asarray(_attr(attr.get("expected_gradients", n=256, chunk_size=256, background=bg), fns, x, 1, jax.random.key(2)))
    feat = np.asarray(segment_feature_index(jnp.asarray(r), 48, 2, 10, 2))
    srcs = np.concatenate([x[:, None], np.broadcast_to(bg[None], (3,) + bg.shape)], 1)  # [3, 1 + NB, T, L]
    for i in range(3):
        fi = np.where(feat[i] < 0, M, feat[i])
        eg_feat = np.bincount(fi.ravel(), eg[i].ravel(), minlength=M + 1)[:M]

        def g(Z, i=i, fi=fi):  # Z: [n, M] beat index per feature
            src = np.concatenate([Z, np.zeros((len(Z), 1))], 1)[:, fi].astype(int)  # [n, T, L]
            beats = np.take_along_axis(srcs[i][None], src[:, None], 1)[:, 0]
            return np.asarray(fns.logit_fn(jnp.asarray(beats, jnp.float32)))[:, 1]

        data = np.repeat(np.arange(1, len(bg) + 1, dtype=float)[:, None], M, 1)
        ref = shap.KernelExplainer(g, data).shap_values(np.zeros((1, M)), nsamples=2**M - 2, silent=True)[0]
        assert _spearman(eg_feat, ref) > 0.8, (eg_feat, ref)


def _torch_tiny_cnn(p):
    """conftest's tiny CNN (``cnn_make``) in PyTorch with the same weights: f32[B, T, L] -> f32[B, C]."""
    import torch

    w1, w2, d, b = (torch.tensor(np.asarray(p[k]), dtype=torch.float32) for k in ("c1", "c2", "d", "b"))

    class TinyCNN(torch.nn.Module):
        def forward(self, x):  # x: [B, T, L]; the leads concatenated in time, one channel (NCW)
            z = x.transpose(1, 2).reshape(x.shape[0], 1, -1)
            z = torch.tanh(torch.nn.functional.conv1d(z, w1.permute(2, 1, 0)))  # WIO -> OIW; both cross-correlate
            z = torch.nn.functional.leaky_relu(torch.nn.functional.conv1d(z, w2.permute(2, 1, 0)), 0.3)
            return z.transpose(1, 2).reshape(x.shape[0], -1) @ d + b  # JAX flattens [B, T', F] time-major

    return TinyCNN().eval()


def _Column(c):
    import torch

    class Column(torch.nn.Module):
        def forward(self, y):
            return y[:, c : c + 1]

    return Column()


@pytest.mark.slow  # importing torch and shap alone takes 10-20 s here; the KernelExplainer test above is the fast check
def test_expected_gradients_rank_agreement_with_shap_gradient_explainer(tiny_models):
    """expected_gradients vs shap.GradientExplainer (PyTorch) on the same model, background and beats.

    Both estimate E over background beats b and alpha ~ U(0, 1) of grad f(b + alpha (x - b)) * (x - b)
    by Monte Carlo with their own draws (256 samples each).
    """
    torch = pytest.importorskip("torch", reason="shap's GradientExplainer needs a PyTorch (or TensorFlow) model; torch is not installed")
    shap = pytest.importorskip("shap")
    make, params = tiny_models["cnn"]
    fns, net = make(params), _torch_tiny_cnn(params)
    rng = np.random.default_rng(13)
    x = rng.normal(size=(3, 48, 2)).astype(np.float32)
    bg = rng.normal(size=(8, 48, 2)).astype(np.float32) * 0.5
    with torch.no_grad():  # the two models are the same function
        np.testing.assert_allclose(net(torch.from_numpy(x)).numpy(), np.asarray(fns.logit_fn(jnp.asarray(x))), rtol=1e-4, atol=1e-4)
    target = np.array([1, 0, 3])
    n = 256
    eg = np.asarray(_attr(attr.get("expected_gradients", n=n, chunk_size=n, background=bg), fns, x, target, jax.random.key(4)))
    for i in range(3):
        one = torch.nn.Sequential(net, _Column(int(target[i])))  # the target's logit alone: shap explains every output
        ref = shap.GradientExplainer(one, torch.from_numpy(bg), batch_size=n).shap_values(torch.from_numpy(x[i : i + 1]), nsamples=n, rseed=i)
        ref = np.asarray(ref).reshape(x.shape[1:])
        assert _spearman(eg[i].ravel(), ref.ravel()) > 0.95
        assert np.linalg.norm(eg[i] - ref) < 0.15 * np.linalg.norm(ref)  # at 1,000 samples each: 2-4% apart


def test_background_by_data_reference():
    from types import SimpleNamespace

    from ecgjax.attribution.explain import with_data_background
    from ecgjax.errors import ConfigError

    beats = SimpleNamespace(x=np.random.default_rng(0).normal(size=(30, 4, 2)).astype(np.float32))
    train = np.arange(10, 30)
    m = attr.get("expected_gradients", background_n=5, background_seed=3)
    filled = with_data_background(m, beats, train)
    assert filled.background == attr.background_sample(beats.x[train], 5, seed=3)  # the same draw, by content
    assert filled == with_data_background(m, beats, train)  # deterministic: reruns find the same hyperparameters
    with pytest.raises(ConfigError, match="background_n=5"):
        with_data_background(m, beats, None)
    given = attr.get("expected_gradients", background=beats.x[:2], background_n=5)
    assert with_data_background(given, beats, train) is given  # a given background wins
    assert with_data_background(attr.get("saliency"), beats, None) == attr.get("saliency")


@pytest.mark.parametrize("n_evals", [96, 2048])
def test_kernel_shap_efficiency_is_exact_with_many_null_players(mlp, n_evals):
    """M = 48 features (12 per side) of which only those inside the 40-sample window are players."""
    x = _beats(5)
    m = attr.get("kernel_shap", n_per_side=12, n_evals=n_evals, chunk_size=512)
    phi, feat, fx, f0 = _values(m, mlp[1], x, jnp.asarray([0, 1, 2]), jax.random.key(4), R)
    np.testing.assert_allclose(np.asarray(phi).sum(1), np.asarray(fx - f0), rtol=1e-4, atol=1e-5)
    active = np.stack([np.isin(np.arange(2 * 2 * 12), np.asarray(feat[i])) for i in range(len(R))])
    assert np.all(np.asarray(phi)[~active] == 0.0) and active.sum(1).max() < 48
