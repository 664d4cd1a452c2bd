"""Layer methods: Grad-CAM and the paper's (class-agnostic) layer saliency.

Shapes: ``x: f32[B, T, L]``, features ``f32[B, T', F]``, output ``f32[B, T, L]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax.attribution.base import AttributionMethod
from ecgjax.attribution.registry import register

_LAYOUTS = ("concat", "channels")


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


def not_applicable(method, model) -> str | None:
    """Why ``method`` cannot explain ``model`` (a layer method and a model without that layer), else None.

    ``model``: an NNX model of ``ecgjax.models`` (its ``layer_names``). Studies skip such pairs
    (the paper's layer saliency needs the CNN's last convolution; the LSTM has none).
    """
    layer = getattr(method, "layer", None)
    names = tuple(getattr(model, "layer_names", ()))
    if layer is not None and layer not in names:
        return f"{type(model).__name__} has no layer {layer!r} (it has {list(names)})"
    return None


@register("grad_cam")
@dataclasses.dataclass(frozen=True)
class GradCAM(AttributionMethod):
    """Grad-CAM on the last feature map: ``cam[t'] = sum_f a_f A[t', f]``, ``a_f = mean_t' d z_target / d A[t', f]``.

    Uses ``fns.feature_fn`` (``A = feature_fn(x)``, f32[B, T', F]) and
    ``fns.head_fn`` (logits from A), then :func:`upsample_to_input` with
    ``layout``. The output is **signed** (the paper's ReLU is an analysis
    choice). For the LSTM, A is the hidden sequence and the map is a
    hidden-state weighting, not a spatial map in the CNN sense.

    References: Selvaraju et al. 2017, "Grad-CAM" (ICCV).
    """

    layout: str = "concat"

    kind = "layer"

    def __post_init__(self):
        if self.layout not in _LAYOUTS:
            raise ValueError(f"layout must be one of {_LAYOUTS}, got {self.layout!r}")

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        B, T, L = x.shape
        A = fns.feature_fn(x)
        logits, vjp = jax.vjp(fns.head_fn, A)
        (g,) = vjp(jax.nn.one_hot(target, logits.shape[-1], dtype=logits.dtype))
        alpha = jnp.mean(g, axis=1)  # [B, F]
        cam = jnp.einsum("bf,btf->bt", alpha, A)
        return upsample_to_input(cam, T, L, self.layout).astype(x.dtype)


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
    See docs reference_pipeline §4.

    Fields:
      layer: the name in ``fns.layers`` (``"final_conv"`` for jones2020_cnn).
    """

    layer: str = "final_conv"

    kind = "layer"
    uses_target = False

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        if self.layer not in fns.layers:
            raise KeyError(f"model has no layer {self.layer!r}; it has {sorted(fns.layers)}")
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
