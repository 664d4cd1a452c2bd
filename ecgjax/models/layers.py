"""Layers shared by the models. ``Conv1d`` is the one place convolutions are computed."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# Keras VarianceScaling() defaults: scale 1, fan_in, truncated normal.
keras_conv_init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow/lax 'SAME' padding: the extra sample goes to the right."""
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


CONV_IMPLS = ("auto", "xla", "phase", "patches", "fft")


def _resolve_padding(length: int, k: int, stride: int, padding) -> tuple[int, int]:
    if isinstance(padding, str):
        if padding.upper() == "SAME":
            return same_padding(length, k, stride)
        if padding.upper() == "VALID":
            return (0, 0)
        raise ValueError(f"padding must be 'SAME', 'VALID' or (left, right), got {padding!r}")
    return tuple(int(p) for p in padding)


_DN = ("NWC", "WIO", "NWC")


def _conv_xla(xp: jnp.ndarray, kernel: jnp.ndarray, stride: int) -> jnp.ndarray:
    return jax.lax.conv_general_dilated(xp, kernel, window_strides=(stride,), padding=[(0, 0)], dimension_numbers=_DN)


@jax.custom_vjp
def _conv_s1(xp: jnp.ndarray, kernel: jnp.ndarray) -> jnp.ndarray:
    """Stride-1 'VALID' convolution f32[B, Tp, Cin] x f32[K, Cin, Cout] -> f32[B, Tp-K+1, Cout] (``lax.conv``).

    Only the input gradient's form differs from ``lax.conv``'s: it is written out as
    a stride-1 convolution of the cotangent (padded K-1 each side) with the kernel
    flipped in time and transposed to f32[K, Cout, Cin], so it has the forward's
    canonical (W, I, O) kernel layout. JAX's own transpose rule passes the kernel in
    (W, O, I) layout instead; outside loops XLA:CPU canonicalises that by copying the
    kernel, but inside a while loop body (a rolled ``lax.scan``: chunked integrated
    gradients) it leaves the convolution in a loop fusion, compiled to a generic
    kernel 20x slower than the library convolution (``benchmarks/conv_layers.py --scan``).
    The kernel gradient is ``lax.conv``'s (its linear transpose).
    """
    return _conv_xla(xp, kernel, 1)


def _conv_s1_fwd(xp, kernel):
    return _conv_xla(xp, kernel, 1), (xp, kernel)


def _conv_s1_bwd(res, g):
    xp, kernel = res
    k = kernel.shape[0]
    flipped = jnp.flip(kernel, 0).transpose(0, 2, 1)  # f32[K, Cout, Cin]
    dx = jax.lax.conv_general_dilated(g, flipped, window_strides=(1,), padding=[(k - 1, k - 1)], dimension_numbers=_DN)
    (dk,) = jax.linear_transpose(lambda w: _conv_xla(xp, w, 1), kernel)(g)
    return dx, dk


_conv_s1.defvjp(_conv_s1_fwd, _conv_s1_bwd)


def _conv_patches(xp: jnp.ndarray, kernel: jnp.ndarray, stride: int) -> jnp.ndarray:
    """im2col on an already padded input: the K shifted strided views side by side, one matmul.

    The views are one gather with a static index (its gradient one scatter-add), not K slices and a
    concatenate: the same values in a smaller program, which compiles faster.
    """
    k, cin, cout = kernel.shape
    t_out = (xp.shape[1] - k) // stride + 1
    if k == 1:
        cols = xp[:, : stride * (t_out - 1) + 1 : stride, :]
    else:
        idx = (np.arange(t_out)[:, None] * stride + np.arange(k)[None, :]).reshape(-1)  # [T' * K]
        cols = jnp.take(xp, idx, axis=1).reshape(xp.shape[0], t_out, k * cin)  # [B, T', K*Cin]
    return cols @ kernel.reshape(k * cin, cout)


def fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: a length whose FFT is fast."""
    best = 1 << (n - 1).bit_length()
    p2 = 1
    while p2 < best:
        p3 = p2
        while p3 < best:
            p5 = p3
            while p5 < best:
                if p5 >= n:
                    best = p5
                p5 *= 5
            p3 *= 3
        p2 *= 2
    return best


def _conv_fft(x: jnp.ndarray, kernel: jnp.ndarray, pad: tuple[int, int]) -> jnp.ndarray:
    """Stride-1 convolution by FFT: f32[B, T, Cin] x f32[K, Cin, Cout] with ``pad`` = (left, right) zeros
    -> f32[B, T + left + right - K + 1, Cout] (``lax.conv``).

    With Tp = T + left + right and n >= Tp, output t is entry t + K - 1 of the length-n circular convolution of
    the padded input with the kernel flipped in time, which does not wrap for t <= Tp - K; so the input is
    padded once, straight to n. In frequency each of the n/2 + 1 bins is a complex product [B, Cin] x [Cin, Cout],
    computed as one real batched matmul with the real and imaginary parts stacked ([B, 2Cin] x
    [[Re, Im], [-Im, Re]]): about 4 multiply-adds per (Cin, Cout) pair and output sample against the direct
    convolution's K. Gradients are jax's (the transposes of the same operations: FFTs and a batched matmul again).
    """
    k, _, cout = kernel.shape
    tp = x.shape[1] + pad[0] + pad[1]
    n = fft_length(tp)
    xf = jnp.fft.rfft(jnp.pad(x, ((0, 0), (pad[0], n - x.shape[1] - pad[0]), (0, 0))), axis=1).transpose(1, 0, 2)  # c[F, B, Cin]
    wf = jnp.fft.rfft(jnp.flip(kernel, 0), n, axis=0)  # c[F, Cin, Cout]
    xs = jnp.concatenate([xf.real, xf.imag], -1)  # [F, B, 2Cin]
    ws = jnp.concatenate([jnp.concatenate([wf.real, wf.imag], -1), jnp.concatenate([-wf.imag, wf.real], -1)], 1)  # [F, 2Cin, 2Cout]
    ys = jax.lax.dot_general(xs, ws, (((2,), (1,)), ((0,), (0,))))  # [F, B, 2Cout]
    yf = jax.lax.complex(ys[..., :cout], ys[..., cout:]).transpose(1, 0, 2)  # c[B, F, Cout]
    return jnp.fft.irfft(yf, n, axis=1)[:, k - 1 : tp].astype(x.dtype)


def _polyphase(xp: jnp.ndarray, kernel: jnp.ndarray, stride: int):
    """A stride-S convolution as a stride-1 one over S phases.

    ``xp`` f32[B, Tp, C] (padded) becomes f32[B, T'+K'-1, S*C] (row u holds
    samples S*u .. S*u+S-1) and the kernel f32[K, C, O] becomes f32[K', S*C, O]
    with K' = ceil(K/S) (zero taps appended). Same products, no strided access,
    and the input gradient is an ordinary stride-1 convolution (XLA:CPU's
    gradient of a strided convolution, an lhs-dilated one, is slow).
    """
    k, c, o = kernel.shape
    t_out = (xp.shape[1] - k) // stride + 1
    kp = -(-k // stride)
    need = (t_out + kp - 1) * stride
    if xp.shape[1] >= need:
        xp = xp[:, :need]
    else:
        xp = jnp.pad(xp, ((0, 0), (0, need - xp.shape[1]), (0, 0)))
    xr = xp.reshape(xp.shape[0], t_out + kp - 1, stride * c)
    kr = jnp.pad(kernel, ((0, kp * stride - k), (0, 0), (0, 0))).reshape(kp, stride * c, o)
    return xr, kr


# "fft" for a stride-1 convolution with a kernel of at least FFT_MIN_KERNEL taps and
# Cin * Cout / (Cin + Cout) >= FFT_MIN_CHANNELS (the multiply-adds saved per sample, against the FFTs' cost,
# which grows with Cin + Cout): benchmarks/conv_layers.py, docs/performance.md.
FFT_MIN_KERNEL = 8
FFT_MIN_CHANNELS = 32


def auto_impl(length: int, kernel_size: int, stride: int, padding, *, channels: tuple[int, int], backend: str | None = None) -> str:
    """The implementation ``impl="auto"`` picks for one convolution of ``channels`` = (Cin, Cout).

    Rule (measured per layer by ``benchmarks/conv_layers.py`` and on whole models by
    ``benchmarks/cpu_vs_peers.py``, see docs/performance.md):

    * not CPU (GPU, TPU): ``"xla"``: cuDNN / the TPU compiler handle 1-D
      convolutions directly.
    * CPU, stride 1, wide layers (K >= ``FFT_MIN_KERNEL``, Cin Cout / (Cin + Cout) >=
      ``FFT_MIN_CHANNELS``: ribeiro_cnn's residual units): ``"fft"``, about 4 multiply-adds per channel pair
      and sample instead of K.
    * CPU otherwise: ``"patches"`` when the output is shorter than the (polyphase)
      kernel, where XLA:CPU's convolution falls off a cliff (a 14-sample,
      kernel-16 'SAME' convolution runs ~40x slower than its matmul), and
      ``"phase"`` otherwise (XLA's convolution, which reaches matmul speed
      for long sequences, with strided convolutions recast as stride-1 ones
      so that their input gradient is fast too, and that input gradient written
      in the kernel layout XLA:CPU runs fast inside loop bodies as well: ``_conv_s1``).

    The choice depends only on static shapes and the backend, so it is made at
    trace time and costs nothing at run time.
    """
    backend = backend or jax.default_backend()
    if backend != "cpu":
        return "xla"
    cin, cout = channels
    if stride == 1 and kernel_size >= FFT_MIN_KERNEL and cin * cout >= FFT_MIN_CHANNELS * (cin + cout):
        return "fft"
    left, right = _resolve_padding(length, kernel_size, stride, padding)
    t_out = (length + left + right - kernel_size) // stride + 1
    k_eff = -(-kernel_size // stride)
    return "patches" if t_out < k_eff else "phase"


def conv1d(x: jnp.ndarray, kernel: jnp.ndarray, *, stride: int, padding, impl: str = "auto") -> jnp.ndarray:
    """1-D convolution, channel-last (cross-correlation, as ``lax.conv``).

    Args:
      x: f32[B, T, Cin].
      kernel: f32[K, Cin, Cout].
      stride: S.
      padding: ``"SAME"`` (TF convention: the extra sample goes right),
        ``"VALID"`` or an explicit ``(left, right)``.
      impl: one of ``CONV_IMPLS``; all compute the same function (equal to
        ``lax.conv`` within float32 rounding) and differ only in speed:

        * ``"xla"``: ``lax.conv_general_dilated`` as is.
        * ``"phase"``: stride-S convolutions rewritten as stride-1 ones over S
          phases (``_polyphase``), then ``lax.conv`` with the input gradient
          written out in the forward's kernel layout (``_conv_s1``).
        * ``"patches"``: im2col: the K shifted, strided views side by side
          (f32[B, T', K*Cin]) times the flattened kernel, one matmul.
        * ``"fft"``: by FFT (``_conv_fft``), strided ones over their phases.
        * ``"auto"`` (default): ``auto_impl`` per call, from the static shapes,
          ``jax.default_backend()``.

    Returns:
      f32[B, T', Cout] with T' = (T + left + right - K) // S + 1.
    """
    k = kernel.shape[0]
    pad = _resolve_padding(x.shape[1], k, stride, padding)
    if impl == "auto":
        impl = auto_impl(x.shape[1], k, stride, pad, channels=kernel.shape[1:])
    if impl == "xla":
        return jax.lax.conv_general_dilated(
            x, kernel, window_strides=(stride,), padding=[pad], dimension_numbers=("NWC", "WIO", "NWC")
        )
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv impl must be one of {CONV_IMPLS}, got {impl!r}")
    if impl == "fft" and stride == 1:
        return _conv_fft(x, kernel, pad)  # pads once, to the FFT's length
    xp = jnp.pad(x, ((0, 0), pad, (0, 0))) if pad != (0, 0) else x
    if impl == "phase":
        return _conv_s1(xp, kernel) if stride == 1 else _conv_s1(*_polyphase(xp, kernel, stride))
    if impl == "fft":
        return _conv_fft(*_polyphase(xp, kernel, stride), (0, 0))
    return _conv_patches(xp, kernel, stride)


def max_pool_same(x: jnp.ndarray, factor: int) -> jnp.ndarray:
    """Max-pool by ``factor`` with TF 'SAME' padding. x: f32[B, T, C] -> f32[B, ceil(T/factor), C].

    The windows are a reshape of the input padded with -inf; the gradient goes to the first maximum of each
    window (TF's MaxPoolGrad), through the index saved by the forward pass (``_max_pool_fwd``), so it never
    compares recomputed values (a plain ``max``'s gradient divides by the count of entries equal to the
    maximum, which XLA:CPU can compute as 0 when it recomputes the two sides in separate fusions). Not
    ``lax.reduce_window``: its gradient lowers on CPU to a reduce over (value, index) pairs with an index array
    per dimension of the input (docs/performance.md, "What was tried"). Values and gradients
    are flax's, but XLA fuses the program differently, so a training run's float32 rounding changes (ribeiro_cnn
    uses it; rr_net keeps ``nnx.max_pool`` on its small feature maps, so its trained runs reproduce bit for bit).
    """
    left, right = same_padding(x.shape[1], factor, factor)
    return _max_pool(x, factor, left, right)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, factor, left, right):
    return _windows(x, factor, left, right).max(axis=2)


def _windows(x, factor, left, right):
    xp = jnp.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=-jnp.inf)
    return xp.reshape(x.shape[0], -1, factor, x.shape[2])  # [B, M, factor, C]


def _max_pool_fwd(x, factor, left, right):
    w = _windows(x, factor, left, right)
    return w.max(axis=2), jnp.argmax(w, axis=2)  # residual: i32[B, M, C], each window's first maximum


def _max_pool_bwd(factor, left, right, idx, g):
    onehot = jnp.arange(factor)[None, None, :, None] == idx[:, :, None, :]  # [B, M, factor, C]
    gx = jnp.where(onehot, g[:, :, None, :], jnp.zeros((), g.dtype)).reshape(g.shape[0], -1, g.shape[2])
    return (gx[:, left : gx.shape[1] - right],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def _rotl(v: jnp.ndarray, r: int) -> jnp.ndarray:
    return jax.lax.shift_left(v, np.uint32(r)) | jax.lax.shift_right_logical(v, np.uint32(32 - r))


def _threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash (20 rounds), as jax computes it for a ``threefry2x32`` key: u32 words -> two u32 words.

    Written with jnp operations so that XLA computes all rounds in one fused pass; jax's own CPU lowering runs the
    five groups of rounds as a rolled loop, a pass over memory per group (docs/performance.md, "What was tried").
    """
    rot = ((13, 15, 26, 6), (17, 29, 16, 24))
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    y0, y1 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in rot[i % 2]:
            y0 = y0 + y1
            y1 = y0 ^ _rotl(y1, r)
        y0, y1 = y0 + ks[(i + 1) % 3], y1 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return y0, y1


def fused_bernoulli_applies(key: jax.Array, shape) -> bool:
    """Whether ``bernoulli_mask`` draws ``jax.random.bernoulli``'s samples: a threefry key, jax's partitionable
    threefry (its default), float32 probabilities (x64 off) and fewer than 2**32 samples; on CPU only (other
    backends lower jax's own threefry well)."""
    return (jax.default_backend() == "cpu" and str(jax.random.key_impl(key)) == "threefry2x32"
            and bool(getattr(jax.config, "jax_threefry_partitionable", False)) and not jax.config.jax_enable_x64
            and int(np.prod(shape)) < 2**32)


def bernoulli_mask(key: jax.Array, p: float, shape) -> jnp.ndarray:
    """bool[shape], True with probability ``p``: the same samples as ``jax.random.bernoulli(key, p, shape)`` where
    ``fused_bernoulli_applies`` (tested bit for bit), in one fused pass.

    jax draws u32 bits = x1 ^ x2 of threefry(key, (0, flat index)), takes a float32 uniform from their top 23
    bits (``jax_legacy_random_uniform``, its default; 24 otherwise) and compares it with float32 ``p``; the
    same comparison on the integers is ``top bits < ceil(p * 2**23)``.
    """
    k = jax.random.key_data(key)
    lo = jax.lax.iota(np.uint32, int(np.prod(shape))).reshape(shape)
    b0, b1 = _threefry2x32(k[0], k[1], jnp.zeros(shape, np.uint32), lo)
    n_bits = 23 if getattr(jax.config, "jax_legacy_random_uniform", True) else 24
    threshold = np.uint32(math.ceil(float(np.float32(p)) * 2.0**n_bits))
    return jax.lax.shift_right_logical(b0 ^ b1, np.uint32(32 - n_bits)) < threshold


class Dropout(nnx.Dropout):
    """``nnx.Dropout`` (the same masks, states and views), its mask drawn by ``bernoulli_mask`` where that gives
    jax's samples; anything else (a key passed in, broadcast dimensions, another key type) is ``nnx.Dropout``'s."""

    def __call__(self, inputs, *, deterministic: bool | None = None, rngs=None):
        det = self.deterministic if deterministic is None else deterministic
        if det is None or det or self.rate in (0.0, 1.0) or rngs is not None or self.rngs is None or self.broadcast_dims:
            return super().__call__(inputs, deterministic=deterministic, rngs=rngs)
        key = self.rngs()
        if not fused_bernoulli_applies(key, inputs.shape):
            return super().__call__(inputs, deterministic=deterministic, rngs=key)
        keep_prob = 1.0 - self.rate
        # drawn once, in its own fusion: without the barrier XLA fuses the hash into every consumer of the mask
        mask = jax.lax.optimization_barrier(bernoulli_mask(key, keep_prob, inputs.shape))
        return jax.lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))


class Conv1d(nnx.Module):
    """Channel-last 1-D convolution with a kernel f32[K, Cin, Cout] (as ``nnx.Conv``)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: int,
        *,
        stride: int = 1,
        padding="SAME",
        use_bias: bool = True,
        kernel_init=keras_conv_init,
        impl: str = "auto",
        rngs: nnx.Rngs,
    ):
        self.kernel = nnx.Param(kernel_init(rngs.params(), (kernel_size, in_features, out_features)))
        self.bias = nnx.Param(jnp.zeros((out_features,))) if use_bias else None
        self.stride = stride
        self.padding = padding
        self.impl = impl

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: f32[B, T, Cin] -> f32[B, T', Cout]."""
        y = conv1d(x, self.kernel[...], stride=self.stride, padding=self.padding, impl=self.impl)
        return y + self.bias[...] if self.bias is not None else y
