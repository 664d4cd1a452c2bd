"""Synthetic 2-lead beats for the generative tests: a Gaussian QRS plus an optional bump in a known segment."""

from __future__ import annotations

import numpy as np

T, L = 96, 2
BUMP = (64, 80)  # the planted segment [start, stop): the fifth of six 16-sample segments
FS = 100.0  # the beats' rate: 0.1 s segments of 10 samples
R = 40  # ``beats``' QRS peak
WAVE_BOUNDS = (10, 25, 33, 47, 62, 82)  # P_on .. T_off of ``beats``: the planted bump (64-80) is the "T wave"


def where(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(r, lo, hi) i[n] of n of ``beats``: R at ``R``, every sample valid."""
    return np.full(n, R), np.zeros(n, int), np.full(n, T)


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


QRS_AT = 48  # the peak of ``qrs_beats``' QRS


def qrs_beats(n: int, *, seed: int = 0, sigma: tuple[float, float] = (1.5, 6.0)) -> tuple[np.ndarray, np.ndarray]:
    """Beats whose QRS width is known: (f32[n, T, L], f64[n] the QRS's full width at half maximum in samples).

    A Gaussian QRS (sigma drawn from ``sigma`` samples, amplitude 0.8-1.2) at ``QRS_AT`` and a small T wave
    at sample 84; lead 2 is -0.6 x the QRS plus the T wave.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None]
    s = rng.uniform(*sigma, (n, 1))
    qrs = rng.uniform(0.8, 1.2, (n, 1)) * np.exp(-0.5 * ((t - QRS_AT) / s) ** 2)
    twave = 0.25 * np.exp(-0.5 * ((t - 84) / 4.0) ** 2)
    x = np.stack([qrs + twave, -0.6 * qrs + twave], axis=-1)
    return (x + 0.005 * rng.standard_normal(x.shape)).astype(np.float32), 2 * np.sqrt(2 * np.log(2)) * s[:, 0]


def fwhm(x: np.ndarray) -> np.ndarray:
    """f64[n]: the full width at half maximum (samples) of lead 1's peak in [QRS_AT - 20, QRS_AT + 20], f[n, T, L] beats.

    A measurement independent of any model: the half-maximum crossings on either side of the peak, linearly
    interpolated between samples.
    """
    out = []
    for b in np.asarray(x, np.float64)[..., 0]:
        lo, hi = QRS_AT - 20, QRS_AT + 20
        k = lo + int(np.argmax(b[lo:hi]))
        half = b[k] / 2
        i = k
        while i > lo and b[i - 1] > half:
            i -= 1
        left = i - 1 + (half - b[i - 1]) / (b[i] - b[i - 1])
        j = k
        while j < hi and b[j + 1] > half:
            j += 1
        right = j + (b[j] - half) / (b[j] - b[j + 1])
        out.append(right - left)
    return np.asarray(out)
