"""Controls: attributions that do not look at the model (baselines for sanity checks)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax

from ecgjax.attribution.base import AttributionMethod
from ecgjax.attribution.registry import register


@register("random")
@dataclasses.dataclass(frozen=True)
class RandomAttribution(AttributionMethod):
    """Standard-normal noise per sample, from each beat's key: the random-attribution control.

    Any method whose segment statistics or deletion curves are not better than
    this one's carries no information about the model (Adebayo et al. 2018).
    """

    kind = "control"
    needs_key = True
    uses_target = False

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None) -> jax.Array:
        return jax.vmap(lambda k: jax.random.normal(k, x.shape[1:], x.dtype))(key)
