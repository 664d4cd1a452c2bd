"""rr_net: the waveform + RR model; RR attributions are the time-sums of their channels' maps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import attribution as attr
from ecgjax import models
from ecgjax.data.rr import DEFAULT_FEATURES as FEATURES
from ecgjax.data.rr import FEATURES as ALL_FEATURES
from ecgjax.errors import ConfigError
from ecgjax.models import rr_net
from ecgjax.models.rr_net import rr_attributions, rr_input_matrix

T, L, F = 40, 2, len(FEATURES)


def build(inputs="both", **kw):
    return models.build("rr_net", n_classes=5, in_shape=(T, L + F), fs=360.0, rngs=nnx.Rngs(0), rr_features=FEATURES, inputs=inputs, **kw)


def batch(b=4, seed=0):
    rng = np.random.default_rng(seed)
    wave = rng.standard_normal((b, T, L)).astype(np.float32)
    rr = rng.uniform(0.4, 1.6, (b, F)).astype(np.float32)
    return np.concatenate([wave, np.broadcast_to(rr[:, None, :], (b, T, F))], axis=-1), wave, rr


def test_parameter_count_and_facts():
    m = build()
    assert m.n_leads == L and m.rr_features == FEATURES
    # full-size (252 samples, 2 leads + 8 RR features) count, pinned
    # counts are shapes only: abstract builds (an eager build runs every initialiser op by op)
    full = nnx.eval_shape(lambda: models.build("rr_net", n_classes=5, in_shape=(252, 10), fs=360.0, rr_features=FEATURES, rngs=nnx.Rngs(0)))
    assert models.count_params(full) == 46_085
    ratios = nnx.eval_shape(lambda: models.build("rr_net", n_classes=5, in_shape=(252, 10), fs=360.0, rr_features=FEATURES,
                                                 rr_transform="ratios", rngs=nnx.Rngs(0)))
    assert models.count_params(ratios) == 46_105  # 9 RR inputs (4 *_norm + 5 ratios) instead of 8
    assert {b.momentum for b in (*ratios.bns, ratios.rr_bn)} == {rr_net.BN_MOMENTUM}
    with pytest.raises(ConfigError, match="fewer than"):
        models.build("rr_net", n_classes=5, in_shape=(T, F), fs=360.0, rr_features=FEATURES, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="needs rr_features"):
        models.build("rr_net", n_classes=5, in_shape=(T, L), fs=360.0, inputs="rr", rngs=nnx.Rngs(0))


# the recipe's transform by default; the other one ("log": the same RR branch and attribution path behind another
# input transform) with -m slow
@pytest.mark.parametrize("rr_transform", [pytest.param("log", marks=pytest.mark.slow), "ratios"])
def test_rr_attribution_is_the_gradient_wrt_the_rr_vector(rr_transform):
    """sum over time of the RR channels' saliency == d logit / d rr (chain rule through the mean)."""
    m = build(rr_transform=rr_transform)
    gd, st = models.eval_split(m)
    fns = models.pure_fns(gd, st)
    x, wave, rr = batch()
    target = jnp.array([0, 1, 2, 3])
    maps = np.asarray(attr.attribute(attr.get("saliency"), fns, jnp.asarray(x), target))
    w_map, rr_attr = rr_attributions(maps, L)

    def logit(state, wave1, rr1, c):  # the model as a function of (waveform, rr vector), one beat
        x1 = jnp.concatenate([wave1, jnp.broadcast_to(rr1[None, :], (T, F))], axis=-1)
        return models.pure_fns(gd, state).logit_fn(x1[None])[0, c]

    # one compiled program with the parameters as its arguments (closed over as constants, XLA:CPU computed
    # wrong convolution gradients for jones2020_cnn: tests/test_batched.py)
    g_wave, g_rr = jax.jit(jax.vmap(jax.grad(logit, argnums=(1, 2)), in_axes=(None, 0, 0, 0)))(st, wave, rr, target)
    np.testing.assert_allclose(rr_attr, np.asarray(g_rr), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(w_map, np.asarray(g_wave), rtol=1e-4, atol=1e-6)
    assert np.abs(rr_attr).max() > 0


def test_ablations_ignore_the_other_input():
    x, _, _ = batch()
    target = jnp.zeros(4, jnp.int32)
    for inputs, zero in (("waveform", slice(L, None)), ("rr", slice(0, L))):
        gd, st = models.eval_split(build(inputs))
        fns = models.pure_fns(gd, st)
        maps = np.asarray(attr.attribute(attr.get("saliency"), fns, jnp.asarray(x), target))
        assert np.all(maps[..., zero] == 0), inputs
        other = slice(0, L) if zero.start else slice(L, None)
        assert np.abs(maps[..., other]).max() > 0, inputs
        assert jax.eval_shape(lambda v: fns.head_fn(fns.feature_fn(v)), x).shape == (4, 5)


def test_eval_rows_are_independent_and_head_of_features_is_the_model():
    gd, st = models.eval_split(build())
    x, _, _ = batch(6, seed=3)

    @jax.jit  # one compiled program (op-by-op execution compiles every primitive on its own)
    def run(state, v, v1):
        fns = models.pure_fns(gd, state)
        return fns.logit_fn(v), fns.logit_fn(v1), fns.head_fn(fns.feature_fn(v))

    full, one, head = run(st, x, x[2:3])
    np.testing.assert_allclose(full[2:3], one, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(head), full, rtol=1e-6)


# the recipe's transform by default; the other one ("log": the same RR branch and attribution path behind another
# input transform) with -m slow
@pytest.mark.parametrize("rr_transform", [pytest.param("log", marks=pytest.mark.slow), "ratios"])
def test_integrated_gradients_completeness_covers_both_inputs(rr_transform):
    """IG's waveform map plus RR attributions sum to f(x) - f(0): both come from the same call."""
    gd, st = models.eval_split(build(rr_transform=rr_transform))
    fns = models.pure_fns(gd, st)
    x, _, _ = batch(3, seed=5)
    target = jnp.array([1, 2, 0])
    maps = np.asarray(attr.attribute(attr.get("integrated_gradients", steps=256), fns, jnp.asarray(x), target), np.float64)
    w_map, rr_attr = rr_attributions(maps, L)
    logit = jax.jit(lambda state, v: models.pure_fns(gd, state).logit_fn(v))
    logits, base = (np.asarray(logit(st, v))[np.arange(3), target] for v in (x, np.zeros_like(x)))
    np.testing.assert_allclose(w_map.sum(axis=(1, 2)) + rr_attr.sum(axis=1), logits - base, rtol=0.05, atol=0.02)


def test_ratio_inputs_closed_form():
    m = rr_input_matrix(FEATURES, "ratios")
    rr = np.array([[0.5, 1.2, 0.8, 0.9, 0.6, 1.4, 0.95, 1.05]], np.float32)
    got = np.log(rr.astype(np.float64)) @ m
    p, q, lo, ln = rr[0, :4].astype(np.float64)
    want = [*np.log(rr[0, 4:].astype(np.float64)), np.log(p / lo), np.log(q / p), np.log(p / ln), np.log(lo / ln), np.log(q / lo)]
    np.testing.assert_allclose(got[0], want, rtol=1e-6)
    np.testing.assert_array_equal(rr_input_matrix(FEATURES, "log"), np.eye(F))
    with pytest.raises(ConfigError, match="needs the RR features"):
        rr_input_matrix(("pre", "post"), "ratios")
    # with prev, lmin, lmax: three reference-free local ratios after the five
    # and irreg, its own log last
    rr12 = np.concatenate([rr, [[0.9, 0.45, 1.1, 1.3]]], axis=1).astype(np.float32)
    got = np.log(rr12.astype(np.float64)) @ rr_input_matrix(ALL_FEATURES, "ratios")
    np.testing.assert_allclose(got[0], want + [np.log(p / 0.9), np.log(1.1 / 0.45), np.log(p / 0.45), np.log(1.3)], rtol=1e-6)
    got = np.log(rr12[:, [*range(8), 11]].astype(np.float64)) @ rr_input_matrix((*FEATURES, "irreg"), "ratios")
    np.testing.assert_allclose(got[0], want + [np.log(1.3)], rtol=1e-6)
    # plock (the atrial activity locked to R, in [0, 1]) likewise; both in OWN_RATIOS' order
    got = np.log(np.concatenate([rr12[:, [*range(8), 11]], [[0.2]]], 1).astype(np.float64)) @ rr_input_matrix((*FEATURES, "irreg", "plock"), "ratios")
    np.testing.assert_allclose(got[0], want + [np.log(1.3), np.log(0.2)], rtol=1e-6)
    # ratios+rate: the same columns, then the log of the local mean interval in seconds
    got = np.log(rr12[:, [*range(8), 11]].astype(np.float64)) @ rr_input_matrix((*FEATURES, "irreg"), "ratios+rate")
    np.testing.assert_allclose(got[0], want + [np.log(1.3), np.log(lo)], rtol=1e-6)
    with pytest.raises(ConfigError, match="rr_transform must be one of"):
        build(rr_transform="raw")


def test_ratio_inputs_ignore_the_heart_rate():
    """With ``ratios`` the model sees no absolute interval: scaling pre/post/local/long together changes nothing."""
    x, _, _ = batch(5, seed=2)
    faster = x.copy()
    faster[..., L:L + 4] *= 0.7  # the raw intervals; the *_norm ratios stay

    def both(transform):  # the model on both batches, one compiled program
        gd, st = models.eval_split(build("rr", rr_transform=transform))
        fns = lambda state: models.pure_fns(gd, state)  # noqa: E731
        return jax.jit(lambda state, a, b: (fns(state).logit_fn(a), fns(state).logit_fn(b)))(st, faster, x)

    np.testing.assert_allclose(*both("ratios"), rtol=1e-5, atol=1e-5)
    assert not np.allclose(*both("log"), atol=1e-4)
    assert not np.allclose(*both("ratios+rate"), atol=1e-4)  # the heart rate is an input


def test_rr_batchnorm_statistics_converge_within_a_short_training():
    # The RR branch's inputs have variance ~0.02 (log ratios). The running variance the evaluated model divides
    # by is momentum**n * 1 + (1 - momentum**n) * batch variance after n training steps; an early-stopped DS1 run
    # (~300 steps) must not still carry the initial 1 (momentum 0.99 kept 5% of it: 2-8x the RR inputs' variance).
    # The model's BatchNorms are rr_net._bn's (test_parameter_count_and_facts).
    bn = rr_net._bn(9, nnx.Rngs(0))
    bn.train()
    rng = np.random.default_rng(0)
    update = nnx.jit(lambda mod, v: mod(v))  # one compiled update (op by op, each primitive compiles on its own)
    for _ in range(20):
        update(bn, rng.normal(0.0, 0.14, (512, 9)).astype(np.float32))
    mom = bn.momentum
    np.testing.assert_allclose(np.asarray(bn.var[...]), mom ** 20 + (1 - mom ** 20) * 0.14 ** 2, rtol=0.1)
    assert mom ** 300 < 0.01 * 0.02  # after 300 steps the initial variance is < 1% of the RR inputs'


def test_wave_dropout_drops_whole_waveform_embeddings_in_training_only():
    x, _, _ = batch(64, seed=3)
    off, on = build(rr_transform="ratios"), build(rr_transform="ratios", wave_dropout=0.5)
    assert off.wave_drop is None and on.wave_drop is not None
    # evaluation: the layer is the identity, so the two models (same initialisation) agree
    off.eval(), on.eval()
    np.testing.assert_array_equal(np.asarray(off(jnp.asarray(x))), np.asarray(on(jnp.asarray(x))))
    # training: each row's waveform embedding is all kept (x2) or all dropped; the RR part is untouched
    on.train()
    w = jnp.asarray(np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32))
    out = np.asarray(on.wave_drop(w))
    kept = np.all(np.isclose(out, 2.0 * np.asarray(w)), axis=1)
    dropped = np.all(out == 0.0, axis=1)
    assert np.all(kept ^ dropped) and 16 < dropped.sum() < 48
    with pytest.raises(ConfigError, match="wave_dropout"):
        build(wave_dropout=1.0)
