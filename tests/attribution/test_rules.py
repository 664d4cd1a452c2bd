"""Rule-based methods (guided backprop, DeepLIFT, LRP) against independent references.

References: hand-written float64 numpy backward passes of small ReLU networks
(the rules' textbook formulas, layer by layer), and conservation
(completeness) on ReLU networks and on the real jones2020_cnn.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax.errors import ConfigError
import pytest
from flax import nnx

from ecgjax import attribution as attr
from ecgjax import models
from ecgjax.models.base import DEFAULT_HOOKS, Affine, Fns, LayerSpec, ModelInfo
from tests.conftest import normal

T, L, C, H1, H2 = 12, 2, 3, 7, 5


# -- a small ReLU MLP on the flattened beat, written with the hook seam -------------------


def mlp_init(seed, bias=True):
    rng = np.random.default_rng(seed)
    p = {"W1": normal(rng, (T * L, H1), 0.5), "W2": normal(rng, (H1, H2), 0.5), "W3": normal(rng, (H2, C), 0.5)}
    for i, n in enumerate((H1, H2, C)):
        p[f"b{i + 1}"] = normal(rng, (n,), 0.3) if bias else jnp.zeros((n,))
    return p


def mlp_make(p, hooks=DEFAULT_HOOKS):
    mm = lambda a, w: a @ w  # noqa: E731

    def feat(x, h=hooks):
        a = x.reshape(x.shape[0], -1)
        a = h.act(jax.nn.relu, h.linear(Affine(mm, p["W1"], p["b1"]), a))
        return h.tap("hidden", h.act(jax.nn.relu, h.linear(Affine(mm, p["W2"], p["b2"]), a))[:, None, :])

    head = lambda f: hooks.linear(Affine(mm, p["W3"], p["b3"]), f[:, 0])  # noqa: E731
    info = ModelInfo("mlp", "channels", 360.0, (T, L), (LayerSpec("hidden", 1, H2, "conv"),), "hidden", ())
    return Fns(logit_fn=lambda x: head(feat(x)), feature_fn=feat, head_fn=head, info=info, rebuild=lambda h: mlp_make(p, h))


# -- a small ReLU conv net on concatenated leads: conv(5) -> relu -> conv(3, stride 2) -> relu -> dense --


def _conv(stride):
    return lambda x, w: jax.lax.conv_general_dilated(x, w, (stride,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))


def convnet_init(seed, bias=True):
    rng = np.random.default_rng(seed)
    t2 = ((T * L - 4) - 3) // 2 + 1
    p = {"c1": normal(rng, (5, 1, 4), 0.5), "c2": normal(rng, (3, 4, 3), 0.5), "d": normal(rng, (t2 * 3, C), 0.3)}
    for name, n in (("bc1", 4), ("bc2", 3), ("bd", C)):
        p[name] = normal(rng, (n,), 0.3) if bias else jnp.zeros((n,))
    return p


def convnet_make(p, hooks=DEFAULT_HOOKS):
    def feat(x, h=hooks):
        z = x.transpose(0, 2, 1).reshape(x.shape[0], -1, 1)
        z = h.act(jax.nn.relu, h.linear(Affine(_conv(1), p["c1"], p["bc1"], "conv"), z))
        return h.tap("features", h.act(jax.nn.relu, h.linear(Affine(_conv(2), p["c2"], p["bc2"], "conv"), z)))

    dense = Affine(lambda a, w: a.reshape(a.shape[0], -1) @ w, p["d"], p["bd"])
    head = lambda f: hooks.linear(dense, f)  # noqa: E731
    t2 = p["d"].shape[0] // 3
    info = ModelInfo("convnet", "concat", 360.0, (T, L), (LayerSpec("features", t2, 3, "conv"),), "features", ())
    return Fns(logit_fn=lambda x: head(feat(x)), feature_fn=feat, head_fn=head, info=info, rebuild=lambda h: convnet_make(p, h))


NETS = {"mlp": (mlp_init, mlp_make), "convnet": (convnet_init, convnet_make)}


def _x(seed, n=5):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(n, T, L)).astype(np.float32))


def _z(fns, x, t):
    return jnp.take_along_axis(jax.jit(fns.logit_fn)(x), t[:, None], 1)[:, 0]


def run(m, fns, x, t):
    """``m``'s maps as one compiled program (op by op, XLA:CPU compiles every primitive on its own)."""
    return jax.jit(lambda xx, tt: m(fns, xx, tt, None))(x, t)


T_ = jnp.array([0, 1, 2, 1, 0], jnp.int32)


# -- float64 numpy references of the rules on the MLP ---------------------------------------


def _np(p):
    return {k: np.asarray(v, np.float64) for k, v in p.items()}


def _mlp_forward(q, x):
    a0 = np.asarray(x, np.float64).reshape(len(x), -1)
    z1 = a0 @ q["W1"] + q["b1"]
    a1 = np.maximum(z1, 0)
    z2 = a1 @ q["W2"] + q["b2"]
    a2 = np.maximum(z2, 0)
    return a0, z1, a1, z2, a2, a2 @ q["W3"] + q["b3"]


def _lrp_layer(a, W, z, R, rule, eps=0.0, alpha=1.0, beta=0.0):
    """Textbook LRP for one dense layer z = a W + b: input relevance f64[B, J] from output relevance f64[B, K]."""
    contrib = a[:, :, None] * W[None]  # [B, J, K]: x_j w_jk
    if rule == "epsilon":
        den = z + eps * np.where(z >= 0, 1.0, -1.0)
        return np.einsum("bjk,bk->bj", contrib, R / den)
    pos, neg = np.maximum(contrib, 0), np.minimum(contrib, 0)
    share = lambda d: np.divide(R, d, out=np.zeros_like(R), where=d != 0)  # noqa: E731  no contributions: nothing to share
    out = alpha * np.einsum("bjk,bk->bj", pos, share(pos.sum(1)))
    if beta:
        out -= beta * np.einsum("bjk,bk->bj", neg, share(neg.sum(1)))
    return out


def _lrp_ref(p, x, t, rule, dense_rule, eps, alpha=1.0, beta=0.0):
    q = _np(p)
    a0, z1, a1, z2, a2, z3 = _mlp_forward(q, x)
    R = np.eye(C)[np.asarray(t)] * z3
    R = _lrp_layer(a2, q["W3"], z3, R, dense_rule, eps, alpha, beta)  # relevance passes the ReLUs unchanged
    R = _lrp_layer(a1, q["W2"], z2, R, dense_rule, eps, alpha, beta)
    R = _lrp_layer(a0, q["W1"], z1, R, dense_rule, eps, alpha, beta)
    return R.reshape(np.shape(x))


def test_guided_backprop_matches_hand_written_backward():
    p = mlp_init(0)
    x = _x(1)
    got = run(attr.get("guided_backprop"), mlp_make(p), x, T_)
    q = _np(p)
    a0, z1, a1, z2, a2, z3 = _mlp_forward(q, x)
    g = q["W3"][:, np.asarray(T_)].T  # d z_t / d a2: [B, H2]
    g = (z2 > 0) * np.maximum(g, 0)  # guided through ReLU 2
    g = g @ q["W2"].T
    g = (z1 > 0) * np.maximum(g, 0)  # guided through ReLU 1
    ref = (g @ q["W1"].T).reshape(np.shape(x))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-6)
    # and it is not the plain gradient
    assert not np.allclose(got, run(attr.get("saliency"), mlp_make(p), x, T_), atol=1e-4)


@pytest.mark.parametrize("rule,kw", [("epsilon", {"eps": 0.05}), ("zplus", {}), ("alpha_beta", {"alpha": 2.0, "beta": 1.0})])
def test_lrp_rules_match_textbook_formulas(rule, kw):
    p = mlp_init(2)
    x = _x(3)
    m = attr.get("lrp", rule=rule, dense_rule=rule, **kw)
    got = run(m, mlp_make(p), x, T_)
    ref = _lrp_ref(p, x, T_, rule, rule, kw.get("eps", 0.0), kw.get("alpha", 1.0), kw.get("beta", 0.0))
    np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("net", sorted(NETS))
def test_lrp_epsilon_conserves_relevance_without_biases(net):
    init, make = NETS[net]
    fns = make(init(4, bias=False))
    x = _x(5)
    r = run(attr.get("lrp", eps=1e-9), fns, x, T_)
    np.testing.assert_allclose(r.sum((1, 2)), _z(fns, x, T_), rtol=1e-4, atol=1e-5)
    # a larger eps absorbs relevance: |sum| shrinks
    r2 = run(attr.get("lrp", eps=1.0), fns, x, T_)
    assert np.all(np.abs(r2.sum((1, 2))) < np.abs(_z(fns, x, T_)))


@pytest.mark.parametrize("net", sorted(NETS))
@pytest.mark.parametrize("baseline", ["zeros", "mean", "blurred", "given"])
def test_deeplift_sums_to_delta(net, baseline):
    init, make = NETS[net]
    fns = make(init(6))
    x = _x(7)
    if baseline == "given":
        m = attr.DeepLift.with_baseline(np.random.default_rng(8).normal(size=(T, L)))
    else:
        m = attr.get("deeplift", baseline=baseline, blur_sigma=2.0)
    d = run(m, fns, x, T_)
    x0 = m.baseline_for(x)
    np.testing.assert_allclose(d.sum((1, 2)), _z(fns, x, T_) - _z(fns, x0, T_), rtol=1e-4, atol=1e-4)
    # not merely gradient x delta on a nonlinear net
    g = run(attr.get("saliency"), fns, x, T_)
    assert not np.allclose(d, g * (x - x0), atol=1e-4)


def test_deeplift_on_linear_is_gradient_times_delta(tiny_models, beats):
    make, p = tiny_models["linear"]
    x, t = beats
    x0 = np.full(x.shape[1:], 0.3, np.float32)
    d = run(attr.DeepLift.with_baseline(x0), make(p), x, t)
    np.testing.assert_allclose(d, jnp.moveaxis(p["W"][:, :, t], -1, 0) * (x - x0), rtol=1e-5, atol=1e-6)
    # LRP-0 on a linear model is gradient x input
    r = run(attr.get("lrp", eps=0.0), make(p), x, t)
    np.testing.assert_allclose(r, jnp.moveaxis(p["W"][:, :, t], -1, 0) * x, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_deeplift_sums_to_delta_on_jones2020_cnn():
    """Conv, BatchNorm, LeakyReLU and residual sums, no max-pool: summation to delta holds on the real model."""
    m = models.build("jones2020_cnn", n_classes=4, in_shape=(40, 2), fs=360.0, rngs=nnx.Rngs(0))
    g, s = models.eval_split(m)
    fns = models.pure_fns(g, s)
    x = normal(1, (3, 40, 2))
    t = jnp.array([0, 2, 3], jnp.int32)
    d = jax.jit(lambda st, xx: attr.get("deeplift", baseline="mean")(models.pure_fns(g, st), xx, t, None))(s, x)
    x0 = jnp.broadcast_to(x.mean(1, keepdims=True), x.shape)
    np.testing.assert_allclose(d.sum((1, 2)), _z(fns, x, t) - _z(fns, x0, t), rtol=2e-3, atol=2e-3)


def test_rules_refuse_the_lstm_and_say_why():
    m = models.build("jones2020_lstm", n_classes=4, in_shape=(10, 2), fs=360.0, rngs=nnx.Rngs(0))
    info = m.info()
    for name in ("deeplift", "lrp"):
        line = attr.refusal(attr.get(name), info)
        assert line.startswith(f"{name} cannot explain jones2020_lstm: ") and "LSTM gates" in line
    assert attr.get("guided_backprop").supports(info) is None  # its head ReLU is guided; the gates pass gradients


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="deeplift's baseline must be one of"):
        attr.get("deeplift", baseline="uniform")
    with pytest.raises(ConfigError, match="rule must be one of"):
        attr.get("lrp", rule="z")
    with pytest.raises(ConfigError, match="alpha - beta = 1"):
        attr.get("lrp", rule="alpha_beta", alpha=2.0, beta=0.5)
