"""Jitted training and evaluation steps over a plain pytree state.

The model is split once (``nnx.split(model, nnx.Param, ...)``) into a
graphdef, its parameters and the rest (BatchNorm statistics, dropout RNG
state); the steps merge inside ``jax.jit`` (flax's performance guide), so no
NNX graph is walked per call. The training state is donated. The steps are
module-level jitted functions whose static arguments are the graph definitions
and the :class:`Objective` (optimiser, plateau schedule, loss), all hashable and
equal across runs of one recipe: a second run in the same process (another seed,
fold or resume) reuses the compiled programs.

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
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ecgjax.batched import Mesh, map_batches
from ecgjax.config import TrainConfig
from ecgjax.models import eval_view
from ecgjax.models.base import Static
from ecgjax.train import losses
from ecgjax.train.optim import make_optimizer


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


#: ``TrainConfig`` fields the training loop reads and the steps do not (set to their defaults in an ``Objective``)
LOOP_ONLY = ("seed", "epochs", "batch_size", "eval_batch_size", "checkpoint_every", "log_every", "early_stopping_patience",
             "eval_checkpoint")


@dataclasses.dataclass(frozen=True)
class Objective:
    """What the steps optimise, as a hashable value: the training settings less the loop's own fields, and the
    class weights. Two runs with equal objectives, models and shapes share their compiled steps (jax's jit cache,
    keyed on the static arguments), so the seeds of a cross-validation compile once.

    Any hashable value with the three methods below can stand in (``ecgjax.train.regression`` has its own).
    """

    train: TrainConfig
    weights: tuple[float, ...] | None = None

    @classmethod
    def of(cls, cfg: TrainConfig, weights=None) -> Objective:
        """``cfg``'s objective; ``weights`` f32[C] per-class loss weights (``losses.class_weights``) or None."""
        default = TrainConfig()
        return cls(dataclasses.replace(cfg, **{f: getattr(default, f) for f in LOOP_ONLY}),
                   None if weights is None else tuple(float(w) for w in np.asarray(weights, np.float32)))

    def tx(self) -> optax.GradientTransformation:
        return make_optimizer(self.train)

    def plateau(self) -> optax.GradientTransformationExtraArgs:
        return make_plateau(self.train)

    def loss(self, logits: jax.Array, labels: jax.Array) -> jax.Array:
        """Per example: logits f32[B, C], labels i32[B] -> f32[B]."""
        return loss_from_config(self.train, self.weights)(logits, labels)


@dataclasses.dataclass(frozen=True)
class Steps:
    """The jitted steps of one model and objective (the module-level functions with their static argument bound).

    Attributes:
      graphdef, eval_graphdef: the model's graph definitions (training and evaluation views).
      objective: an :class:`Objective` (or a value like it).
      static: the three as one static argument, hashed once (``ecgjax.models.base.Static``).

    ``train(state, x f32[B, T, L], y i32[B]) -> (state, loss f32[])`` donates ``state``;
    ``eval(params, rest, x, y) -> (logits f32[B, C], loss f32[B])`` per row;
    ``plateau(plateau_state, value f32[]) -> plateau_state``.
    """

    graphdef: nnx.GraphDef
    eval_graphdef: nnx.GraphDef
    objective: Objective
    static: Static = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "static", Static((self.graphdef, self.eval_graphdef, self.objective)))

    def train(self, state, x, y):
        return train_step(self.static, state, x, y)

    def eval(self, params, rest, x, y):
        return eval_step(self.static, params, rest, x, y)

    def plateau(self, pstate, value):
        return plateau_step(self.static, pstate, value)


def init_state(model: nnx.Module, objective) -> tuple[nnx.GraphDef, nnx.GraphDef, dict]:
    """``(graphdef, eval_graphdef, state)`` of a freshly built model."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    eval_graphdef, _, _ = nnx.split(eval_view(model), nnx.Param, ...)
    state = {
        "params": params,
        "rest": rest,
        "opt": objective.tx().init(params),
        "plateau": objective.plateau().init(jnp.zeros((), jnp.float32)),
        "acc": zero_acc(),
    }
    return graphdef, eval_graphdef, state


def zero_acc() -> dict:
    return {"loss_sum": jnp.zeros((), jnp.float32), "n": jnp.zeros((), jnp.float32), "correct": jnp.zeros((), jnp.float32)}


@functools.partial(jax.jit, static_argnums=0, donate_argnums=1)
def train_step(static: Static, state, x, y):
    """One optimiser step on the batch ``x`` f32[B, T, L], ``y`` i32[B]: ``(state, mean loss f32[])``; ``static``:
    ``Steps.static``."""
    graphdef, _, objective = static.value
    model = nnx.merge(graphdef, state["params"], state["rest"])

    def loss_of(model):
        logits = model(x)
        return jnp.mean(objective.loss(logits, y)), logits

    (loss, logits), grads = nnx.value_and_grad(loss_of, has_aux=True)(model)
    _, _, rest = nnx.split(model, nnx.Param, ...)  # updated BatchNorm statistics and RNG counts
    updates, opt = objective.tx().update(grads, state["opt"], state["params"])
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


@functools.partial(jax.jit, static_argnums=0)
def eval_step(static: Static, params, rest, x, y):
    """Per row: ``(logits f32[B, C], loss f32[B])``."""
    _, eval_graphdef, objective = static.value
    logits = nnx.merge(eval_graphdef, params, rest)(x)
    return logits, objective.loss(logits, y)


@functools.partial(jax.jit, static_argnums=0)
def plateau_step(static: Static, pstate, value):
    """The plateau schedule after an epoch whose validation loss is ``value`` f32[]."""
    _, new = static.value[2].plateau().update(updates=jnp.zeros((), jnp.float32), state=pstate, value=value)
    return new


def loss_from_config(cfg: TrainConfig, weights=None) -> Callable:
    """The per-example loss of ``cfg``; ``weights`` f32[C] per-class weights (``losses.class_weights``) or None."""
    return losses.get(cfg.loss, gamma=cfg.focal_gamma, alpha=cfg.focal_alpha, weights=weights)


def predict(steps: Steps, params, rest, x: np.ndarray, y: np.ndarray, *, batch_size: int, mesh: Mesh, desc: str = "evaluating"):
    """Logits f32[N, C] and mean loss over ``x`` (f32[N, T, L]), ``y`` (i32[N]) with ``ecgjax.batched.map_batches``."""
    logits, loss = map_batches(eval_step, (params, rest), (x, y), static=(steps.static,),
                               batch_size=batch_size, mesh=mesh, desc=desc).outputs
    return logits, float(np.sum(loss, dtype=np.float64)) / max(len(x), 1)
