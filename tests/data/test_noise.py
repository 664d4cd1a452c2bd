"""Noise stress test: the added noise has the requested SNR and never touches padding."""

import numpy as np
import pytest

from ecgjax.data import noise


def _beats(n=400, t=200, l=2, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, t, l), np.float32)
    r = rng.integers(40, 120, size=n)
    tt = np.arange(t)[None, :, None]
    x += 1.5 * np.exp(-0.5 * ((tt - r[:, None, None]) / 4.0) ** 2)  # a QRS-like spike at R
    valid = tt[..., 0] < rng.integers(150, t + 1, size=n)[:, None]
    return x * valid[..., None], r.astype(np.int32), valid


def test_signal_power_is_peak_to_peak_squared_over_8():
    x, r, valid = _beats()
    s = noise.qrs_signal_power(x, r, valid, fs=360.0)
    np.testing.assert_allclose(s, 1.5**2 / 8, rtol=1e-3)


@pytest.mark.parametrize("snr", [24.0, 6.0, 0.0, -6.0])
def test_added_noise_has_requested_snr(snr):
    x, r, valid = _beats()
    rng = np.random.default_rng(1)
    nz = rng.normal(size=(100_000, 2)).astype(np.float32)
    s = noise.qrs_signal_power(x, r, valid, fs=360.0)
    xn = noise.add_noise(x, valid, nz, snr, signal_power=s, seed=3)
    d = (xn - x)[valid]
    measured = 10 * np.log10(s / np.mean(d.astype(np.float64) ** 2, axis=0))
    np.testing.assert_allclose(measured, snr, atol=0.1)
    assert np.all(xn[~valid] == 0), "padding must stay zero"
    np.testing.assert_array_equal(noise.add_noise(x, valid, nz, snr, signal_power=s, seed=3), xn)


def test_real_noise_records(real_data_dir):
    for name in ("bw", "ma"):
        nz = noise.load_noise(name, real_data_dir, download=False)
        assert nz.shape == (650000, 2)
        np.testing.assert_allclose(nz.mean(axis=0), 0, atol=1e-4)
    with pytest.raises(ValueError, match="unknown noise record"):
        noise.load_noise("xx", real_data_dir)
