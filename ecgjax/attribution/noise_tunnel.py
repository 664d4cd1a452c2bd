"""``NoiseTunnel``: any attribution method under Gaussian input noise (captum's ``NoiseTunnel``).

``NoiseTunnel(base=Saliency(), nt_type="smoothgrad", n=16, sigma=0.15)`` runs
``base`` on ``n`` noisy copies of each beat and reduces them:

* ``smoothgrad``: their mean (Smilkov et al. 2017);
* ``smoothgrad_sq``: the mean of their squares (Hooker et al. 2019);
* ``vargrad``: their (population) variance (Adebayo et al. 2018).

``smoothgrad`` and ``vargrad`` are registered presets of the tunnel
(``get("smoothgrad", base="integrated_gradients")``); ``noise_tunnel`` takes
``nt_type``. The base may be any method but a control, given as an instance or
a registry name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from ecgjax.attribution.base import AttributionMethod, scan_unroll
from ecgjax.attribution.gradients import Saliency
from ecgjax.attribution.registry import get, register

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")
SIGMA_MODES = ("relative", "absolute")


@register("noise_tunnel")
@dataclasses.dataclass(frozen=True)
class NoiseTunnel(AttributionMethod):
    """A base method averaged (or its variance taken) over Gaussian-noised copies of each beat.

    Fields:
      base: the wrapped method (instance or registry name; not a control).
      nt_type: ``smoothgrad`` | ``smoothgrad_sq`` | ``vargrad`` (see the module).
      n: noise samples.
      sigma: noise standard deviation; with ``sigma_mode="relative"`` (default,
        as Smilkov et al.) a fraction of each beat's (max - min), else absolute.
      chunk_size: noise samples evaluated together (memory: ``chunk_size x B`` beats).
      unroll: unroll the scan over chunks; ``None``: on CPU for at most 32 chunks (``base.scan_unroll``).

    Keys: noise of sample j for beat i is ``normal(fold_in(key[i], 2j))``; the
    base method's own keys are ``fold_in(key[i], 2j+1)``.
    """

    base: Any = Saliency()
    nt_type: str = "smoothgrad"
    n: int = 16
    sigma: float = 0.15
    sigma_mode: str = "relative"
    chunk_size: int = 4
    unroll: bool | None = None

    needs_key = True

    def __post_init__(self):
        base = get(self.base) if isinstance(self.base, str) else self.base
        if not isinstance(base, AttributionMethod) or base.kind == "control":
            raise ValueError(f"{type(self).__name__} wraps an attribution method other than a control, got {base!r}")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "kind", base.kind)  # instance constants, not fields: the tunnel is what it wraps
        object.__setattr__(self, "uses_target", base.uses_target)
        if self.nt_type not in NT_TYPES:
            raise ValueError(f"nt_type must be one of {NT_TYPES}, got {self.nt_type!r}")
        if self.n < 1 or self.chunk_size < 1:
            raise ValueError("n and chunk_size must be >= 1")
        if self.sigma_mode not in SIGMA_MODES:
            raise ValueError(f"sigma_mode must be one of {SIGMA_MODES}, got {self.sigma_mode!r}")

    def supports(self, info) -> str | None:
        """The base's answer: the tunnel explains what its base explains."""
        return self.base.supports(info)

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None) -> jax.Array:
        """x f32[B, T, L], target i32[B], key key[B] -> f32[B, T, L]."""
        s1, s2 = self._moments(fns, x, target, key)
        mean = s1 / self.n
        if self.nt_type == "smoothgrad":
            return mean
        if self.nt_type == "smoothgrad_sq":
            return s2 / self.n
        return jnp.maximum(s2 / self.n - mean * mean, 0.0)

    def _moments(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Sums of the base's maps and of their squares over the ``n`` noisy copies: (f32[B,T,L], f32[B,T,L])."""
        B = x.shape[0]
        if self.sigma_mode == "relative":
            rng = jnp.max(x, axis=(1, 2)) - jnp.min(x, axis=(1, 2))
            sd = (self.sigma * rng)[:, None, None]
        else:
            sd = jnp.asarray(self.sigma, x.dtype)
        k = self.chunk_size
        n_chunks = -(-self.n // k)
        js = jnp.arange(n_chunks * k, dtype=jnp.uint32).reshape(n_chunks, k)

        def body(acc, jchunk):
            s1, s2 = acc
            noise = jax.vmap(lambda j: jax.vmap(lambda kk: jax.random.normal(jax.random.fold_in(kk, 2 * j), x.shape[1:], x.dtype))(key))(jchunk)
            bkeys = jax.vmap(lambda j: jax.vmap(lambda kk: jax.random.fold_in(kk, 2 * j + 1))(key))(jchunk)  # [k, B]
            xs = (x[None] + sd * noise).reshape((-1,) + x.shape[1:])
            out = self.base(fns, xs, jnp.tile(target, k), bkeys.reshape(-1) if self.base.needs_key else None)
            out = out.reshape((k, B) + x.shape[1:])
            w = (jchunk < self.n).astype(x.dtype)[:, None, None, None]
            return (s1 + jnp.sum(w * out, 0), s2 + jnp.sum(w * out * out, 0)), None

        (s1, s2), _ = jax.lax.scan(body, (jnp.zeros_like(x), jnp.zeros_like(x)), js, unroll=scan_unroll(self.unroll, n_chunks))
        return s1, s2


@register("smoothgrad")
@dataclasses.dataclass(frozen=True)
class SmoothGrad(NoiseTunnel):
    """The tunnel's ``smoothgrad`` preset: the mean of the base over noisy copies.

    References: Smilkov et al. 2017, "SmoothGrad" (arXiv 1706.03825).
    """

    nt_type: str = dataclasses.field(default="smoothgrad", init=False)


@register("vargrad")
@dataclasses.dataclass(frozen=True)
class VarGrad(NoiseTunnel):
    """The tunnel's ``vargrad`` preset: the variance of the base over noisy copies (non-negative).

    References: Adebayo et al. 2018, "Local explanation methods for deep neural
    networks lack sensitivity to parameter values" (ICLR workshop).
    """

    nt_type: str = dataclasses.field(default="vargrad", init=False)
