"""Perturbation methods: occlusion (sliding window).

Shapes: ``x: f32[B, T, L]``, ``target: i32[B]``, output ``f32[B, T, L]``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax import timebase
from ecgjax.attribution.base import NO_INFO, AttributionMethod
from ecgjax.attribution.registry import register
from ecgjax.errors import ConfigError


def occlusion_masks(T: int, L: int, window: int, stride: int, per_lead: bool) -> np.ndarray:
    """bool[P, T, L] occlusion masks: windows ``[s, s + window)`` at starts ``0, stride, ...``.

    The last start is ``T - window`` so the tail is always covered. With
    ``per_lead`` each window is applied to one lead at a time (P = starts x L),
    otherwise to all leads together (P = starts).
    """
    if not 1 <= window <= T:
        raise ValueError(f"occlusion window {window} samples must be in [1, {T}]")
    if stride < 1:
        raise ValueError(f"occlusion stride must be >= 1 sample, got {stride}")
    starts = list(range(0, T - window + 1, stride))
    if starts[-1] != T - window:
        starts.append(T - window)
    masks = []
    for s in starts:
        m = np.zeros((T, L), bool)
        if per_lead:
            for lead in range(L):
                mm = np.zeros((T, L), bool)
                mm[s : s + window, lead] = True
                masks.append(mm)
        else:
            m[s : s + window, :] = True
            masks.append(m)
    return np.stack(masks)


@register("occlusion")
@dataclasses.dataclass(frozen=True)
class Occlusion(AttributionMethod):
    """Drop in the target logit when a window of the beat is replaced by ``baseline``.

    For every mask ``m`` (see :func:`occlusion_masks`):
    ``delta_m = z_target(x) - z_target(x * (1 - m) + baseline * m)``; a sample's
    attribution is the mean of ``delta_m`` over the windows that cover it (as
    captum's ``Occlusion``). Closed form for a linear model
    ``z = sum W x + b``: ``delta_m = sum_{(t,l) in m} W[t,l,c] (x[t,l] - baseline)``.

    Fields:
      window_s, stride_s: window length and stride in seconds (converted with
        ``ecgjax.timebase.to_samples`` at the model's sampling rate,
        ``fns.info.fs``, the rate of the data it was built for).
      baseline: the value occluded samples are set to.
      per_lead: occlude one lead at a time (default) or all leads together.
      chunk_size: masks evaluated together (memory: ``chunk_size x B`` beats).

    References: Zeiler & Fergus 2014, "Visualizing and understanding
    convolutional networks" (ECCV).
    """

    window_s: float = 0.1
    stride_s: float = 0.05
    baseline: float = 0.0
    per_lead: bool = True
    chunk_size: int = 8

    kind = "perturbation"

    def supports(self, info) -> str | None:
        if info is None:
            return NO_INFO
        t = info.in_shape[0]
        if not 1 <= timebase.to_samples(self.window_s, info.fs) <= t:
            return f"window_s={self.window_s} s is {timebase.to_samples(self.window_s, info.fs)} samples at {info.fs:g} Hz; its beats have {t}"
        return None

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None = None) -> jax.Array:
        info = getattr(fns, "info", None)
        if (why := self.supports(info)) is not None:
            raise ConfigError(f"occlusion cannot explain {getattr(info, 'name', 'this model')}: {why}")
        B, T, L = x.shape
        w = timebase.to_samples(self.window_s, info.fs)
        s = max(1, timebase.to_samples(self.stride_s, info.fs))
        masks = occlusion_masks(T, L, w, s, self.per_lead)
        P = masks.shape[0]
        k = self.chunk_size
        n_chunks = -(-P // k)
        masks = np.concatenate([masks, np.zeros((n_chunks * k - P, T, L), bool)]).reshape(n_chunks, k, T, L)
        onehot = jax.nn.one_hot(target, _n_classes(fns, x), dtype=x.dtype)
        z0 = jnp.sum(fns.logit_fn(x) * onehot, -1)  # [B]

        def body(acc, m):
            num, cnt = acc
            mf = m.astype(x.dtype)[:, None]  # [k, 1, T, L]
            xo = x[None] * (1 - mf) + self.baseline * mf  # [k, B, T, L]
            z = fns.logit_fn(xo.reshape((-1, T, L))).reshape(k, B, -1)
            delta = z0[None] - jnp.sum(z * onehot[None], -1)  # [k, B]
            return (num + jnp.einsum("kb,ktl->btl", delta, mf[:, 0]), cnt + jnp.sum(mf[:, 0], 0)), None

        (num, cnt), _ = jax.lax.scan(body, (jnp.zeros_like(x), jnp.zeros((T, L), x.dtype)), jnp.asarray(masks))
        return num / jnp.maximum(cnt, 1.0)[None]


def _n_classes(fns: Any, x: jax.Array) -> int:
    """C from the logits' abstract shape (no FLOPs: ``jax.eval_shape``)."""
    return jax.eval_shape(fns.logit_fn, jax.ShapeDtypeStruct((1,) + x.shape[1:], x.dtype)).shape[-1]
