"""Noise wrappers around any gradient method: SmoothGrad and VarGrad (captum's NoiseTunnel).

``SmoothGrad(base=Saliency(), n=16, sigma=0.15)``: mean of ``base`` over ``n``
noisy copies of each beat; ``VarGrad``: their variance. The base may be given
by name (``get("smoothgrad", base="integrated_gradients")``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ecgjax.attribution.base import AttributionMethod, scan_unroll
from ecgjax.attribution.gradients import Saliency
from ecgjax.attribution.registry import get, register

_SIGMA_MODES = ("relative", "absolute")


def _resolve_base(obj) -> None:
    base = obj.base
    if isinstance(base, str):
        base = get(base)
        object.__setattr__(obj, "base", base)
    if not isinstance(base, AttributionMethod) or base.kind != "gradient":
        raise ValueError(f"{type(obj).__name__} wraps a gradient method, got {base!r}")
    if obj.n < 1 or obj.chunk_size < 1:
        raise ValueError("n and chunk_size must be >= 1")
    if obj.sigma_mode not in _SIGMA_MODES:
        raise ValueError(f"sigma_mode must be one of {_SIGMA_MODES}, got {obj.sigma_mode!r}")


def _noise_moments(obj, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and population variance over ``n`` noisy copies: (f32[B,T,L], f32[B,T,L]).

    Noise of sample j for beat i: ``normal(fold_in(key[i], 2j))``; the base method's
    own keys are ``fold_in(key[i], 2j+1)``. ``lax.scan`` over chunks of
    ``chunk_size`` samples bounds memory to ``chunk_size x B`` beats.
    """
    B = x.shape[0]
    if obj.sigma_mode == "relative":
        rng = jnp.max(x, axis=(1, 2)) - jnp.min(x, axis=(1, 2))
        sd = (obj.sigma * rng)[:, None, None]
    else:
        sd = jnp.asarray(obj.sigma, x.dtype)
    k = obj.chunk_size
    n_chunks = -(-obj.n // k)
    js = jnp.arange(n_chunks * k, dtype=jnp.uint32).reshape(n_chunks, k)

    def body(acc, jchunk):
        s1, s2 = acc
        noise = jax.vmap(lambda j: jax.vmap(lambda kk: jax.random.normal(jax.random.fold_in(kk, 2 * j), x.shape[1:], x.dtype))(key))(jchunk)
        bkeys = jax.vmap(lambda j: jax.vmap(lambda kk: jax.random.fold_in(kk, 2 * j + 1))(key))(jchunk)  # [k, B]
        xs = (x[None] + sd * noise).reshape((-1,) + x.shape[1:])
        out = obj.base(fns, xs, jnp.tile(target, k), bkeys.reshape(-1) if obj.base.needs_key else None)
        out = out.reshape((k, B) + x.shape[1:])
        w = (jchunk < obj.n).astype(x.dtype)[:, None, None, None]
        return (s1 + jnp.sum(w * out, 0), s2 + jnp.sum(w * out * out, 0)), None

    (s1, s2), _ = jax.lax.scan(body, (jnp.zeros_like(x), jnp.zeros_like(x)), js, unroll=scan_unroll(obj.unroll))
    mean = s1 / obj.n
    return mean, jnp.maximum(s2 / obj.n - mean * mean, 0.0)


@register("smoothgrad")
@dataclasses.dataclass(frozen=True)
class SmoothGrad(AttributionMethod):
    """Mean of a gradient method over Gaussian-noised copies of the beat.

    Fields:
      base: the wrapped gradient method (instance or registry name).
      n: noise samples.
      sigma: noise standard deviation; with ``sigma_mode="relative"`` (default,
        as the paper) it is a fraction of each beat's (max - min), else absolute.
      chunk_size: noise samples evaluated together (memory bound).
      unroll: unroll the scan over chunks; ``None``: on CPU only (``base.scan_unroll``).

    References: Smilkov et al. 2017, "SmoothGrad" (arXiv 1706.03825).
    """

    base: Any = Saliency()
    n: int = 16
    sigma: float = 0.15
    sigma_mode: str = "relative"
    chunk_size: int = 4
    unroll: bool | None = None

    kind = "gradient"
    needs_key = True

    def __post_init__(self):
        _resolve_base(self)

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None) -> jax.Array:
        return _noise_moments(self, fns, x, target, key)[0]


@register("vargrad")
@dataclasses.dataclass(frozen=True)
class VarGrad(AttributionMethod):
    """Variance of a gradient method over Gaussian-noised copies of the beat (non-negative).

    Same fields as :class:`SmoothGrad`.
    References: Adebayo et al. 2018, "Local explanation methods for deep neural
    networks lack sensitivity to parameter values" (ICLR workshop).
    """

    base: Any = Saliency()
    n: int = 16
    sigma: float = 0.15
    sigma_mode: str = "relative"
    chunk_size: int = 4
    unroll: bool | None = None

    kind = "gradient"
    needs_key = True

    def __post_init__(self):
        _resolve_base(self)

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None) -> jax.Array:
        return _noise_moments(self, fns, x, target, key)[1]
