"""Jitted training and evaluation steps over a plain pytree state.

The model is split once (``nnx.split(model, nnx.Param, ...)``) into a
graphdef, its parameters and the rest (BatchNorm statistics, dropout RNG
state); the steps merge inside ``jax.jit`` (flax's performance guide), so no
NNX graph is walked per call. The training state is donated.

Training state (a dict pytree, replicated over the devices)::

    params   nnx.State of nnx.Param
    rest     nnx.State of everything else (BatchStat, RngKey, RngCount)
    opt      optax state of ``ecgjax.train.optim.make_optimizer``
    plateau  optax.contrib.reduce_on_plateau state (its ``scale`` multiplies the updates)
    acc      {"loss_sum", "n", "correct"}: f32 running sums over the current epoch

Batches are sharded over the 1-D mesh of ``ecgjax.batched`` (axis ``"batch"``);
``jax.jit`` inserts the cross-device reductions, so the loss, the gradients
and BatchNorm's batch statistics are those of the global batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ecgjax.batched import Mesh, map_batches
from ecgjax.config import TrainConfig
from ecgjax.errors import ConfigError
from ecgjax.models import eval_view
from ecgjax.train import losses


def make_plateau(cfg: TrainConfig) -> optax.GradientTransformationExtraArgs:
    """Keras ReduceLROnPlateau(factor, patience, min_lr, min_delta) as optax's transform.

    Updated once per epoch with the validation loss; its ``scale`` (1 when
    ``cfg.plateau`` is off) multiplies the optimizer's updates, which for
    Adam/Nadam is the same as multiplying the learning rate.
    """
    return optax.contrib.reduce_on_plateau(
        factor=cfg.plateau_factor,
        patience=cfg.plateau_patience if cfg.plateau else 2**30,
        rtol=0.0,
        atol=cfg.plateau_min_delta,
        min_scale=cfg.plateau_min_lr / cfg.lr,
    )


@dataclasses.dataclass(frozen=True)
class Steps:
    """Attributes:
    train: (state, x f32[B, T, L], y i32[B]) -> (state, loss f32[]); donates ``state``.
    eval: (params, rest, x f32[B, T, L], y i32[B]) -> (logits f32[B, C], loss f32[B]) per row.
    plateau: (plateau_state, value f32[]) -> plateau_state.
    """

    train: Callable
    eval: Callable
    plateau: Callable


def init_state(model: nnx.Module, tx, plateau) -> tuple[nnx.GraphDef, nnx.GraphDef, dict]:
    """``(graphdef, eval_graphdef, state)`` of a freshly built model."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    eval_graphdef, _, _ = nnx.split(eval_view(model), nnx.Param, ...)
    state = {
        "params": params,
        "rest": rest,
        "opt": tx.init(params),
        "plateau": plateau.init(jnp.zeros((), jnp.float32)),
        "acc": zero_acc(),
    }
    return graphdef, eval_graphdef, state


def zero_acc() -> dict:
    return {"loss_sum": jnp.zeros((), jnp.float32), "n": jnp.zeros((), jnp.float32), "correct": jnp.zeros((), jnp.float32)}


def make_steps(graphdef, eval_graphdef, tx, plateau, loss_fn: Callable) -> Steps:
    """Jitted steps; ``loss_fn(logits, labels) -> f32[B]`` (see ``losses.get``)."""

    def train_step(state, x, y):
        model = nnx.merge(graphdef, state["params"], state["rest"])

        def objective(model):
            logits = model(x)
            return jnp.mean(loss_fn(logits, y)), logits

        (loss, logits), grads = nnx.value_and_grad(objective, has_aux=True)(model)
        _, _, rest = nnx.split(model, nnx.Param, ...)  # updated BatchNorm statistics and RNG counts
        updates, opt = tx.update(grads, state["opt"], state["params"])
        scale = state["plateau"].scale
        updates = jax.tree.map(lambda u: (u * scale).astype(u.dtype), updates)
        params = optax.apply_updates(state["params"], updates)
        b = jnp.float32(y.shape[0])
        acc = state["acc"]
        acc = {
            "loss_sum": acc["loss_sum"] + loss * b,
            "n": acc["n"] + b,
            "correct": acc["correct"] + jnp.sum(jnp.argmax(logits, -1) == y).astype(jnp.float32),
        }
        return {**state, "params": params, "rest": rest, "opt": opt, "acc": acc}, loss

    def eval_step(params, rest, x, y):
        logits = nnx.merge(eval_graphdef, params, rest)(x)
        return logits, loss_fn(logits, y)

    def plateau_step(pstate, value):
        _, new = plateau.update(updates=jnp.zeros((), jnp.float32), state=pstate, value=value)
        return new

    return Steps(
        train=jax.jit(train_step, donate_argnums=0),
        eval=jax.jit(eval_step),
        plateau=jax.jit(plateau_step),
    )


def loss_from_config(cfg: TrainConfig, weights=None) -> Callable:
    """The per-example loss of ``cfg``; ``weights`` f32[C] per-class weights (``losses.class_weights``) or None."""
    return losses.get(cfg.loss, gamma=cfg.focal_gamma, alpha=cfg.focal_alpha, weights=weights)


def predict(steps: Steps, params, rest, x: np.ndarray, y: np.ndarray, *, batch_size: int, mesh: Mesh, desc: str = "evaluating"):
    """Logits f32[N, C] and mean loss over ``x`` (f32[N, T, L]), ``y`` (i32[N]) with ``ecgjax.batched.map_batches``."""
    logits, loss = map_batches(steps.eval, (params, rest), (x, y), batch_size=batch_size, mesh=mesh, desc=desc).outputs
    return logits, float(np.sum(loss, dtype=np.float64)) / max(len(x), 1)
