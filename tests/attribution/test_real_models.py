"""The engine on the project's real models (jones2020_cnn, jones2020_lstm), at a short beat length for CPU time."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import attribution as attr
from ecgjax.attribution import runner, sanity
from ecgjax.errors import ConfigError
from ecgjax.models import build, eval_split, pure_fns

T, L, C = 64, 2, 8


@pytest.fixture(scope="module", params=["jones2020_cnn", "jones2020_lstm"])
def model(request):
    m = build(request.param, n_classes=C, in_shape=(T, L), fs=360.0, rngs=nnx.Rngs(0))
    return request.param, m, eval_split(m)


@pytest.fixture(scope="module")
def x():
    return jnp.asarray(np.random.default_rng(0).normal(size=(5, T, L)).astype(np.float32))


def test_fast_path_equals_vmap_grad(model, x):
    _, _, (g, s) = model
    fns = pure_fns(g, s)
    t = jnp.array([0, 3, 7, 1, 2])
    # each side one compiled program (op by op, every primitive compiles on its own: many times slower on CPU)
    ref = jax.jit(jax.vmap(jax.grad(lambda xi, ti: fns.logit_fn(xi[None])[0, ti])))(x, t)
    np.testing.assert_allclose(jax.jit(lambda xx, tt: attr.target_grad(fns, xx, tt))(x, t), ref, rtol=1e-4, atol=1e-6)


def test_runner_with_graphdef_state(model, x):
    _, _, (g, s) = model
    before = runner._step._cache_size()
    res = attr.attribute_dataset((g, s), np.asarray(x), "pred", attr.get("saliency"), batch_size=2)
    assert runner._step._cache_size() - before == 1
    # the weights as arguments, as the runner passes them (closed over, XLA may fold them into other arithmetic)
    logits, maps = jax.jit(lambda st, xx, tt: (pure_fns(g, st).logit_fn(xx), attr.attribute(attr.get("saliency"), pure_fns(g, st), xx, tt)))(
        s, x, res.pred)
    np.testing.assert_array_equal(res.pred, np.argmax(logits, -1))
    np.testing.assert_allclose(res.maps, maps, rtol=1e-4, atol=1e-6)


def test_layer_methods(model, x):
    name, _, (g, s) = model
    fns = pure_fns(g, s)
    t = jnp.zeros(5, jnp.int32)
    if name == "jones2020_cnn":
        cam, g1, ref = jax.jit(lambda xx, tt: (attr.get("grad_cam")(fns, xx, tt, None), attr.get("jones2020_layer_saliency")(fns, xx, tt, None),
                                               jax.vmap(jax.grad(lambda xi: jnp.mean(fns.layers["final_conv"](xi[None]))))(xx)))(x, t)
        assert cam.shape == x.shape and bool(jnp.all(jnp.isfinite(cam)))
        np.testing.assert_allclose(g1, ref, rtol=1e-4, atol=1e-8)
    else:
        with pytest.raises(ConfigError, match="grad_cam cannot explain jones2020_lstm: it has no convolutional layer"):
            attr.get("grad_cam")(fns, x, t, None)
        with pytest.raises(ConfigError, match="jones2020_layer_saliency cannot explain jones2020_lstm: it has no layer 'final_conv'"):
            attr.get("jones2020_layer_saliency")(fns, x, t, None)


def test_cascade_for_model(model, x):
    name, m, _ = model
    fresh = build(name, n_classes=C, in_shape=(T, L), fs=360.0, rngs=nnx.Rngs(1))
    res = sanity.cascade_for_model(m, fresh, attr.get("saliency"), np.asarray(x), 0, batch_size=8)
    assert res.layers == tuple(m.cascade_order)
    assert res.spearman_abs.shape == (len(m.cascade_order), 5)
    # a fully re-initialised network gives different signed maps
    assert abs(np.nanmedian(res.spearman_signed[-1])) < 0.9
    if name == "jones2020_cnn":
        assert np.nanmedian(res.spearman_abs[-1]) < 0.9
    # (jones2020_lstm: |saliency| ranks stay ~0.99 correlated even after full
    # re-initialisation: the gradient decays with distance from the last step
    # whatever the weights, so |.| rank correlation is uninformative for it;
    # see the sanity module docstring.)


@pytest.mark.slow
def test_rolled_ig_on_jones2020_cnn_equal_across_conv_impls(x):
    """Integrated gradients' rolled scan (the path of 512 steps) on jones2020_cnn: the maps with ``auto`` (``phase``
    convolutions whose input gradient is written in (W, I, O) layout) equal those with ``lax.conv`` and its own
    transpose rule (``xla``) and with im2col (``patches``, what ``auto`` picked in loop bodies before) within 1e-5.
    Slow: ``xla`` runs XLA:CPU's generic kernel in the loop. The per-layer checks are in tests/models/test_conv_impls.py."""
    ig = attr.get("integrated_gradients", steps=16, chunk_size=3, unroll=False)
    t = jnp.array([0, 3, 7, 1, 2])
    maps = {}
    for impl in ("xla", "auto", "patches"):
        fns = pure_fns(*eval_split(build("jones2020_cnn", n_classes=C, in_shape=(T, L), fs=360.0, rngs=nnx.Rngs(0), conv_impl=impl)))
        maps[impl] = np.asarray(jax.jit(lambda x, t: ig(fns, x, t, None))(x, t))
    scale = np.abs(maps["xla"]).max()
    assert scale > 0
    for impl in ("auto", "patches"):
        assert np.abs(maps[impl] - maps["xla"]).max() / scale < 1e-5, impl
