"""Every Conv1d implementation computes the same function: values and gradients
(w.r.t. the input and the kernel) of auto / patches / phase against lax.conv
("xla") within 1e-5 relative, on the shapes the models use; the auto rule; and
whole models built with each impl agree (float64, where rounding cannot hide a
wrong index)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import models
from ecgjax.models.layers import CONV_IMPLS, Conv1d, auto_impl, conv1d, in_loop_body

# (length, Cin, Cout, K, stride, padding): the ribeiro and jones layers, small channel counts.
SHAPES = [
    (86, 1, 8, 16, 1, "SAME"),
    (86, 8, 12, 16, 1, "SAME"),
    (86, 12, 12, 16, 4, "SAME"),
    (22, 12, 16, 16, 4, "SAME"),
    (14, 16, 20, 16, 1, "SAME"),  # output shorter than the kernel: auto -> patches on CPU
    (14, 20, 20, 16, 4, "SAME"),
    (60, 4, 8, 16, 1, "VALID"),
    (54, 8, 8, 1, 1, "SAME"),  # 1x1 skip conv
    (30, 3, 5, 5, 3, (2, 1)),  # explicit padding, stride not dividing K
]


def _x64():
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64  # older jax

    return enable_x64()


def _rel(a, b):
    return float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(b)) + 1e-30))


@pytest.mark.parametrize("impl", [i for i in CONV_IMPLS if i != "xla"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_values_and_gradients_match_lax_conv(impl, shape):
    t, cin, cout, k, s, pad = shape
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, t, cin))
    w = jax.random.normal(kw, (k, cin, cout)) / np.sqrt(k * cin)

    def f(impl):
        return lambda x, w: conv1d(x, w, stride=s, padding=pad, impl=impl)

    ref, vjp_ref = jax.vjp(f("xla"), x, w)
    got, vjp_got = jax.vjp(jax.jit(f(impl)), x, w)
    assert got.shape == ref.shape
    assert _rel(got, ref) < 1e-5
    g = jax.random.normal(kg, ref.shape)
    for a, b in zip(vjp_got(g), vjp_ref(g)):
        assert _rel(a, b) < 1e-5


def test_auto_rule():
    assert auto_impl(860, 16, 1, "SAME", backend="cpu") == "phase"
    assert auto_impl(860, 16, 4, "SAME", backend="cpu") == "phase"
    assert auto_impl(14, 16, 1, "SAME", backend="cpu") == "patches"  # 14 outputs < K=16
    assert auto_impl(14, 16, 4, "SAME", backend="cpu") == "phase"  # 4 outputs, polyphase kernel 4 taps
    assert auto_impl(10, 16, 4, "SAME", backend="cpu") == "patches"  # 3 outputs < 4 taps
    assert auto_impl(14, 16, 1, "SAME", backend="gpu") == "xla"
    assert auto_impl(860, 16, 4, "SAME", backend="tpu") == "xla"
    assert Conv1d(2, 3, 4, rngs=nnx.Rngs(0)).impl == "auto"  # the default
    assert auto_impl(860, 16, 1, "SAME", backend="cpu", in_loop=True) == "patches"  # XLA:CPU's loop-body conv is slow
    assert auto_impl(860, 16, 4, "SAME", backend="gpu", in_loop=True) == "xla"


def test_in_loop_body_reads_the_trace():
    seen = {}

    def probe(tag, x):
        seen[tag] = in_loop_body()
        return x

    x = jnp.ones((2, 3))
    probe("eager", x)
    jax.jit(lambda x: probe("jit", x))(x)
    jax.jit(jax.grad(lambda x: probe("jit grad", x).sum()))(x)
    jax.jit(jax.vmap(lambda r: probe("jit vmap", r)))(x)
    jax.jit(lambda x: jax.checkpoint(lambda x: probe("remat", x))(x))(x)
    jax.jit(lambda x: jax.lax.scan(lambda c, r: (c, probe("scan", r)), None, x)[1])(x)
    jax.jit(jax.grad(lambda x: jax.lax.scan(lambda c, r: (c, probe("grad of scan", r)), None, x)[1].sum()))(x)
    jax.jit(lambda x: jax.lax.map(lambda r: jax.grad(lambda r: probe("grad in lax.map", r).sum())(r), x))(x)
    jax.jit(lambda x: jax.lax.fori_loop(0, 2, lambda i, v: probe("fori_loop", v), x))(x)
    assert seen == {"eager": False, "jit": False, "jit grad": False, "jit vmap": False, "remat": False,
                    "scan": True, "grad of scan": True, "grad in lax.map": True, "fori_loop": True}


def _primitives(jaxpr) -> set:
    """Names of every primitive in a closed jaxpr, sub-jaxprs (scan bodies) included."""
    out = set()
    for eqn in jaxpr.eqns:
        out.add(eqn.primitive.name)
        for v in eqn.params.values():
            for sub in v if isinstance(v, (tuple, list)) else (v,):
                if hasattr(sub, "jaxpr"):
                    out |= _primitives(sub.jaxpr)
    return out


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the CPU rule")
def test_auto_in_a_scan_uses_patches_and_equals_lax_conv():
    x = jax.random.normal(jax.random.key(0), (4, 3, 86, 8))  # 4 chunks of 3 beats
    w = jax.random.normal(jax.random.key(1), (16, 8, 12)) / np.sqrt(16 * 8)

    def in_scan(impl):
        return lambda x: jax.lax.scan(lambda c, xi: (c, conv1d(xi, w, stride=1, padding="SAME", impl=impl)), None, x)[1]

    assert "conv_general_dilated" in _primitives(jax.make_jaxpr(lambda x: conv1d(x[0], w, stride=1, padding="SAME"))(x).jaxpr)
    assert "conv_general_dilated" not in _primitives(jax.make_jaxpr(in_scan("auto"))(x).jaxpr)
    ref, vjp_ref = jax.vjp(in_scan("xla"), x)
    got, vjp_got = jax.vjp(jax.jit(in_scan("auto")), x)
    assert _rel(got, ref) < 1e-5
    g = jax.random.normal(jax.random.key(2), ref.shape)
    assert _rel(vjp_got(g)[0], vjp_ref(g)[0]) < 1e-5


def test_unknown_impl_raises():
    with pytest.raises(ValueError, match="conv impl"):
        conv1d(jnp.ones((1, 8, 1)), jnp.ones((3, 1, 1)), stride=1, padding="SAME", impl="fft")


# ribeiro_cnn's whole-model check is slow (23 s on 2 cores); its layer shapes are in the per-layer table above
@pytest.mark.parametrize("name", [pytest.param("ribeiro_cnn", marks=pytest.mark.slow), "jones2020_cnn"])
def test_models_agree_across_impls_float64(name):
    """Whole-model logits and input gradients (the saliency) are the same function for every impl.

    In float32 the saliency of a random-init deep net differs between impls at the 1e-2 level
    (ReLU/LeakyReLU kinks and max-pool ties flip on rounding), so the equality is checked in float64.
    """
    with _x64():
        x = jax.random.normal(jax.random.key(1), (2, 430, 2), dtype=jnp.float64)
        t = jnp.array([1, 5])
        outs = {}
        for impl in CONV_IMPLS:
            m = models.build(name, n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0), conv_impl=impl)
            gd, st = models.eval_split(m)
            st = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, st)

            @jax.jit
            def sal(st, x, t, gd=gd):
                y, vjp = jax.vjp(lambda x: models.pure_fns(gd, st).logit_fn(x), x)
                return y, vjp(jax.nn.one_hot(t, 8, dtype=y.dtype))[0]

            outs[impl] = sal(st, x, t)
        for impl in CONV_IMPLS:
            assert _rel(outs[impl][0], outs["xla"][0]) < 1e-10
            assert _rel(outs[impl][1], outs["xla"][1]) < 1e-10
