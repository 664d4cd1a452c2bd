"""Training a registered model to regress one number per beat (output 0), for the ground-truth check.

A regression model is any registered model built with one output
(``n_classes=1``); its output 0 is the standardised prediction, and attribution
methods explain it as "class" 0 (``target=0``). Training reuses the jitted,
sharded steps of ``ecgjax.train.steps`` with a squared-error loss on
standardised targets, Adam, a seeded shuffle per epoch and no checkpoints
(a few minutes on CPU; the caller keeps the result). A short training leaves
BatchNorm's running statistics (momentum 0.99) partly at their initial values,
which skews every prediction in eval mode; after the last step they are
therefore re-estimated on up to ``bn_beats`` training beats in one pass
(:func:`recalibrate_batchnorm`, "precise BN").
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ecgjax import batched, models
from ecgjax.models.base import Static
from ecgjax.errors import ConfigError

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Regressor:
    """A trained one-output model.

    Attributes:
      model: ``(graphdef, state)`` of the eval-mode view (``models.eval_split``), for ``attribute_dataset``.
      mean, std: the target's standardisation (prediction = mean + std * output 0).
      r2_test, mae_test: on the held-out beats, in the target's unit.
      train_s: wall seconds of training.
      r2_train: on (up to ``fit_beats`` of) the training beats: near 1 with a low ``r2_test``, the model
        fits what does not carry over to other records; low, it did not fit the target at all.
    """

    model: tuple
    mean: float
    std: float
    r2_test: float
    mae_test: float
    train_s: float
    r2_train: float = float("nan")

    def predict(self, x: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
        """f64[N]: the prediction in the target's unit for beats x f32[N, T, L] (eval mode, batched)."""
        graphdef, state = self.model
        out = batched.map_batches(_predict, (state,), (np.asarray(x, np.float32),), static=(Static(graphdef),),
                                  batch_size=batch_size, desc="regression", progress=False).outputs
        return self.mean + self.std * np.asarray(out)[:, 0].astype(np.float64)


def r2_score(pred: np.ndarray, target: np.ndarray) -> float:
    """1 - SSE / SST of ``pred`` against ``target`` (f[N]); -inf .. 1, 0 for predicting the mean."""
    t = np.asarray(target, np.float64)
    err = np.asarray(pred, np.float64) - t
    return float(1 - np.sum(err ** 2) / max(np.sum((t - t.mean()) ** 2), 1e-30))


def squared_error(out: jax.Array, target: jax.Array) -> jax.Array:
    """out f32[B, 1], target f32[B] -> f32[B]."""
    return (out[:, 0] - target) ** 2


@dataclasses.dataclass(frozen=True)
class _SquaredError:
    """The regression's objective for ``ecgjax.train.steps``: Adam at ``lr`` on :func:`squared_error` (the steps'
    plateau slot is never updated here)."""

    lr: float

    def tx(self) -> optax.GradientTransformation:
        return optax.adam(self.lr)

    def plateau(self) -> optax.GradientTransformationExtraArgs:
        return optax.contrib.reduce_on_plateau(patience=2**30)

    def loss(self, out: jax.Array, target: jax.Array) -> jax.Array:
        return squared_error(out, target)


def recalibrate_batchnorm(model: nnx.Module, x: np.ndarray) -> nnx.Module:
    """``model`` with every BatchNorm's running mean and variance set to the statistics of ``x`` (f32[B, T, L]).

    One training-mode forward pass with momentum 0 (each layer normalised by the batch statistics, as in
    training); the model is changed in place and returned. Dropout layers are left as they are.
    """
    bns = [m for _, m in nnx.iter_graph(model) if isinstance(m, nnx.BatchNorm)]
    if not bns:
        return model
    saved = [m.momentum for m in bns]
    for m in bns:
        m.momentum = 0.0
    _train_forward(nnx.view(model, use_running_average=False, raise_if_not_found=False), np.asarray(x, np.float32))
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model


def train_regressor(name: str, x: np.ndarray, target: np.ndarray, train: np.ndarray, test: np.ndarray, *, fs: float,
                    epochs: int = 5, batch_size: int = 64, lr: float = 1e-3, seed: int = 0, bn_beats: int = 512,
                    fit_beats: int = 2000, **kwargs) -> Regressor:
    """Train model ``name`` (one output) to regress ``target`` from ``x``.

    Args:
      name: a registered model (``ecgjax.models.available()``); kwargs: its constructor's.
      x: f32[N, T, L] beats; target: f[N] the value per beat.
      train, test: i64[*] row indices (disjoint by record, chosen by the caller).
      fs: sampling rate (Hz); epochs, batch_size, lr, seed: Adam on the squared error of the standardised target.
      bn_beats: training beats (seeded draw) the BatchNorm statistics are re-estimated on.
      fit_beats: training beats (seeded draw) ``r2_train`` is measured on.

    Returns:
      :class:`Regressor`.
    """
    from ecgjax.train import steps as steps_lib

    t0 = time.time()
    train, test = np.asarray(train), np.asarray(test)
    if len(train) < batch_size:
        raise ConfigError(f"regression of {name}: {len(train)} training beats, fewer than the batch of {batch_size}")
    t = np.asarray(target, np.float64)
    mean, std = float(t[train].mean()), float(t[train].std() or 1.0)
    z = ((t - mean) / std).astype(np.float32)
    model = models.build(name, n_classes=1, in_shape=x.shape[1:], fs=fs, rngs=nnx.Rngs(seed), **kwargs)
    objective = _SquaredError(lr)
    graphdef, eval_graphdef, state = steps_lib.init_state(model, objective)
    steps = steps_lib.Steps(graphdef, eval_graphdef, objective)
    mesh = batched.make_mesh()
    state = jax.device_put(state, mesh.replicated)
    rng = np.random.default_rng(seed)
    n_steps = len(train) // batch_size
    for epoch in range(epochs):
        perm = train[rng.permutation(len(train))]
        for b in range(n_steps):
            idx = np.sort(perm[b * batch_size:(b + 1) * batch_size])
            state, loss = steps.train(state, jax.device_put(x[idx], mesh.batch), jax.device_put(jnp.asarray(z[idx]), mesh.batch))
        log.info("regression %s epoch %d: train loss %.4f", name, epoch, float(loss))
    trained = nnx.merge(graphdef, state["params"], state["rest"])
    recalibrate_batchnorm(trained, x[np.sort(rng.permutation(train)[:bn_beats])])
    graphdef_eval, st = models.eval_split(trained)
    fit = np.sort(rng.permutation(train)[:fit_beats])
    out = batched.map_batches(_predict, (st,), (x[np.concatenate([test, fit])],), static=(Static(graphdef_eval),), batch_size=256,
                              mesh=mesh, desc="regression test", progress=False).outputs
    pred = mean + std * np.asarray(out)[:, 0].astype(np.float64)
    p_test, p_fit = pred[:len(test)], pred[len(test):]
    return Regressor((graphdef_eval, st), mean, std, r2_score(p_test, t[test]), float(np.mean(np.abs(p_test - t[test]))),
                     time.time() - t0, r2_score(p_fit, t[fit]))


@nnx.jit
def _train_forward(model: nnx.Module, x: jax.Array) -> jax.Array:
    """One compiled forward pass (BatchNorm statistics updated in place; eager, XLA would compile every op on its own)."""
    return model(x)


@functools.partial(jax.jit, static_argnums=0)
def _predict(static, state, x):
    """f32[B, 1]: the eval-mode model's output; ``static``: its graph definition as ``Static``."""
    return nnx.merge(static.value, state)(x)
