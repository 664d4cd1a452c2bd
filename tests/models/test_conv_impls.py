"""Every Conv1d implementation computes the same function: values and gradients
(w.r.t. the input and the kernel) of auto / patches / phase / fft against lax.conv
("xla") within 1e-5 relative, on the shapes the models use; the auto rule; and
whole models built with each impl agree (float64, where rounding cannot hide a
wrong index)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import models
import re

from ecgjax.models.layers import CONV_IMPLS, Conv1d, auto_impl, conv1d
from tests.conftest import normal

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
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / (np.max(np.abs(b)) + 1e-30))


# fft (slow to compile) on a stride-1 layer of the kind auto sends to it, a strided one (over its phases), 'VALID' and
# explicit padding by default; on the other shapes with -m slow
FFT_SHAPES = (SHAPES[1], SHAPES[2], SHAPES[6], SHAPES[8])
NO_FFT = tuple(i for i in CONV_IMPLS if i != "fft")
CASES = ([pytest.param(s, CONV_IMPLS if s in FFT_SHAPES else NO_FFT, id=str(s)) for s in SHAPES]
         + [pytest.param(s, ("xla", "fft"), id=f"{s}-fft", marks=pytest.mark.slow) for s in SHAPES if s not in FFT_SHAPES])


@pytest.mark.parametrize("shape,impls", CASES)
def test_values_and_gradients_match_lax_conv(shape, impls):
    """Each impl's value and vector-Jacobian product (w.r.t. the input and the kernel) against lax.conv's, all
    computed by one compiled program per shape."""
    t, cin, cout, k, s, pad = shape
    rng = np.random.default_rng(0)
    x, w = normal(rng, (3, t, cin)), normal(rng, (k, cin, cout), 1 / np.sqrt(k * cin))
    g = normal(rng, jax.eval_shape(lambda x, w: conv1d(x, w, stride=s, padding=pad, impl="xla"), x, w).shape)

    @jax.jit
    def every_impl(x, w, g):
        out = {}
        for impl in impls:
            y, vjp = jax.vjp(lambda x, w: conv1d(x, w, stride=s, padding=pad, impl=impl), x, w)
            out[impl] = (y, *vjp(g))
        return out

    got = every_impl(x, w, g)
    for impl in impls:
        for what, a, b in zip(("value", "d/dx", "d/dw"), got[impl], got["xla"]):
            assert a.shape == b.shape and _rel(a, b) < 1e-5, (impl, what, _rel(a, b))


def test_auto_rule():
    narrow = dict(channels=(32, 64))  # jones2020_cnn's widest: 32 * 64 / 96 = 21 < 32
    assert auto_impl(860, 16, 1, "SAME", backend="cpu", **narrow) == "phase"
    assert auto_impl(860, 16, 4, "SAME", backend="cpu", **narrow) == "phase"
    assert auto_impl(14, 16, 1, "SAME", backend="cpu", **narrow) == "patches"  # 14 outputs < K=16
    assert auto_impl(14, 16, 4, "SAME", backend="cpu", **narrow) == "phase"  # 4 outputs, polyphase kernel 4 taps
    assert auto_impl(10, 16, 4, "SAME", backend="cpu", **narrow) == "patches"  # 3 outputs < 4 taps
    # ribeiro_cnn's stride-1 unit convolutions (64 * 128 / 192 = 42.7 >= 32) by FFT, at any length; not its stem
    # (1 input channel), its strided or 1x1 convolutions, nor short kernels
    for t, cin, cout in ((860, 64, 128), (215, 128, 196), (54, 196, 256), (14, 256, 320)):
        assert auto_impl(t, 16, 1, "SAME", backend="cpu", channels=(cin, cout)) == "fft"
    assert auto_impl(860, 16, 1, "SAME", backend="cpu", channels=(1, 64)) == "phase"
    assert auto_impl(860, 16, 4, "SAME", backend="cpu", channels=(128, 128)) == "phase"
    assert auto_impl(215, 1, 1, "SAME", backend="cpu", channels=(128, 196)) == "phase"
    assert auto_impl(215, 7, 1, "SAME", backend="cpu", channels=(128, 196)) == "phase"
    assert auto_impl(14, 16, 1, "SAME", backend="gpu", channels=(256, 320)) == "xla"
    assert auto_impl(860, 16, 4, "SAME", backend="tpu", **narrow) == "xla"
    assert Conv1d(2, 3, 4, rngs=nnx.Rngs(0)).impl == "auto"  # the default


@pytest.mark.parametrize("n", [1, 14, 29, 69, 230, 875, 1025])
def test_fft_length_is_the_smallest_5_smooth_length(n):
    from ecgjax.models.layers import fft_length

    want = next(m for m in range(n, 4 * n) if _five_smooth(m))
    assert fft_length(n) == want


def _five_smooth(m: int) -> bool:
    for p in (2, 3, 5):
        while m % p == 0:
            m //= p
    return m == 1


def fused_or_noncanonical_convs(hlo: str) -> list[str]:
    """Convolutions of optimized XLA:CPU HLO that do not run as the library convolution: those inside a fusion's
    computation (XLA's generic loop kernel) or with a kernel not in (W, I, O) layout; [] when all are fast."""
    comps = {m.group(1): m.group(2) for m in re.finditer(r"^(?:ENTRY )?%(\S+) .*?\{\n(.*?)^\}", hlo, re.M | re.S)}
    fused = set(re.findall(r"fusion\(.*?calls=%([\w.\-]+)", hlo))
    return [line.strip() for name, body in comps.items() for line in body.splitlines() if " convolution(" in line
            and (name in fused or "dim_labels=b0f_0io->b0f" not in line)]


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's compilation of loop bodies")
@pytest.mark.parametrize("stride", [1, 4])
def test_phase_input_gradient_in_a_rolled_scan_is_a_library_convolution(stride):
    """A chunked method's rolled scan (chunked integrated gradients): the input gradient of ``phase`` inside the
    loop body compiles to plain (W, I, O) convolutions, not a fused generic kernel (20x slower), and equals
    lax.conv's. (jax's own transpose rule, ``impl="xla"``, compiles to a fused convolution there, jax 0.12.)"""
    x = normal(0, (4, 3, 86, 8))  # 4 chunks of 3 beats
    w = normal(1, (16, 8, 12), 1 / np.sqrt(16 * 8))

    def grads(impl):
        g = jax.grad(lambda xi, a: jnp.sum(jnp.tanh(conv1d(xi * a, w, stride=stride, padding="SAME", impl=impl))))
        return jax.jit(lambda x: jax.lax.scan(lambda c, xi: (c, g(xi, 0.5)), None, x, unroll=False)[1])

    assert fused_or_noncanonical_convs(grads("phase").lower(x).compile().as_text()) == []
    assert _rel(grads("phase")(x), grads("xla")(x)) < 1e-5
    assert _rel(grads("auto")(x), grads("xla")(x)) < 1e-5


def test_fft_in_a_rolled_scan_equals_lax_conv():
    """Inside a chunked method's loop body (a rolled scan), ``fft``'s value and input gradient equal lax.conv's, and so do
    ``auto``'s on a layer it sends to ``fft`` (64 -> 128 channels)."""
    x = normal(0, (3, 2, 60, 64))  # 3 chunks of 2 beats
    w = normal(1, (16, 64, 128), 1 / np.sqrt(16 * 64))
    assert auto_impl(60, 16, 1, "SAME", channels=(64, 128), backend="cpu") == "fft"

    def grads(impl):
        g = jax.grad(lambda xi: jnp.sum(jnp.tanh(conv1d(xi, w, stride=1, padding="SAME", impl=impl))))
        return jax.jit(lambda x: jax.lax.scan(lambda c, xi: (c, g(xi)), None, x, unroll=False)[1])

    ref = grads("xla")(x)
    assert _rel(grads("fft")(x), ref) < 1e-5
    assert _rel(grads("auto")(x), ref) < 1e-5


def test_unknown_impl_raises():
    with pytest.raises(ValueError, match="conv impl"):
        conv1d(jnp.ones((1, 8, 1)), jnp.ones((3, 1, 1)), stride=1, padding="SAME", impl="winograd")


# ribeiro_cnn's whole-model check is slow (23 s on 2 cores); its layer shapes are in the per-layer table above.
# By default jones2020_cnn with what CPU users run (auto) against XLA's convolution; every impl with -m slow.
@pytest.mark.parametrize("name,impls", [pytest.param("ribeiro_cnn", CONV_IMPLS, marks=pytest.mark.slow),
                                        pytest.param("jones2020_cnn", CONV_IMPLS, marks=pytest.mark.slow),
                                        ("jones2020_cnn", ("xla", "auto"))])
def test_models_agree_across_impls_float64(name, impls):
    """Whole-model logits and input gradients (the saliency) are the same function for every impl.

    In float32 the saliency of a random-init deep net differs between impls at the 1e-2 level
    (ReLU/LeakyReLU kinks and max-pool ties flip on rounding), so the equality is checked in float64.
    Beats of 64 samples (not 430) keep the four float64 compiles short; the paper's layer shapes are in the
    per-layer table above.
    """
    t_len = 64
    # built (the same float32 weights for every impl) before float64 is on: initialisers run op by op, and under
    # float64 each would compile once more
    built = {impl: models.eval_split(models.build(name, n_classes=8, in_shape=(t_len, 2), fs=360.0, rngs=nnx.Rngs(0),
                                                  conv_impl=impl)) for impl in impls}
    with _x64():
        x = jnp.asarray(np.random.default_rng(1).normal(size=(2, t_len, 2)))
        t = jnp.array([1, 5])
        outs = {}
        for impl in impls:
            gd, st = built[impl]
            st = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, st)

            @jax.jit
            def sal(st, x, t, gd=gd):
                y, vjp = jax.vjp(lambda x: models.pure_fns(gd, st).logit_fn(x), x)
                return y, vjp(jax.nn.one_hot(t, 8, dtype=y.dtype))[0]

            outs[impl] = sal(st, x, t)
        for impl in impls:
            assert _rel(outs[impl][0], outs["xla"][0]) < 1e-10
            assert _rel(outs[impl][1], outs["xla"][1]) < 1e-10
