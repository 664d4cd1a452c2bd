"""ECG signals whose wave boundaries are known exactly: the reference the delineator is checked against.

No expert-annotated wave boundaries (the QT database, LUDB) are in the project's data folder, so
``ecgjax.data.delineation`` is checked against beats built here, where every one of the six boundaries
(``delineation.BOUNDS``) is a number of the construction, not a measurement:

* QRS: piecewise linear with exact support ``[R - W/2, R + W/2]`` (knots 0, -0.1, 1, -0.25, 0 mV at
  -W/2, -0.35 W, 0, 0.35 W, W/2; W = ``qrs_ms``), so it leaves the baseline with a non-zero slope;
* P: a Hann bump of ``P_AMP`` mV on ``[QRS_on - P_BEFORE_MS[0], QRS_on - P_BEFORE_MS[1]]`` ms, or none
  (absent P: its two bounds are NaN, as the delineator should report);
* T: a Hann bump of ``T_AMP`` mV (times ``t_sign``: -1 is the discordant T of ventricular and bundle branch
  block beats) on ``[QRS_off + T_AFTER_MS[0], QRS_off + T_AFTER_MS[1]]`` ms;
* white noise and baseline wander.

The five waves P, PR, QRS, ST and T follow from the six bounds (``delineation.WAVE_SPANS``). A Hann bump
leaves the baseline with zero slope, so a delineator that draws a wave's edges where it stands above a share
``beta`` of its height measures it narrower by a known amount (:func:`hann_edge_inset_ms`); the tests and
``benchmarks/delineation_methods.py --closed-form`` report the error against the planted support.
"""

from __future__ import annotations

import numpy as np

#: the P wave's support, ms before the QRS onset (start, end)
P_BEFORE_MS = (150.0, 50.0)
#: the T wave's support, ms after the QRS offset (start, end)
T_AFTER_MS = (80.0, 280.0)
P_AMP, T_AMP = 0.15, 0.3

#: the checked cases: name -> ``closed_form_beats`` keywords (``tests/data/test_delineation.py``,
#: ``benchmarks/delineation_methods.py --closed-form``)
CASES = {
    "narrow": dict(qrs_ms=80),
    "normal, noisy": dict(qrs_ms=100, noise=0.03, wander=0.3),
    "wide": dict(qrs_ms=160),
    "wide, no P, discordant T": dict(qrs_ms=160, p_wave=False, t_sign=-1.0),
    "wider, no P, discordant T": dict(qrs_ms=180, p_wave=False, t_sign=-1.0),
    # N beats (90 ms, P, 1.1 s after the beat before) and premature wide beats without P (160 ms, discordant T,
    # 0.5 s after the N beat) alternating: each N beat's T wave ends 325 ms after R, past 60% of the 0.5 s that follow
    "bigeminy": dict(qrs_ms=np.tile([90.0, 160.0], 10), p_wave=np.tile([True, False], 10),
                     t_sign=np.tile([1.0, -1.0], 10), rr_s=np.tile([1.1, 0.5], 10), n_beats=20),
}


def closed_form_beats(qrs_ms, *, p_wave=True, t_sign=1.0, rr_s=0.8, n_beats: int = 20, noise: float = 0.01,
                      wander: float = 0.1, fs: float = 360.0, seed: int = 0):
    """Beats with known boundaries (module docstring).

    Args:
      qrs_ms: QRS width (ms), one value or f[K] per beat.
      p_wave: bool or bool[K]: a P wave before the QRS.
      t_sign: +1 / -1 or f[K]: the T wave's polarity.
      rr_s: RR interval (s), one value or f[K]: beat k's interval to the beat before (the first's only places it).
      n_beats: K.
      noise: sd (mV) of white noise; wander: amplitude (mV) of a 0.15 Hz baseline wander.
      fs: sampling rate (Hz).
      seed: the noise's seed.

    Returns:
      (x f64[S], r i64[K], truth f64[K, 6]): the signal (mV), the R samples, and the planted ``BOUNDS`` in record
      samples (exclusive ends: a wave occupies ``[on, off)``), NaN for the bounds of an absent P wave.
    """
    K = int(n_beats)
    rr = np.broadcast_to(np.asarray(rr_s, np.float64), (K,))
    t_r = np.cumsum(rr) - rr[0] / 2  # R times (s)
    r = np.round(t_r * fs).astype(np.int64)
    S = int(np.ceil((t_r[-1] + 1.5 * rr[-1]) * fs))
    t = np.arange(S) / fs
    w = np.broadcast_to(np.asarray(qrs_ms, np.float64), (K,)) / 1000
    has_p = np.broadcast_to(np.asarray(p_wave, bool), (K,))
    sign = np.broadcast_to(np.asarray(t_sign, np.float64), (K,))
    x = np.zeros(S)
    for k in range(K):
        u = t - r[k] / fs
        x += np.interp(u, [-w[k] / 2, -0.35 * w[k], 0, 0.35 * w[k], w[k] / 2], [0, -0.1, 1.0, -0.25, 0], left=0, right=0)
        p0, p1 = -w[k] / 2 - P_BEFORE_MS[0] / 1000, -w[k] / 2 - P_BEFORE_MS[1] / 1000
        t0, t1 = w[k] / 2 + T_AFTER_MS[0] / 1000, w[k] / 2 + T_AFTER_MS[1] / 1000
        if has_p[k]:
            x += _hann(u, p0, p1) * P_AMP
        x += _hann(u, t0, t1) * T_AMP * sign[k]
    x += np.random.default_rng(seed).normal(0, noise, S) + wander * np.sin(2 * np.pi * 0.15 * t)
    half = w * fs / 2
    truth = np.stack([
        np.where(has_p, r - half - P_BEFORE_MS[0] / 1000 * fs, np.nan),
        np.where(has_p, r - half - P_BEFORE_MS[1] / 1000 * fs, np.nan),
        r - half, r + half,
        r + half + T_AFTER_MS[0] / 1000 * fs, r + half + T_AFTER_MS[1] / 1000 * fs], 1)
    return x, r, truth


def _hann(u: np.ndarray, start: float, end: float) -> np.ndarray:
    """f64[...]: a Hann bump of height 1 with support exactly [start, end] (s)."""
    v = (u - (start + end) / 2) / (end - start)
    return np.where(np.abs(v) < 0.5, np.cos(np.pi * v) ** 2, 0.0)


def hann_edge_inset_ms(width_ms: float, beta: float) -> float:
    """How far inside each edge of a Hann bump of support ``width_ms`` it first stands above ``beta`` of its height.

    cos²(pi v) = beta at |v| = arccos(sqrt(beta)) / pi of the width from the centre.
    """
    return float(width_ms * (0.5 - np.arccos(np.sqrt(beta)) / np.pi))


def boundary_errors_ms(bounds: np.ndarray, truth: np.ndarray, fs: float) -> np.ndarray:
    """f64[K, 6] measured minus planted boundary (ms); NaN where either is NaN (positive: later than planted)."""
    return (np.asarray(bounds, np.float64) - np.asarray(truth, np.float64)) / fs * 1000
