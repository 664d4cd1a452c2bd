"""The sanity checks beyond the cascade: independent layer and data randomisation, random-logit,
completeness of DeepLIFT / expected gradients / LRP-epsilon, and ROAD (imputation against a sparse
linear solve, curve ordering on a model whose answer is known)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ecgjax import attribution as attr
from ecgjax.attribution import sanity

from conftest import cnn_init, cnn_make, linear_init, linear_make


def _x(n=8, T=48, L=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, T, L)).astype(np.float32)


# -- SSIM ------------------------------------------------------------------------------------


def _ssim_reference(a, b, win=7):
    """Direct float64 SSIM per beat: explicit windows (reflected ends, as scipy's 'reflect'), per lead, averaged."""
    out = []
    for u, v in zip(a, b):
        D = max(u.max(), v.max()) - min(u.min(), v.min())
        c1, c2 = (0.01 * D) ** 2, (0.03 * D) ** 2
        T, L = u.shape
        h = win // 2
        vals = []
        for l in range(L):
            pu = np.concatenate([u[:h, l][::-1], u[:, l], u[-h:, l][::-1]])
            pv = np.concatenate([v[:h, l][::-1], v[:, l], v[-h:, l][::-1]])
            for t in range(T):
                wu, wv = pu[t : t + win], pv[t : t + win]
                mu, mv = wu.mean(), wv.mean()
                su, sv, cuv = (wu * wu).mean() - mu * mu, (wv * wv).mean() - mv * mv, (wu * wv).mean() - mu * mv
                vals.append((2 * mu * mv + c1) * (2 * cuv + c2) / ((mu * mu + mv * mv + c1) * (su + sv + c2)))
        out.append(np.mean(vals))
    return np.array(out)


def test_ssim_rows_matches_direct_windows():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 30, 2))
    b = a + rng.normal(0, 0.5, size=a.shape)
    np.testing.assert_allclose(sanity.ssim_rows(a, b), _ssim_reference(a, b), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sanity.ssim_rows(a, a), 1.0)
    shuffled = a[:, rng.permutation(30)]
    assert np.all(sanity.ssim_rows(a, shuffled) < sanity.ssim_rows(a, b)) and np.all(sanity.ssim_rows(a, b) < 0.99)


# -- independent layer randomisation ----------------------------------------------------------


def test_independent_randomization_randomises_one_group_at_a_time():
    p, fresh = cnn_init(jax.random.key(0)), cnn_init(jax.random.key(1))
    x = _x()
    sal = attr.get("saliency")
    order = ("d", "c2", "c1")
    ind = sanity.independent_randomization((cnn_make, p), fresh, order, sal, x, 1, batch_size=8)
    cas = sanity.cascading_randomization((cnn_make, p), fresh, order, sal, x, 1, batch_size=8)
    assert ind.mode == "independent" and cas.mode == "cascade"
    np.testing.assert_allclose(ind.spearman_abs[0], cas.spearman_abs[0])  # step 1 is the same in both
    for k, g in enumerate(order):  # step k of the independent test = a one-group cascade of g
        one = sanity.cascading_randomization((cnn_make, p), fresh, (g,), sal, x, 1, batch_size=8)
        np.testing.assert_allclose(ind.spearman_abs[k], one.spearman_abs[0], atol=1e-12)
    assert not np.allclose(ind.spearman_abs[2], cas.spearman_abs[2])  # c1 alone differs from everything
    assert ind.ssim_abs.shape == (3, 8) and np.all(ind.ssim_abs < 1)
    assert ind.summary()["mode"] == "independent" and len(ind.summary()["median_ssim_abs"]) == 3


def test_independent_randomization_of_a_linear_models_bias_changes_nothing(tmp_path):
    p, fresh = linear_init(jax.random.key(0)), linear_init(jax.random.key(1))
    res = sanity.independent_randomization((linear_make, p), fresh, ("b", "W"), attr.get("saliency"), _x(), 2, batch_size=8)
    np.testing.assert_allclose(res.spearman_signed[0], 1.0)
    np.testing.assert_allclose(res.ssim_abs[0], 1.0)
    assert np.all(np.abs(res.spearman_signed[1]) < 0.6)
    res.save(tmp_path)
    assert (tmp_path / "independent_saliency.json").exists()


# -- random-logit ----------------------------------------------------------------------------


def test_other_class_is_never_the_prediction_and_covers_the_rest():
    pred = np.repeat(np.arange(4), 500)
    o = sanity.other_class(pred, 4, seed=1)
    assert np.all(o != pred) and o.dtype == np.int32
    for c in range(4):
        assert set(np.unique(o[pred == c])) == set(range(4)) - {c}


def test_random_logit_known_answers():
    """Saliency of a linear model is the class's weight map: classes with proportional weights give
    identical rankings (Spearman 1: class-insensitive), independent weights give unrelated ones."""
    x = _x(16)
    W0 = np.random.default_rng(3).normal(size=(48, 2, 1)).astype(np.float32)
    shared = {"W": jnp.asarray(W0 * np.arange(1, 5, dtype=np.float32)), "b": jnp.asarray(np.zeros(4, np.float32))}
    same = sanity.random_logit((linear_make, shared), attr.get("saliency"), x, batch_size=16)
    np.testing.assert_allclose(same.spearman_signed, 1.0, atol=1e-12)
    indep = sanity.random_logit((linear_make, linear_init(jax.random.key(5))), attr.get("saliency"), x, batch_size=16)
    assert abs(np.median(indep.spearman_signed)) < 0.3 and np.median(indep.ssim_abs) < 0.5
    s = indep.summary()
    assert s["check"] == "random_logit" and s["n"] == 16


# -- data randomisation ----------------------------------------------------------------------


def _fit_linear(x, y, steps=200, lr=0.05):
    import optax

    p = {"W": jnp.asarray(np.zeros((48, 2, 4), np.float32)), "b": jnp.asarray(np.zeros(4, np.float32))}
    opt = optax.adam(lr)
    s = jax.jit(opt.init)(p)

    @jax.jit
    def step(p, s):
        g = jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(linear_make(p).logit_fn(x), y).mean())(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    for _ in range(steps):
        p, s = step(p, s)
    return p


def test_data_randomization_separates_saliency_from_gradient_x_input():
    """A linear model trained on labels carried by two bumps, and a copy trained on permuted labels:
    saliency (the weights) changes completely, gradient x input stays similar because of the input
    factor (Adebayo et al.'s finding)."""
    rng = np.random.default_rng(0)
    N = 256
    y = rng.integers(0, 4, N).astype(np.int32)
    x = rng.normal(0, 0.3, size=(N, 48, 2)).astype(np.float32)
    x[:, 10:14, 0] += np.where(y % 2, 2.0, -2.0)[:, None]
    x[:, 30:34, 1] += np.where(y // 2, 2.0, -2.0)[:, None]
    p = _fit_linear(x, y)
    assert np.mean(np.argmax(jax.jit(lambda p, v: linear_make(p).logit_fn(v))(p, x), -1) == y) > 0.95
    p_perm = _fit_linear(x, rng.permutation(y))
    xs, ys = x[:32], y[:32]
    sal = sanity.data_randomization((linear_make, p), (linear_make, p_perm), attr.get("saliency"), xs, ys, batch_size=32)
    gxi = sanity.data_randomization((linear_make, p), (linear_make, p_perm), attr.get("gradient_x_input"), xs, ys, batch_size=32)
    same = sanity.data_randomization((linear_make, p), (linear_make, p), attr.get("saliency"), xs, ys, batch_size=32)
    np.testing.assert_allclose(same.spearman_abs, 1.0, atol=1e-12)
    assert np.median(sal.spearman_abs) < 0.5
    assert np.median(gxi.spearman_abs) > np.median(sal.spearman_abs) + 0.2


# -- completeness ------------------------------------------------------------------------------


def test_completeness_of_each_axiom_on_known_models():
    x = _x(8)
    p = linear_init(jax.random.key(2))
    p0 = {**p, "b": jnp.asarray(np.zeros(4, np.float32))}
    t = np.array([0, 1, 2, 3, 0, 1, 2, 3], np.int32)

    def check(model, method, key=None):
        make, params = model
        maps = np.asarray(attr.attribute(method, make(params), x, t, key=key))
        return sanity.method_completeness(model, method, x, t, maps, batch_size=8)

    assert check((linear_make, p), attr.get("deeplift", baseline="mean"))["median_rel_error"] < 1e-5
    bg = attr.FrozenArray(_x(1, seed=9)[0])  # one background beat: EG's expectation is exact on a linear model
    eg = check((linear_make, p), attr.get("expected_gradients", n=8, background=bg), key=jax.random.key(0))
    assert eg["median_rel_error"] < 1e-4 and eg["steps"] == 8
    assert check((linear_make, p0), attr.get("lrp", eps=0.0))["median_rel_error"] < 1e-5  # no bias: conserved
    with_bias = check((linear_make, p), attr.get("lrp", eps=0.0))
    z = np.asarray(jax.jit(lambda p, v: linear_make(p).logit_fn(v))(p, x))[np.arange(8), t]
    np.testing.assert_allclose(with_bias["median_rel_error"], np.median(np.abs(np.asarray(p["b"])[t] / z)), rtol=1e-4)
    cnn = (cnn_make, cnn_init(jax.random.key(3)))
    assert check(cnn, attr.get("deeplift"))["median_rel_error"] < 1e-3  # tanh and leaky ReLU: summation to delta
    assert "not_measured" in check((linear_make, p), attr.get("lrp", rule="zplus"))
    assert "not_measured" in check((linear_make, p), attr.get("saliency"))


# -- ROAD --------------------------------------------------------------------------------------


def _impute_reference(x, remove, lo, hi):
    """ROAD's system solved directly (scipy sparse): each removed real sample equals the mean of its
    real neighbours in time, lead by lead."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    out = np.array(x, np.float64)
    N, T, L = x.shape
    for n in range(N):
        for l in range(L):
            gone = [t for t in range(lo[n], hi[n]) if remove[n, t, l]]
            if not gone:
                continue
            pos = {t: i for i, t in enumerate(gone)}
            A, rhs = lil_matrix((len(gone), len(gone))), np.zeros(len(gone))
            for t, i in pos.items():
                nb = [u for u in (t - 1, t + 1) if lo[n] <= u < hi[n]]
                A[i, i] = len(nb)
                for u in nb:
                    if u in pos:
                        A[i, pos[u]] -= 1
                    else:
                        rhs[i] += x[n, u, l]
            out[n, gone, l] = spsolve(A.tocsr(), rhs)
    return out


def test_linear_impute_solves_roads_system():
    rng = np.random.default_rng(0)
    N, T, L = 12, 40, 2
    x = rng.normal(size=(N, T, L)).astype(np.float32)
    lo, hi = rng.integers(0, 8, N), rng.integers(30, T + 1, N)
    remove = rng.random((N, T, L)) < 0.4
    t = np.arange(T)[None, :, None]
    remove[:, :, :] &= ~(t == lo[:, None, None] + 5)  # at least one kept real sample per lead
    got = sanity.linear_impute(x, remove, lo, hi)
    np.testing.assert_allclose(got, _impute_reference(x, remove, lo, hi), rtol=1e-5, atol=1e-5)
    outside = (t < lo[:, None, None]) | (t >= hi[:, None, None])
    np.testing.assert_array_equal(got[np.broadcast_to(outside, x.shape)], x[np.broadcast_to(outside, x.shape)])
    everything = sanity.linear_impute(x, np.ones_like(remove), lo, hi)  # nothing kept: zeros
    assert np.all(everything[~np.broadcast_to(outside, x.shape)] == 0)


def test_road_orders_a_known_map_random_and_reversed():
    """Class 0's logit is 8 x the sum of one segment; a map pointing at it removes it first (MoRF low,
    LeRF high), the reversed map removes it last, the random order lies between."""
    N, T, L, C, w = 16, 48, 2, 4, 2
    r, lo, hi = np.full(N, 24), np.full(N, 18), np.full(N, 30)  # 3 + 3 segments of 2 samples per lead exist
    seg = slice(26, 28)
    W = np.zeros((T, L, C), np.float32)
    W[seg, 1, 0] = 8.0
    model = (linear_make, {"W": jnp.asarray(W), "b": jnp.asarray(np.zeros(C, np.float32))})
    rng = np.random.default_rng(0)
    x = np.zeros((N, T, L), np.float32)
    x[:, 18:30] = rng.normal(0, 0.05, size=(N, 12, L))
    x[:, seg, 1] += 1.0
    known = np.zeros_like(x)
    known[:, 18:30] = 1e-3 * rng.random((N, 12, L))
    known[:, seg, 1] = 1.0
    reversed_ = np.where(known > 0, 1.0 - known, 0.0).astype(np.float32)
    t = np.zeros(N, np.int32)
    res = sanity.road(model, x, t, {"known": known, "reversed": reversed_}, r, lo, hi, 360.0, seg_s=w / 360, batch_size=16)
    prob = np.asarray(jax.jit(lambda p, v: jax.nn.softmax(linear_make(p).logit_fn(v)))(model[1], x))[:, 0]
    np.testing.assert_allclose(res.morf["known"][0], prob.mean(), rtol=1e-6)  # nothing removed yet
    assert res.morf["known"][1] < 0.5 * prob.mean()  # the segment is gone at 10 % (1 of 12)
    np.testing.assert_allclose(res.lerf["known"], prob.mean(), rtol=1e-2)  # never removed by LeRF below 100 %
    m, lr = res.summary()["morf_auc"], res.summary()["lerf_auc"]
    assert m["known"] < m["random_order"] < m["reversed"]
    assert lr["known"] > lr["random_order"] > lr["reversed"]
    assert res.summary()["lerf_minus_morf"]["known"] > 0.5


def test_road_refuses_bad_fractions():
    x = _x(2)
    with pytest.raises(ValueError, match="fractions"):
        sanity.road((linear_make, linear_init(jax.random.key(0))), x, np.zeros(2, np.int32), {}, np.full(2, 24),
                    np.zeros(2, int), np.full(2, 48), 360.0, fractions=(0.5, 0.2))
