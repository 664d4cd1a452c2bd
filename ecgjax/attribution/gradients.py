"""Gradient methods: saliency, gradient x input, integrated gradients.

Shapes: ``x: f32[B, T, L]``, ``target: i32[B]``, output ``f32[B, T, L]`` (signed).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax.attribution import baselines
from ecgjax.attribution.base import AttributionMethod, scan_unroll, target_grad
from ecgjax.attribution.registry import register


@register("saliency")
@dataclasses.dataclass(frozen=True)
class Saliency(AttributionMethod):
    """Signed gradient of the target logit w.r.t. the input, ``d z_target / d x``.

    Fast path: one VJP of the batched logits with cotangent ``one_hot(target)``
    (see :func:`ecgjax.attribution.base.target_grad`).

    References: Simonyan, Vedaldi & Zisserman 2014, "Deep inside convolutional
    networks" (arXiv 1312.6034).
    """

    kind = "gradient"

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return target_grad(fns, x, target)


@register("gradient_x_input")
@dataclasses.dataclass(frozen=True)
class GradientXInput(AttributionMethod):
    """``x * d z_target / d x`` (elementwise).

    For a linear model with zero bias the maps sum to the target logit.
    References: Shrikumar et al. 2016 (arXiv 1605.01713).
    """

    kind = "gradient"
    multiplies_by_input = True

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return x * target_grad(fns, x, target)




@register("integrated_gradients")
@dataclasses.dataclass(frozen=True)
class IntegratedGradients(AttributionMethod):
    """Integrated gradients along the straight path from a baseline ``x0`` to ``x``.

    ``IG(x) = (x - x0) * sum_k w_k * grad z_target(x0 + a_k (x - x0))`` with the
    trapezoid rule on ``steps`` intervals of [0, 1] (``steps + 1`` points), so
    ``sum(IG) ~= z_target(x) - z_target(x0)`` (completeness; exact for a model
    linear in x). Every explained run measures and reports the error of that
    sum (``sanity.completeness_error``) and warns when its median exceeds 5%.

    The baseline is a fact of the model by default (``baseline="model"``:
    ``ModelInfo.ig_baseline``; ``"zeros"`` for models that declare none and for
    hand-made ``Fns`` without info), not more quadrature: on the trained
    corrected LSTM the logit along the path from the all-zeros beat swings by
    several units within tiny fractions of the path (in float64 as in float32:
    the recurrence, not the piecewise-linear readout), so neither thousands of
    uniform steps nor an adaptive rule in float32 resolve it, while from the
    blurred beat the default steps do (docs/results.md, "Integrated gradients'
    completeness").

    Fields:
      steps: number of intervals of the path integral (128: enough for trained
        ReLU networks, whose path integrand is piecewise constant).
      baseline: ``"model"`` (the model's ``ModelInfo.ig_baseline``) or one of
        ``ecgjax.attribution.baselines.BASELINES``: ``"zeros"`` (x0 = 0),
        ``"mean"`` (each beat's per-lead mean over time), ``"blurred"`` (each
        lead Gaussian-blurred, ``blur_sigma`` samples), ``"uniform"`` (noise in
        the beat's range; the method then needs a key) or ``"given"`` (x0 =
        ``baseline_value``). :meth:`for_model` resolves ``"model"``; runs record
        the resolved name.
      baseline_value: for ``"given"``: a nested tuple of floats of shape (T, L)
        (hashable; build it with :meth:`with_baseline` from an array, e.g. the
        training-set mean beat).
      blur_sigma: for ``"blurred"``: the Gaussian's standard deviation in samples.
      chunk_size: path points evaluated together; memory is
        ``chunk_size x B`` beats of activations, not ``steps x B``
        (``lax.scan`` over chunks, as captum's ``internal_batch_size``).
      unroll: unroll that scan; ``None``: on CPU for at most 32 chunks (see ``base.scan_unroll``:
        3.2x faster on XLA:CPU, but unrolled, memory grows with the number of chunks).

    References: Sundararajan, Taly & Yan 2017, "Axiomatic attribution for deep
    networks" (ICML).
    """

    steps: int = 128
    baseline: str = "model"
    baseline_value: tuple | None = None
    blur_sigma: float = 18.0
    chunk_size: int = 8
    unroll: bool | None = None

    kind = "gradient"
    multiplies_by_input = True

    def __post_init__(self):
        if self.baseline != "model" and self.baseline not in baselines.BASELINES:
            raise ValueError(f"baseline must be 'model' or one of {baselines.BASELINES}, got {self.baseline!r}")
        if self.baseline in baselines.NEEDS_KEY:
            object.__setattr__(self, "needs_key", True)  # an instance constant, not a field
        if self.baseline == "given" and self.baseline_value is None:
            raise ValueError("baseline='given' needs baseline_value (use IntegratedGradients.with_baseline(array))")
        if self.steps < 1 or self.chunk_size < 1:
            raise ValueError("steps and chunk_size must be >= 1")

    @classmethod
    def with_baseline(cls, baseline: np.ndarray, **kw) -> "IntegratedGradients":
        """An instance with a given baseline f32[T, L] (stored as a hashable nested tuple)."""
        return cls(baseline="given", baseline_value=baselines.given_value(baseline), **kw)

    def for_model(self, info: Any) -> "IntegratedGradients":
        """This method with ``baseline="model"`` replaced by the model's ``info.ig_baseline``
        (``"zeros"`` when ``info`` is None: a hand-made ``Fns``); other baselines unchanged."""
        if self.baseline != "model":
            return self
        name = "zeros" if info is None else info.ig_baseline
        if name not in baselines.BASELINES or name in baselines.NEEDS_KEY or name == "given":
            raise ValueError(f"{getattr(info, 'name', 'the model')} declares ig_baseline={name!r}; it must be one of "
                             f"{[b for b in baselines.BASELINES if b not in baselines.NEEDS_KEY and b != 'given']}")
        return dataclasses.replace(self, baseline=name)

    def baseline_for(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """x0: f32[B, T, L] for beats x: f32[B, T, L] (``ecgjax.attribution.baselines.baseline``)."""
        if self.baseline == "model":
            raise ValueError("baseline='model' names no baseline until resolved: use method.for_model(model_info)")
        return baselines.baseline(self.baseline, x, value=self.baseline_value, sigma=self.blur_sigma, key=key)

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        x0 = self.for_model(fns.info).baseline_for(x, key)
        n_pts = self.steps + 1
        n_chunks = -(-n_pts // self.chunk_size)
        pad = n_chunks * self.chunk_size - n_pts
        alphas = np.linspace(0.0, 1.0, n_pts)
        weights = np.full(n_pts, 1.0 / self.steps)
        weights[[0, -1]] *= 0.5
        alphas = np.concatenate([alphas, np.zeros(pad)]).reshape(n_chunks, self.chunk_size).astype(np.float32)
        weights = np.concatenate([weights, np.zeros(pad)]).reshape(n_chunks, self.chunk_size).astype(np.float32)
        B = x.shape[0]
        d = x - x0

        def body(acc, aw):
            a, w = aw
            xs = x0[None] + a[:, None, None, None] * d[None]  # [k, B, T, L]
            g = target_grad(fns, xs.reshape((-1,) + x.shape[1:]), jnp.tile(target, self.chunk_size))
            g = g.reshape((self.chunk_size, B) + x.shape[1:])
            return acc + jnp.tensordot(w, g, axes=1), None

        total, _ = jax.lax.scan(body, jnp.zeros_like(x), (jnp.asarray(alphas), jnp.asarray(weights)), unroll=scan_unroll(self.unroll, n_chunks))
        return d * total
