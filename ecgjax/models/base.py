"""The model contract and the pure functions attribution code works with.

Every model takes ``x: f32[B, T, L]`` (beats, samples, leads) and returns logits
``f32[B, C]``, and exposes the split that layer attributions need without hooks:

* ``features(x) -> f32[B, T', F]``: the last convolutional feature map (CNNs) or
  the hidden-state sequence (LSTM);
* ``head(f) -> f32[B, C]`` with ``head(features(x)) == __call__(x)``;
* ``layer(name, x) -> f32[B, T', F]`` for the names in ``layer_names``;
* ``cascade_order``: its top-level sub-module attribute names from the output
  back to the input (for cascading parameter randomisation).

Attribution code never touches NNX: ``eval_split(model)`` takes an eval-mode
view (BatchNorm on running statistics, no dropout) and splits it once, and
``pure_fns(graphdef, state)`` builds pure callables that merge inside whatever
transform calls them (``jax.jit`` with ``state`` as an argument, ``vmap``,
``grad``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class Fns:
    """Pure functions of one model in eval mode.

    Attributes:
      logit_fn: x f32[B, T, L] -> f32[B, C].
      feature_fn: x f32[B, T, L] -> f32[B, T', F].
      head_fn: f32[B, T', F] -> f32[B, C].
      layers: named intermediate outputs, x -> f32[B, T', F].
    """

    logit_fn: Callable
    feature_fn: Callable
    head_fn: Callable
    layers: Mapping[str, Callable] = dataclasses.field(default_factory=dict)


def eval_view(model: nnx.Module) -> nnx.Module:
    """The model in inference mode (a view; the model itself is unchanged)."""
    return nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)


def eval_split(model: nnx.Module):
    """``(graphdef, state)`` of the eval-mode view; ``state`` is a pytree of arrays."""
    return nnx.split(eval_view(model))


def pure_fns(graphdef, state) -> Fns:
    """Pure callables over ``nnx.merge(graphdef, state)``.

    Call this *inside* ``jax.jit`` with ``state`` as a traced argument so the
    parameters are inputs of the compiled program, not constants.
    """

    def merged():
        return nnx.merge(graphdef, state)

    names = getattr(merged(), "layer_names", ())
    return Fns(
        logit_fn=lambda x: merged()(x),
        feature_fn=lambda x: merged().features(x),
        head_fn=lambda f: merged().head(f),
        layers={n: (lambda x, n=n: merged().layer(n, x)) for n in names},
    )


def concat_leads(x: jnp.ndarray) -> jnp.ndarray:
    """f32[B, T, L] -> f32[B, L*T, 1]: lead 1 then lead 2, as the paper feeds its models."""
    b, t, l = x.shape
    return jnp.transpose(x, (0, 2, 1)).reshape(b, l * t, 1)


def count_params(model: nnx.Module, *, include_batch_stats: bool = True) -> int:
    """Parameters, with BatchNorm running statistics counted as Keras does by default."""
    filt = nnx.Any(nnx.Param, nnx.BatchStat) if include_batch_stats else nnx.Param
    return sum(int(a.size) for a in __import__("jax").tree.leaves(nnx.state(model, filt)))

