"""Optimisers: ``make_optimizer(cfg.train)`` and Keras 2.x's Nadam as an optax transform.

``keras2_nadam`` is what the paper's LSTM was trained with (standalone Keras
2.3.1, reference §3.2). It is not ``optax.nadam`` (no momentum schedule) and
not Keras 3's Nadam (schedule ``0.96 ** t`` without the 0.004): Keras 2.x warms
the momentum up with ``schedule_decay`` and bias-corrects with the running
product of the scheduled momenta.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ecgjax.config import TrainConfig
from ecgjax.errors import ConfigError


class ScaleByKeras2NadamState(NamedTuple):
    """count: i32[] steps taken; m_schedule: f32[] product of mu_1..mu_count; mu, nu: first and second moments."""

    count: jax.Array
    m_schedule: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def scale_by_keras2_nadam(
    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7, schedule_decay: float = 0.004,
) -> optax.GradientTransformation:
    """Keras 2.x Nadam's direction (``keras/optimizers.py``, ``Nadam.get_updates``), without the learning rate.

    With ``t`` the 1-based step and ``g`` the gradient::

        mu_t    = b1 * (1 - 0.5 * 0.96 ** (schedule_decay * t))
        mu_next = b1 * (1 - 0.5 * 0.96 ** (schedule_decay * (t + 1)))
        S_t     = S_{t-1} * mu_t                      (S_0 = 1)
        m_t     = b1 * m_{t-1} + (1 - b1) * g
        v_t     = b2 * v_{t-1} + (1 - b2) * g**2
        m_bar   = (1 - mu_t) * g / (1 - S_t) + mu_next * m_t / (1 - S_t * mu_next)
        update  = m_bar / (sqrt(v_t / (1 - b2 ** t)) + eps)

    Keras then subtracts ``lr * update``; chain with ``optax.scale_by_learning_rate``
    (``keras2_nadam`` does). Keras's defaults: b1 0.9, b2 0.999, eps
    ``K.epsilon()`` = 1e-7, schedule_decay 0.004.

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam" (ICLR 2016 workshop).
    """

    def init_fn(params):
        return ScaleByKeras2NadamState(
            count=jnp.zeros([], jnp.int32), m_schedule=jnp.ones([], jnp.float32),
            mu=optax.tree.zeros_like(params), nu=optax.tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None):
        del params
        count = optax.safe_int32_increment(state.count)
        t = count.astype(jnp.float32)
        mu_t = b1 * (1.0 - 0.5 * 0.96 ** (t * schedule_decay))
        mu_next = b1 * (1.0 - 0.5 * 0.96 ** ((t + 1.0) * schedule_decay))
        m_schedule = state.m_schedule * mu_t
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        v_corr = -jnp.expm1(t * math.log(b2))  # 1 - b2**t without float32 cancellation at small t

        def direction(g, m, v):
            m_bar = (1.0 - mu_t) * g / (1.0 - m_schedule) + mu_next * m / (1.0 - m_schedule * mu_next)
            return (m_bar / (jnp.sqrt(v / v_corr) + eps)).astype(g.dtype)

        new = jax.tree.map(direction, updates, mu, nu)
        return new, ScaleByKeras2NadamState(count=count, m_schedule=m_schedule, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def keras2_nadam(
    learning_rate: optax.ScalarOrSchedule = 0.002, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7,
    schedule_decay: float = 0.004,
) -> optax.GradientTransformation:
    """Keras 2.x ``Nadam(learning_rate, beta_1, beta_2, epsilon, schedule_decay)`` (defaults are Keras's)."""
    return optax.chain(
        scale_by_keras2_nadam(b1=b1, b2=b2, eps=eps, schedule_decay=schedule_decay),
        optax.scale_by_learning_rate(learning_rate),
    )


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """The optimiser of ``cfg.optimizer`` at ``cfg.lr`` (Keras's beta1 0.9, beta2 0.999; ``cfg.eps``).

    ``adam`` and ``nadam`` are optax's; ``keras2_nadam`` is Keras 2.x's Nadam
    (momentum schedule included). ``cfg.clip_global_norm`` (if set) clips the
    gradients' global norm first.
    """
    if cfg.optimizer == "adam":
        tx = optax.adam(cfg.lr, b1=0.9, b2=0.999, eps=cfg.eps)
    elif cfg.optimizer == "nadam":
        tx = optax.nadam(cfg.lr, b1=0.9, b2=0.999, eps=cfg.eps)
    elif cfg.optimizer == "keras2_nadam":
        tx = keras2_nadam(cfg.lr, b1=0.9, b2=0.999, eps=cfg.eps)
    else:
        raise ConfigError(f"train.optimizer={cfg.optimizer!r}")
    if cfg.clip_global_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(cfg.clip_global_norm), tx)
    return tx
