"""Layer methods: Grad-CAM and the paper's (class-agnostic) layer saliency.

Both read the model's named layers and lead layout from ``fns.info`` and
refuse a model they cannot explain (``supports``).
Shapes: ``x: f32[B, T, L]``, a layer's output ``f32[B, T', F]``, output ``f32[B, T, L]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax.attribution.base import NO_INFO, AttributionMethod
from ecgjax.attribution.registry import register
from ecgjax.errors import ConfigError
from ecgjax.models.base import LAYOUTS as _LAYOUTS
from ecgjax.models.base import Hooks


def upsample_to_input(cam: jax.Array, T: int, L: int, layout: str) -> jax.Array:
    """Map a per-position map f32[B, T'] back to the input grid f32[B, T, L].

    * ``layout="concat"`` (the jones2020/ribeiro models: the L leads are
      concatenated in time, ``x.transpose(0, 2, 1).reshape(B, L*T, 1)``, so T'
      spans lead 1 then lead 2): linear interpolation from T' to L*T positions
      (``jax.image.resize``, half-sample centres, i.e. the feature axis is
      stretched evenly over the concatenated input), then split into leads:
      position ``l*T + t`` -> ``[t, l]``. With 'valid' convolutions T' < L*T and
      the stretch spreads the receptive-field offset of about (L*T - T')/2
      samples evenly; it is a display approximation, as in the Grad-CAM paper.
    * ``layout="channels"`` (leads as input channels, T' spans time only):
      interpolate T' -> T and give every lead the same value.
    """
    B = cam.shape[0]
    if layout == "concat":
        up = jax.image.resize(cam, (B, L * T), method="linear")
        return up.reshape(B, L, T).transpose(0, 2, 1)
    if layout == "channels":
        up = jax.image.resize(cam, (B, T), method="linear")
        return jnp.broadcast_to(up[:, :, None], (B, T, L))
    raise ValueError(f"layout must be one of {_LAYOUTS}, got {layout!r}")


class _Tap(Hooks):
    """Adds ``delta`` to the named layer's output and records that output (``value``)."""

    def __init__(self, name: str, delta: jax.Array):
        self.name, self.delta, self.value = name, delta, None

    def tap(self, name, h):
        if name != self.name:
            return h
        self.value = h
        return h + self.delta


def logits_and_layer_grad(fns: Any, layer: str, x: jax.Array, target: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(A, dz_target/dA)``, both f32[B, T', F], for the named layer ``A = layers[layer](x)``.

    One forward pass with a zero perturbation added at the layer (``Fns.with_hooks``)
    and one VJP, so it works for any architecture (residual paths included).
    """
    spec = fns.info.layer(layer)
    zeros = jnp.zeros((x.shape[0], spec.length, spec.channels), x.dtype)

    def f(delta):
        tap = _Tap(layer, delta)
        z = fns.with_hooks(tap).logit_fn(x)
        return z, tap.value

    logits, vjp, A = jax.vjp(f, zeros, has_aux=True)
    (g,) = vjp(jax.nn.one_hot(target, logits.shape[-1], dtype=logits.dtype))
    return A, g


@register("grad_cam")
@dataclasses.dataclass(frozen=True)
class GradCAM(AttributionMethod):
    """Grad-CAM on a convolutional layer: ``cam[t'] = sum_f a_f A[t', f]``, ``a_f = mean_t' d z_target / d A[t', f]``.

    ``A`` is the named layer ``layer``'s output f32[B, T', F]; the map is
    upsampled to the input with the model's lead layout
    (:func:`upsample_to_input`, ``fns.info.layout``). The output is **signed**
    (the paper's ReLU is an analysis choice).

    A Grad-CAM map has one value per position of ``A``, so a layer with too few
    positions gives a map that cannot tell the parts of a beat apart (with one
    position, a constant). The time step of a layer is the beat's duration per
    lead divided by its positions per lead (``ModelInfo.step_s``).

    Fields:
      layer: the layer's name (``ModelInfo.layers``, kind ``"conv"``), or
        ``None`` (default): **the deepest convolutional layer whose time step is
        at most ``max_step_s``** (the last feature map when it is fine enough).
      max_step_s: the coarsest time step allowed, in seconds (default 0.1 s,
        the width of the segments profiles use). A chosen layer coarser than
        this is refused, and so is a model with no such layer.

    References: Selvaraju et al. 2017, "Grad-CAM" (ICCV).
    """

    layer: str | None = None
    max_step_s: float = 0.1

    kind = "layer"

    def __post_init__(self):
        if not self.max_step_s > 0:
            raise ValueError(f"max_step_s must be positive, got {self.max_step_s}")

    def layer_for(self, info) -> str | None:
        """The layer this instance explains on the model of ``info`` (None if none qualifies)."""
        if self.layer is not None:
            return self.layer
        ok = [s.name for s in info.layers if s.kind == "conv" and info.step_s(s.name) <= self.max_step_s]
        return ok[-1] if ok else None

    def supports(self, info) -> str | None:
        if info is None:
            return NO_INFO
        convs = [s.name for s in info.layers if s.kind == "conv"]
        if not convs:
            return f"it has no convolutional layer (layers: {list(info.layer_names) or 'none'}); Grad-CAM weights a conv feature map"
        if self.layer is not None:
            if self.layer not in convs:
                return f"it has no convolutional layer {self.layer!r} (conv layers: {convs})"
            if (st := info.step_s(self.layer)) > self.max_step_s:
                n = info.layer(self.layer).length
                return (f"layer {self.layer!r} has {n} position{'s' if n != 1 else ''}, a time step of {st:.3f} s "
                        f"> max_step_s={self.max_step_s} s: too coarse to tell a beat's parts apart; choose an earlier layer")
            return None
        if self.layer_for(info) is None:
            return f"none of its conv layers has a time step <= max_step_s={self.max_step_s} s"
        return None

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        info = getattr(fns, "info", None)
        if (why := self.supports(info)) is not None:
            raise ConfigError(f"grad_cam cannot explain {getattr(info, 'name', 'this model')}: {why}")
        B, T, L = x.shape
        A, g = logits_and_layer_grad(fns, self.layer_for(info), x, target)
        alpha = jnp.mean(g, axis=1)  # [B, F]
        cam = jnp.einsum("bf,btf->bt", alpha, A)
        return upsample_to_input(cam, T, L, info.layout).astype(x.dtype)


@register("jones2020_layer_saliency")
@dataclasses.dataclass(frozen=True)
class Jones2020LayerSaliency(AttributionMethod):
    """The paper's keras-vis saliency: ``d mean(layers[layer](x)) / d x``, **ignoring the class**.

    keras-vis ``visualize_saliency(layer_idx=40, filter_indices=None)`` on the
    CNN maximises the mean over all positions and channels of the final Conv1D
    output (before its BatchNorm) and never reaches the dense head, so the map
    is the same whatever ``target`` is (``uses_target = False``): it ignores the
    class. The returned map is the signed gradient; the paper's map is
    ``|g|`` min-max normalised per beat: :func:`jones2020_paper_map`.
    See docs reference_pipeline §4. A model without the layer is refused
    (jones2020_lstm, ribeiro_cnn: the paper's layer is jones2020_cnn's).

    Fields:
      layer: a named layer of the model (``"final_conv"``: jones2020_cnn's).
    """

    layer: str = "final_conv"

    kind = "layer"
    uses_target = False

    def supports(self, info) -> str | None:
        if info is None:
            return NO_INFO
        if self.layer not in info.layer_names:
            return f"it has no layer {self.layer!r} (the paper's is jones2020_cnn's last Conv1D); its layers: {list(info.layer_names)}"
        return None

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        info = getattr(fns, "info", None)
        if (why := self.supports(info)) is not None:
            raise ConfigError(f"jones2020_layer_saliency cannot explain {getattr(info, 'name', 'this model')}: {why}")
        f = fns.layers[self.layer]

        def total(xx):  # sum over beats of each beat's mean: rows stay independent
            out = f(xx)
            return jnp.sum(jnp.mean(out.reshape(out.shape[0], -1), axis=1))

        return jax.grad(total)(x)


def jones2020_paper_map(grad: np.ndarray | jax.Array, eps: float = 1e-7) -> np.ndarray:
    """The exact paper map from the signed layer gradient: keras-vis ``'absolute'`` then ``normalize``.

    ``m = |g|``; ``(m - min) / (max - min + eps)`` over all T*L values of each
    beat (the paper's model saw the two leads as one 860-sample sequence).

    Args:
      grad: f32[N, T, L] from :class:`Jones2020LayerSaliency`.
    Returns:
      f32[N, T, L] in [0, 1] per beat.
    """
    m = np.abs(np.asarray(grad, np.float32))
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = m.max(axis=(1, 2), keepdims=True)
    return (m - lo) / (hi - lo + eps)
