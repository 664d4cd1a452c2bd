"""Rule-based methods: guided backprop, DeepLIFT (rescale) and LRP (epsilon, z+, alpha-beta).

Each is a :class:`~ecgjax.models.base.Hooks` subclass that changes how gradients
pass through the model's nonlinearities (``act``) and linear layers
(``linear``: Conv1d, Linear, eval-mode BatchNorm) while keeping every forward
value, plus a method that takes one VJP of the target logit through
``fns.with_hooks(...)``. No model is touched; jittable and batched like the
gradient methods (rows stay independent).

Shapes: ``x: f32[B, T, L]``, ``target: i32[B]``, output ``f32[B, T, L]`` (signed).

Models whose nonlinearities do not all pass through ``act`` (an LSTM's gates:
``ModelInfo.gated``) are refused by DeepLIFT and LRP, whose rules would
silently not apply there. Max-pooling (ribeiro_cnn's skip path) passes
gradients to the maximum (winner takes all) in all three, so DeepLIFT's and
LRP's conservation is exact only for networks of linear layers and
elementwise nonlinearities.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from ecgjax.attribution import baselines
from ecgjax.attribution.base import NO_INFO, AttributionMethod, target_grad
from ecgjax.attribution.registry import register
from ecgjax.errors import ConfigError
from ecgjax.models.base import Hooks, affine_parts, layer_kind

sg = jax.lax.stop_gradient


def _with_grad(value: jax.Array, surrogate: jax.Array) -> jax.Array:
    """``value`` in the forward pass, the gradient of ``surrogate`` in the backward pass."""
    return sg(value) + (surrogate - sg(surrogate))


def _refuse_gated(name: str, info) -> str | None:
    if info is None:
        return NO_INFO
    if info.gated:
        return f"{name}'s rules need every nonlinearity to pass the activation hook, but {info.gated}"
    return None


def _check(method: AttributionMethod, fns: Any) -> None:
    info = getattr(fns, "info", None)
    if (why := method.supports(info)) is not None:
        raise ConfigError(f"{method.name} cannot explain {getattr(info, 'name', 'this model')}: {why}")


# -- guided backprop -------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _guided(fn, z):
    return fn(z)


def _guided_fwd(fn, z):
    return fn(z), z


def _guided_bwd(fn, z, g):
    _, vjp = jax.vjp(fn, z)
    return vjp(jnp.maximum(g, 0))


_guided.defvjp(_guided_fwd, _guided_bwd)


class _GuidedHooks(Hooks):
    def act(self, fn, z):
        return _guided(fn, z)


@register("guided_backprop")
@dataclasses.dataclass(frozen=True)
class GuidedBackprop(AttributionMethod):
    """The gradient of the target logit with only positive gradients passed back through each nonlinearity.

    At every hooked nonlinearity ``y = f(z)`` the backward pass is
    ``g_z = f'(z) * max(g_y, 0)`` (ReLU: the gradient where ``z > 0`` *and*
    ``g_y > 0``; LeakyReLU: the slope times the positive part). Linear layers
    pass gradients unchanged. On jones2020_lstm only the head's ReLU is guided
    (its LSTM gates pass ordinary gradients), as captum's GuidedBackprop does.

    References: Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving
    for simplicity: the all convolutional net" (ICLR workshop).
    """

    kind = "rule"

    def supports(self, info) -> str | None:
        return NO_INFO if info is None else None

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        _check(self, fns)
        return target_grad(fns.with_hooks(_GuidedHooks()), x, target)


# -- DeepLIFT (rescale) ----------------------------------------------------------------

DETERMINISTIC = tuple(b for b in baselines.BASELINES if b not in baselines.NEEDS_KEY)


class _RescaleHooks(Hooks):
    """The forward pass runs on ``[x; x0]`` (2B rows); each nonlinearity's gradient for the x rows is the
    rescale multiplier ``(f(z) - f(z0)) / (z - z0)`` (``f'(z)`` where ``|z - z0| <= tol``)."""

    def __init__(self, tol: float):
        self.tol = tol

    def act(self, fn, z):
        b = z.shape[0] // 2
        y = fn(z)
        zx, z0, yx, y0 = z[:b], sg(z[b:]), y[:b], sg(y[b:])
        dz = zx - z0
        far = jnp.abs(dz) > self.tol
        slope = jax.jvp(fn, (zx,), (jnp.ones_like(zx),))[1]
        m = sg(jnp.where(far, (yx - y0) / jnp.where(far, dz, 1.0), slope))
        return jnp.concatenate([_with_grad(yx, m * zx), y0])


@register("deeplift")
@dataclasses.dataclass(frozen=True)
class DeepLift(AttributionMethod):
    """DeepLIFT with the rescale rule: ``(x - x0) * m``, ``m`` the chain of multipliers from x to the target logit.

    Linear layers (Conv1d, Linear, eval-mode BatchNorm) pass multipliers as
    gradients; each nonlinearity ``y = f(z)`` uses ``(f(z) - f(z0)) / (z - z0)``
    with ``z0`` its input when the model reads the baseline ``x0`` (one
    forward pass over ``[x; x0]``). Summation to delta:
    ``sum(map) = z_target(x) - z_target(x0)``, exact for networks of linear
    layers and elementwise nonlinearities; on a linear model the map is
    ``grad * (x - x0)``. Refuses models with gates the hooks do not see (the LSTM).

    Fields:
      baseline: one of ``DETERMINISTIC`` (``ecgjax.attribution.baselines``):
        ``"zeros"``, ``"mean"`` (each beat's per-lead mean), ``"blurred"`` (a
        Gaussian of ``blur_sigma`` samples) or ``"given"`` (``baseline_value``,
        f32[T, L] as a nested tuple; build it with :meth:`with_baseline`).
      baseline_value: for ``"given"``.
      blur_sigma: for ``"blurred"``, in samples.
      tol: below this ``|z - z0|`` the multiplier is the gradient ``f'(z)``.

    References: Shrikumar, Greenside & Kundaje 2017, "Learning important
    features through propagating activation differences" (ICML); Ancona et
    al. 2018 (DeepLIFT as a modified gradient).
    """

    baseline: str = "zeros"
    baseline_value: tuple | None = None
    blur_sigma: float = 18.0
    tol: float = 1e-6

    kind = "rule"
    multiplies_by_input = True

    def __post_init__(self):
        if self.baseline not in DETERMINISTIC:
            raise ValueError(f"deeplift's baseline must be one of {DETERMINISTIC}, got {self.baseline!r}")
        if self.baseline == "given" and self.baseline_value is None:
            raise ValueError("baseline='given' needs baseline_value (use DeepLift.with_baseline(array))")

    @classmethod
    def with_baseline(cls, baseline: np.ndarray, **kw) -> "DeepLift":
        """An instance with a given baseline f32[T, L] (stored as a hashable nested tuple)."""
        return cls(baseline="given", baseline_value=baselines.given_value(baseline), **kw)

    def baseline_for(self, x: jax.Array) -> jax.Array:
        """x0: f32[B, T, L] for beats x: f32[B, T, L] (``ecgjax.attribution.baselines.baseline``)."""
        return baselines.baseline(self.baseline, x, value=self.baseline_value, sigma=self.blur_sigma)

    def supports(self, info) -> str | None:
        return _refuse_gated("DeepLIFT", info)

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        _check(self, fns)
        x0 = sg(self.baseline_for(x))
        hooked = fns.with_hooks(_RescaleHooks(self.tol))
        b = x.shape[0]
        logits, vjp = jax.vjp(lambda xx: hooked.logit_fn(jnp.concatenate([xx, x0]))[:b], x)
        (g,) = vjp(jax.nn.one_hot(target, logits.shape[-1], dtype=logits.dtype))
        return (x - x0) * g


# -- LRP ---------------------------------------------------------------------------------

LRP_RULES = ("epsilon", "zplus", "alpha_beta")


def _ratio(num, den):
    """``num / den`` as a constant of the backward pass, 0 where ``den == 0`` (no relevance to share)."""
    ok = den != 0
    return sg(jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0))


class _LRPHooks(Hooks):
    """Relevance as a modified gradient: at every layer ``R = input * gradient`` (Ancona et al. 2018)."""

    def __init__(self, method: "LRP"):
        self.m = method

    def act(self, fn, z):
        # relevance passes a nonlinearity unchanged: gradient f(z) / z (= f'(z) for ReLU and LeakyReLU)
        y = fn(z)
        nz = z != 0
        slope0 = jax.jvp(fn, (jnp.zeros_like(z),), (jnp.ones_like(z),))[1]
        ratio = sg(jnp.where(nz, y / jnp.where(nz, z, 1.0), slope0))
        return _with_grad(y, ratio * z)

    def linear(self, layer, x):
        fn, w, b = affine_parts(layer)
        z = layer(x)
        rule = {"conv": self.m.rule, "dense": self.m.dense_rule, "norm": "epsilon"}[layer_kind(layer)]
        if rule == "epsilon":
            zl = fn(x, w) if b is None else fn(x, w) + b
            den = z + self.m.eps * jnp.where(z >= 0, 1.0, -1.0)
            return _with_grad(z, _ratio(z, den) * zl)
        alpha, beta = (1.0, 0.0) if rule == "zplus" else (self.m.alpha, self.m.beta)
        xp, xn = jnp.maximum(x, 0), jnp.minimum(x, 0)
        wp, wn = jnp.maximum(w, 0), jnp.minimum(w, 0)
        zp = fn(xp, wp) + fn(xn, wn)  # sum of the positive contributions (x_j w_jk)^+, >= 0
        out = alpha * _ratio(z, zp) * zp
        if beta:
            zn = fn(xp, wn) + fn(xn, wp)  # the negative ones, <= 0
            out = out - beta * _ratio(z, zn) * zn
        return _with_grad(z, out)


@register("lrp")
@dataclasses.dataclass(frozen=True)
class LRP(AttributionMethod):
    """Layer-wise relevance propagation, with a rule per layer type; ``map = x * (modified gradient)``.

    Relevance starts as the target logit and flows back layer by layer; at a
    layer ``z_k = sum_j x_j w_jk + b_k`` the input relevance is

    * ``epsilon``: ``R_j = sum_k x_j w_jk / (z_k + eps sign(z_k)) R_k`` (the bias
      and eps absorb some relevance; eps -> 0 with zero biases conserves it:
      ``sum(map) = z_target(x)``);
    * ``zplus``: ``R_j = sum_k (x_j w_jk)^+ / sum_j (x_j w_jk)^+ R_k`` (positive
      contributions only; with x >= 0 the usual ``w^+`` rule);
    * ``alpha_beta``: ``alpha`` times the z+ share minus ``beta`` times the
      share of the negative contributions (``alpha - beta = 1``).

    Elementwise nonlinearities pass relevance unchanged, BatchNorm layers use
    the epsilon rule, sums split relevance in proportion to their terms, and
    max-pooling gives it to the maximum. Refuses models with gates the hooks do
    not see (the LSTM: its multiplicative gates need their own rules, Arras et
    al. 2017, not implemented).

    Fields:
      rule: for convolutional layers, one of ``LRP_RULES``.
      dense_rule: for dense layers (default ``"epsilon"``, the usual choice
        near the output).
      eps: the epsilon rule's stabiliser (pre-activation units).
      alpha, beta: the alpha-beta rule's weights.

    References: Bach et al. 2015, "On pixel-wise explanations for non-linear
    classifier decisions by layer-wise relevance propagation" (PLoS ONE);
    Montavon et al. 2019, "Layer-wise relevance propagation: an overview".
    """

    rule: str = "epsilon"
    dense_rule: str = "epsilon"
    eps: float = 1e-2
    alpha: float = 1.0
    beta: float = 0.0

    kind = "rule"
    multiplies_by_input = True

    def __post_init__(self):
        for f in ("rule", "dense_rule"):
            if getattr(self, f) not in LRP_RULES:
                raise ValueError(f"{f} must be one of {LRP_RULES}, got {getattr(self, f)!r}")
        if self.eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps}")
        if "alpha_beta" in (self.rule, self.dense_rule) and not (self.beta >= 0 and abs(self.alpha - self.beta - 1) < 1e-9):
            raise ValueError(f"alpha_beta needs alpha - beta = 1 and beta >= 0, got alpha={self.alpha}, beta={self.beta}")

    def supports(self, info) -> str | None:
        return _refuse_gated("LRP", info)

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        _check(self, fns)
        return x * target_grad(fns.with_hooks(_LRPHooks(self)), x, target)


__all__ = ["DeepLift", "GuidedBackprop", "LRP", "LRP_RULES"]
