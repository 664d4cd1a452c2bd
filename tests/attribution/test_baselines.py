"""Baselines against independent references: scipy's Gaussian filter (float64), closed forms, row independence."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter1d

from ecgjax.attribution import baselines, row_keys


@pytest.fixture
def x():
    rng = np.random.default_rng(0)
    return rng.normal(size=(5, 120, 2)).astype(np.float32)


@pytest.mark.parametrize("sigma", [1.5, 6.0, 18.0])
def test_blurred_matches_scipy_gaussian_filter(x, sigma):
    want = gaussian_filter1d(x.astype(np.float64), sigma, axis=1, mode="nearest", truncate=3.0)
    got = baselines.baseline("blurred", x, sigma=sigma)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.std(np.diff(np.asarray(got), axis=1)) < np.std(np.diff(x, axis=1))  # smoother than the beat


def test_zeros_mean_given_and_mean_beat(x):
    np.testing.assert_array_equal(baselines.baseline("zeros", x), 0.0)
    np.testing.assert_allclose(baselines.baseline("mean", x), np.broadcast_to(x.astype(np.float64).mean(1, keepdims=True), x.shape), atol=1e-6)
    mb = baselines.mean_beat(x)
    np.testing.assert_allclose(mb, x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_array_equal(baselines.baseline("given", x, value=mb), np.broadcast_to(mb, x.shape))
    with pytest.raises(ValueError, match="shape"):
        baselines.baseline("given", x, value=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="one of"):
        baselines.baseline("black", x)


def test_uniform_is_in_each_beats_range_and_row_independent(x):
    keys = row_keys(jax.random.key(0), 5)
    u = np.asarray(baselines.baseline("uniform", x, key=keys))
    assert np.all(u >= x.min(1, keepdims=True) - 1e-6) and np.all(u <= x.max(1, keepdims=True) + 1e-6)
    again = np.asarray(baselines.baseline("uniform", x[2:4], key=keys[2:4]))
    np.testing.assert_array_equal(again, u[2:4])  # beat i depends only on beat i and key i
    with pytest.raises(ValueError, match="keys"):
        baselines.baseline("uniform", x)
