"""A short training of a fresh copy of a run's model on permuted labels (the data randomisation test's model).

Adebayo et al. (2018, Sec. 3.2) compare a method's maps on a trained model with
its maps on the same architecture trained on randomly permuted labels: such a
model can only memorise, so maps that stay the same do not depend on what the
labels taught. The copy uses the run's model, optimiser and loss
(``ecgjax.train.loop.build``) and trains for a fixed number of steps on a seeded
sample of the training beats with their labels permuted.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from flax import nnx

from ecgjax import batched
from ecgjax.config import Config


@dataclasses.dataclass(frozen=True)
class PermutedModel:
    """Attributes:
    model: the trained copy (an NNX module; ``ecgjax.models.eval_split`` for attribution).
    steps: optimiser steps taken; n_beats: training beats it saw.
    train_accuracy: accuracy on those beats against the *permuted* labels (memorisation).
    """

    model: nnx.Module
    steps: int
    n_beats: int
    train_accuracy: float


def train_on_permuted_labels(cfg: Config, x: np.ndarray, y: np.ndarray, n_classes: int, fs: float, *, steps: int = 200,
                             max_beats: int = 2048, seed: int = 0) -> PermutedModel:
    """Train a fresh ``cfg.model`` on ``x`` with ``y`` permuted (seeded) for ``steps`` steps.

    Args:
      cfg: the run's training config (model, optimiser, loss, batch size; its seed + 1 initialises the copy).
      x: f32[N, T, L] training beats; y: i32[N] their labels.
      n_classes, fs: as the run's model.
      steps: optimiser steps; max_beats: a seeded sample of at most this many beats is used.
      seed: the sample and the permutation.
    Returns:
      :class:`PermutedModel`.
    """
    from ecgjax.attribution.runner import logits_step, model_parts
    from ecgjax.models import eval_split
    from ecgjax.train.loop import build

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(x), size=min(max_beats, len(x)), replace=False))
    xs = np.asarray(x[idx], np.float32)
    ys = rng.permutation(np.asarray(y)[idx]).astype(np.int32)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=cfg.train.seed + 1))
    mesh = batched.make_mesh()
    _, eval_graphdef, step_fns, state = build(cfg, n_classes, xs.shape[1:], fs, mesh)
    bs = max(mesh.size, min(cfg.train.batch_size, len(xs)) // mesh.size * mesh.size)
    for _ in range(steps):
        b = rng.choice(len(xs), size=bs, replace=False)
        state, _ = step_fns.train(state, jax.device_put(xs[b], mesh.batch), jax.device_put(ys[b], mesh.batch))
    model = nnx.merge(eval_graphdef, state["params"], state["rest"])
    make, params = model_parts(eval_split(model))
    logits = batched.map_batches(logits_step, (params,), (xs,), static=(make,), desc="permuted-label model", progress=False).outputs
    return PermutedModel(model, steps, len(xs), float(np.mean(np.argmax(logits, -1) == ys)))
