"""Synthetic 2-lead beats for the generative tests: a Gaussian QRS plus an optional bump in a known segment."""

from __future__ import annotations

import numpy as np

T, L = 96, 2
BUMP = (64, 80)  # the planted segment [start, stop): the fifth of six 16-sample segments


def beats(n: int, *, seed: int = 0, bump: np.ndarray | None = None) -> np.ndarray:
    """f32[n, T, L]: a QRS of random width, amplitude and position jitter per beat; ``bump`` bool[n] adds a bump in BUMP."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None]
    amp = rng.uniform(0.8, 1.2, (n, 1))
    width = rng.uniform(3.0, 5.0, (n, 1))
    shift = rng.uniform(-2, 2, (n, 1))
    qrs = amp * np.exp(-0.5 * ((t - 40 - shift) / width) ** 2)
    twave = 0.3 * rng.uniform(0.5, 1.0, (n, 1)) * np.exp(-0.5 * ((t - 20) / 6.0) ** 2)
    x = np.stack([qrs + twave, -0.6 * qrs + 0.5 * twave], axis=-1)
    if bump is not None:
        mid, half = (BUMP[0] + BUMP[1]) / 2, (BUMP[1] - BUMP[0]) / 4
        x += (np.asarray(bump, float)[:, None] * 0.8 * np.exp(-0.5 * ((t - mid) / half) ** 2))[..., None]
    return (x + 0.01 * rng.standard_normal(x.shape)).astype(np.float32)
