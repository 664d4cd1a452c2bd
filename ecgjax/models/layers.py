"""Layers shared by the models. ``Conv1d`` is the one place convolutions are computed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

# Keras VarianceScaling() defaults: scale 1, fan_in, truncated normal.
keras_conv_init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def same_padding(length: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow/lax 'SAME' padding: the extra sample goes to the right."""
    out = -(-length // stride)
    total = max((out - 1) * stride + kernel - length, 0)
    return total // 2, total - total // 2


def conv1d(x: jnp.ndarray, kernel: jnp.ndarray, *, stride: int, padding, impl: str = "xla") -> jnp.ndarray:
    """1-D convolution, channel-last.

    Args:
      x: f32[B, T, Cin].
      kernel: f32[K, Cin, Cout].
      stride: S.
      padding: ``"SAME"``, ``"VALID"`` or an explicit ``(left, right)``.
      impl: ``"xla"`` (``lax.conv_general_dilated``) or ``"patches"`` (the
        K shifted, strided views stacked and multiplied by the flattened kernel
        as one matmul: im2col, which XLA:CPU runs far faster for K=16).

    Returns:
      f32[B, T', Cout].
    """
    k = kernel.shape[0]
    if padding == "SAME":
        pad = same_padding(x.shape[1], k, stride)
    elif padding == "VALID":
        pad = (0, 0)
    else:
        pad = tuple(padding)
    if impl == "xla":
        return jax.lax.conv_general_dilated(
            x, kernel, window_strides=(stride,), padding=[pad], dimension_numbers=("NWC", "WIO", "NWC")
        )
    if impl != "patches":
        raise ValueError(f"conv impl must be 'xla' or 'patches', got {impl!r}")
    xp = jnp.pad(x, ((0, 0), pad, (0, 0)))
    t_out = (xp.shape[1] - k) // stride + 1
    span = stride * (t_out - 1) + 1
    cols = jnp.stack([xp[:, i : i + span : stride, :] for i in range(k)], axis=2)  # [B, T', K, Cin]
    b, _, _, cin = cols.shape
    return (cols.reshape(b, t_out, k * cin) @ kernel.reshape(k * cin, -1))


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
        impl: str = "xla",
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
