"""Reference inputs ("baselines") for path and perturbation methods, in one place.

``baseline(kind, x, ...)`` gives ``x0: f32[B, T, L]`` for beats ``x: f32[B, T, L]``:

* ``zeros``: 0 everywhere (zero-padded beats' own padding value).
* ``mean``: each beat's per-lead mean over time (a flat line at the beat's level).
* ``blurred``: each lead smoothed by a Gaussian of ``sigma`` samples (edges held at the
  end values, as scipy's ``gaussian_filter1d(mode="nearest", truncate=3)``); keeps the
  beat's slow shape, removes the sharp QRS detail (Sundararajan et al.'s "blurred" baseline).
* ``uniform``: uniform noise within each beat's per-lead [min, max] (needs per-beat keys).
* ``given``: one fixed beat f32[T, L] for all, e.g. the training set's :func:`mean_beat`.

Every baseline is row-independent (beat i's baseline depends only on beat i and key i).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

BASELINES = ("zeros", "mean", "blurred", "uniform", "given")
NEEDS_KEY = ("uniform",)


def gaussian_kernel(sigma: float, truncate: float = 3.0) -> np.ndarray:
    """f32[2 r + 1] normalised Gaussian weights, ``r = int(truncate * sigma + 0.5)`` (scipy's radius)."""
    r = int(truncate * float(sigma) + 0.5)
    t = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / float(sigma)) ** 2)
    return (k / k.sum()).astype(np.float32)


def blur(x: jax.Array, sigma: float) -> jax.Array:
    """x: f32[B, T, L] -> f32[B, T, L], each lead convolved with :func:`gaussian_kernel` (edges held)."""
    k = jnp.asarray(gaussian_kernel(sigma), x.dtype)
    r = (k.shape[0] - 1) // 2
    xp = jnp.pad(x, ((0, 0), (r, r), (0, 0)), mode="edge")
    conv = lambda s: jnp.convolve(s, k, mode="valid")  # noqa: E731  (kernel symmetric: convolution = correlation)
    return jax.vmap(jax.vmap(conv, in_axes=1, out_axes=1))(xp)


def mean_beat(x: np.ndarray) -> np.ndarray:
    """The mean beat f32[T, L] of beats x: f32[N, T, L] (e.g. the training set), for ``kind="given"``."""
    return np.asarray(x, np.float64).mean(axis=0).astype(np.float32)


def given_value(beat: np.ndarray) -> tuple:
    """A given baseline beat f32[T, L] as the hashable nested tuple a method stores in ``baseline_value``."""
    b = np.asarray(beat, np.float32)
    if b.ndim != 2:
        raise ValueError(f"baseline must be f32[T, L], got shape {b.shape}")
    return tuple(map(tuple, b.tolist()))


def baseline(kind: str, x: jax.Array, *, value=None, sigma: float = 18.0, key: jax.Array | None = None) -> jax.Array:
    """The baseline ``x0: f32[B, T, L]`` of kind ``kind`` for beats ``x: f32[B, T, L]``.

    Args:
      value: for ``given``: f32[T, L] (array or nested tuple).
      sigma: for ``blurred``: Gaussian standard deviation in samples.
      key: for ``uniform``: key[B] per-beat keys.
    """
    if kind == "zeros":
        return jnp.zeros_like(x)
    if kind == "mean":
        return jnp.broadcast_to(jnp.mean(x, axis=1, keepdims=True), x.shape)
    if kind == "blurred":
        return blur(x, sigma)
    if kind == "uniform":
        if key is None:
            raise ValueError("baseline 'uniform' needs per-beat keys")
        lo, hi = jnp.min(x, axis=1, keepdims=True), jnp.max(x, axis=1, keepdims=True)
        u = jax.vmap(lambda k: jax.random.uniform(k, x.shape[1:], x.dtype))(key)
        return lo + u * (hi - lo)
    if kind == "given":
        if value is None:
            raise ValueError("baseline 'given' needs a value f32[T, L]")
        b = jnp.asarray(value, x.dtype)
        if b.shape != x.shape[1:]:
            raise ValueError(f"baseline value has shape {b.shape}, beats have {x.shape[1:]}")
        return jnp.broadcast_to(b, x.shape)
    raise ValueError(f"baseline must be one of {BASELINES}, got {kind!r}")
