"""Per-example classification losses and their masked mean.

``logits: f32[B, C]``, ``labels: i32[B]`` -> ``f32[B]``. Class imbalance is
handled by balancing the training set (``ecgjax.data.balance``) or by the
focal loss, never inside the optimizer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Softmax cross-entropy. logits f32[B, C], labels i32[B] -> f32[B]."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def focal(logits: jax.Array, labels: jax.Array, *, gamma: float = 2.0, alpha: float = 1.0) -> jax.Array:
    """Focal loss (Lin et al., 2017), the Keras snippet Jones et al. used.

    Per example ``alpha * (1 - p_t)**gamma * -log(p_t)`` with ``p_t`` the
    softmax probability of the true class; one scalar ``alpha`` (no per-class
    weights). ``-log p_t`` comes from ``log_softmax`` instead of the snippet's
    ``-log(p_t + 1e-9)`` (the same up to 1e-9, and finite for confident
    mistakes). ``gamma=0, alpha=1`` is the cross-entropy.

    logits f32[B, C], labels i32[B] -> f32[B].
    """
    logp = jax.nn.log_softmax(logits, axis=-1)
    logp_t = jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
    p_t = jnp.exp(logp_t)
    return alpha * (1.0 - p_t) ** gamma * -logp_t


def get(name: str, *, gamma: float = 2.0, alpha: float = 1.0):
    """``ce`` | ``focal`` -> ``fn(logits, labels) -> f32[B]``."""
    if name == "ce":
        return cross_entropy
    if name == "focal":
        return lambda logits, labels: focal(logits, labels, gamma=gamma, alpha=alpha)
    raise ValueError(f"unknown loss {name!r}")


def masked_mean(per_example: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over the rows where ``mask`` (f32[B] of 0/1) is 1; 0 when none is."""
    return jnp.sum(per_example * mask) / jnp.maximum(jnp.sum(mask), 1.0)
