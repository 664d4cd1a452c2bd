"""Per-example classification losses and their masked mean.

``logits: f32[B, C]``, ``labels: i32[B]`` -> ``f32[B]``. Class imbalance is
handled by balancing the training set (``ecgjax.data.balance``), by per-class
weights on the loss (``class_weights``), or by the focal loss, never inside
the optimizer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
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


def class_weights(labels: np.ndarray, n_classes: int, power: float) -> np.ndarray:
    """Per-class loss weights ``w_c = (n / (C' * n_c)) ** power`` from the training labels.

    ``power`` 0 gives 1 everywhere, 1 the "balanced" weights (every class
    carries the same total weight), 0.5 their square root (a rare class is
    not weighted up by its full rarity, which overfits its few beats). C' is
    the number of classes present; a class with no training beat gets 0. The
    weights are then scaled so that their mean over the training beats is 1
    (the loss keeps its scale).

    Args:
      labels: i[M] training labels (with the repeats of any resampling).
      n_classes: C.
      power: >= 0.

    Returns:
      f32[C].
    """
    n_c = np.bincount(np.asarray(labels), minlength=n_classes).astype(np.float64)
    present = n_c > 0
    w = np.where(present, (n_c.sum() / (present.sum() * np.where(present, n_c, 1.0))) ** power, 0.0)
    return (w / (w @ n_c / n_c.sum())).astype(np.float32)


def get(name: str, *, gamma: float = 2.0, alpha: float = 1.0, weights=None):
    """``ce`` | ``focal`` -> ``fn(logits, labels) -> f32[B]``, each example times ``weights[label]`` when given (f32[C])."""
    if name == "ce":
        base = cross_entropy
    elif name == "focal":
        def base(logits, labels):
            return focal(logits, labels, gamma=gamma, alpha=alpha)
    else:
        raise ValueError(f"unknown loss {name!r}")
    if weights is None:
        return base
    w = jnp.asarray(weights, jnp.float32)
    return lambda logits, labels: base(logits, labels) * w[labels]


def masked_mean(per_example: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean over the rows where ``mask`` (f32[B] of 0/1) is 1; 0 when none is."""
    return jnp.sum(per_example * mask) / jnp.maximum(jnp.sum(mask), 1.0)
