"""Noise stress test: add recorded noise to clean beats at a calibrated SNR.

Noise comes from the MIT-BIH Noise Stress Test Database (``nstdb``): ``bw``
(baseline wander), ``ma`` (muscle artefact), ``em`` (electrode motion, absent
from our partial copy). The calibration follows the WFDB program ``nst`` that
built that database: SNR = 10 log10(S / N) per lead, where S is the signal
power estimated from QRS amplitude, the mean over beats of (peak-to-peak QRS
amplitude)^2 / 8 (a sinusoid's power for that peak-to-peak amplitude), and N is
the mean square of the noise with its mean removed. The noise is scaled by
``a = sqrt(S / (N 10^(SNR/10)))`` and added to the *unnormalised* beat (use a
protocol with ``normalisation="none"``, then ``beats.normalise``).
"""

from __future__ import annotations

import numpy as np

from ecgjax import timebase
from ecgjax.data import locate, wfdb_io

NOISE_RECORDS = ("bw", "ma", "em")


def load_noise(name: str, data_dir=None, *, fs: float = 360.0, download: bool = True) -> np.ndarray:
    """A noise record of nstdb as f32[S, L] (mean removed per lead)."""
    if name not in NOISE_RECORDS:
        raise ValueError(f"unknown noise record {name!r}; nstdb has {NOISE_RECORDS}")
    folder = locate.find_database("nstdb", data_dir, download=download)
    rec = wfdb_io.read_record(folder, name, fs=fs, annotations=False)
    return (rec.signal - rec.signal.mean(axis=0, keepdims=True)).astype(np.float32)


def qrs_signal_power(x: np.ndarray, r: np.ndarray, valid: np.ndarray, fs: float, half_width_s: float = 0.05) -> np.ndarray:
    """nst-style signal power per lead: mean over beats of (QRS peak-to-peak)^2 / 8.

    Args:
      x: f32[N, T, L] unnormalised beats.
      r: i32[N] R positions.
      valid: bool[N, T] real samples.
      half_width_s: the QRS window is R +- this.

    Returns:
      f64[L].
    """
    hw = timebase.to_samples(half_width_s, fs)
    t = np.arange(x.shape[1])[None, :]
    m = valid & (np.abs(t - r[:, None]) <= hw)
    hi = np.where(m[..., None], x, -np.inf).max(axis=1)
    lo = np.where(m[..., None], x, np.inf).min(axis=1)
    ptp = hi - lo  # [N, L]
    return np.mean(ptp.astype(np.float64) ** 2, axis=0) / 8.0


def add_noise(
    x: np.ndarray,
    valid: np.ndarray,
    noise: np.ndarray,
    snr_db: float,
    *,
    signal_power: np.ndarray,
    seed: int = 0,
) -> np.ndarray:
    """Add a random stretch of ``noise`` to every beat at ``snr_db``.

    Args:
      x: f32[N, T, L] unnormalised beats.
      valid: bool[N, T]; padding stays zero.
      noise: f32[S, L'] noise record (lead j of the beats gets noise lead j mod L').
      snr_db: target SNR in dB.
      signal_power: f64[L] from ``qrs_signal_power`` (fixed for a dataset, so
        every beat gets the same gain, as in nst).
      seed: picks the noise offsets.

    Returns:
      f32[N, T, L].
    """
    n, t, l = x.shape
    if noise.shape[0] < t:
        raise ValueError(f"noise record has {noise.shape[0]} samples, shorter than a beat ({t})")
    leads = np.arange(l) % noise.shape[1]
    nz = noise[:, leads]
    noise_power = np.mean(nz.astype(np.float64) ** 2, axis=0)
    gain = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))  # [L]
    start = np.random.default_rng(seed).integers(0, noise.shape[0] - t + 1, size=n)
    seg = nz[start[:, None] + np.arange(t)[None, :]]  # [N, T, L]
    return (x + (seg * gain).astype(np.float32) * valid[..., None]).astype(np.float32)
