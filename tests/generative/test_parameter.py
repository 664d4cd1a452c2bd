"""Parameter queries (qLST by a measured ECG parameter): "QRS width + 40 ms" on synthetic beats whose QRS width is
known. A regressor of the width reads the generated beats; the width measured on them by a model-free
measurement (``synthetic.fwhm``) must rise monotonically along the path, by about the asked change."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from scipy import stats

from ecgjax.errors import DataError
from ecgjax.generative import traverse as TR
from ecgjax.generative import vae as V
from ecgjax.models.layers import Conv1d
from tests.generative import synthetic as syn

FS = 100.0
MS = 1000.0 / FS  # ms per sample


class _WidthNet(nnx.Module):
    """x: f32[B, T, L] -> f32[B, 1]: two convolutions and a dense read-out (a small regressor of the QRS width)."""

    def __init__(self, *, rngs):
        self.c1 = Conv1d(syn.L, 8, 9, rngs=rngs)
        self.c2 = Conv1d(8, 8, 9, stride=2, rngs=rngs)
        self.lin = nnx.Linear(8 * syn.T // 2, 1, rngs=rngs)

    def __call__(self, x):
        return self.lin(nnx.gelu(self.c2(nnx.gelu(self.c1(x)))).reshape(x.shape[0], -1))


@pytest.fixture(scope="module")
def width_setup():
    """(VAE, regressor, mean, std): both trained on 512 synthetic beats of known QRS width (35-141 ms)."""
    x, w = syn.qrs_beats(512, seed=1)
    st = V.VAESettings(in_shape=(syn.T, syn.L), latent=8, width=16, beta=1.0, sigma=0.05, fs=FS)
    vae, _ = V.train_vae(x, st, epochs=12, batch_size=64, lr=3e-3, progress=False)
    ms = w * MS
    mean, std = float(ms.mean()), float(ms.std())
    gd, params = nnx.split(_WidthNet(rngs=nnx.Rngs(0)))
    tx = optax.adam(1e-2)
    opt = tx.init(params)
    yt = jnp.asarray((ms - mean) / std, jnp.float32)

    @jax.jit
    def step(params, opt):
        g = jax.grad(lambda p: jnp.mean((nnx.merge(gd, p)(jnp.asarray(x))[:, 0] - yt) ** 2))(params)
        upd, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, upd), opt

    for _ in range(300):
        params, opt = step(params, opt)
    reg = nnx.merge(gd, params)
    xt, wt = syn.qrs_beats(200, seed=2)
    pred = mean + std * np.asarray(reg(jnp.asarray(xt)))[:, 0]
    assert stats.pearsonr(pred, wt * MS).statistic > 0.97  # the regressor measures the width
    return vae, reg, mean, std


@pytest.mark.slow
def test_qrs_width_query_widens_the_measured_qrs(width_setup):
    vae, reg, mean, std = width_setup
    x, w = syn.qrs_beats(30, seed=5, sigma=(1.7, 3.0))  # 40-71 ms: +40 ms stays inside the trained range
    tr = TR.traverse_parameter(reg, vae, x, 40.0, mean=mean, std=std, n_points=9, progress=False)
    assert tr.beats.shape == (30, 9, syn.T, syn.L) and tr.value.shape == (30, 9)
    assert np.median(tr.spearman()) >= 0.9
    assert tr.reached().mean() >= 0.9
    np.testing.assert_allclose(tr.goal, tr.value[:, 0] + 40.0, rtol=1e-5)
    # the width measured on the generated beats, by no model: monotone, and about +40 ms
    measured = syn.fwhm(tr.beats.reshape(-1, syn.T, syn.L)).reshape(30, 9) * MS
    rho = np.array([stats.spearmanr(np.arange(9), m).statistic for m in measured])
    assert np.median(rho) >= 0.9, rho
    gain = measured[:, -1] - measured[:, 0]
    assert 25.0 <= np.median(gain) <= 55.0, gain
    np.testing.assert_allclose(measured[:, 0], w * MS, atol=12.0)  # the path starts at the beat's own width
    assert (tr.prior_logpdf.min(axis=1) >= TR.prior_bound(8) - 1e-3).mean() >= 0.9
    # the opposite query narrows wide beats
    xw, _ = syn.qrs_beats(20, seed=6, sigma=(4.0, 5.5))
    nar = TR.traverse_parameter(reg, vae, xw, -30.0, mean=mean, std=std, n_points=5, progress=False)
    m = syn.fwhm(nar.beats.reshape(-1, syn.T, syn.L)).reshape(20, 5) * MS
    assert np.median(m[:, -1] - m[:, 0]) <= -15.0


def test_parameter_query_reaches_its_goal_monotonically(trained_vae):
    """Fast check of the same behaviour: the query's value rises monotonically to its goal (a differentiable
    measurement, lead 1's mean over the QRS, as the "regressor"), and bad queries are one clear error."""
    vae, _ = trained_vae

    x = syn.beats(16, seed=11)
    level = np.asarray(x[:, 30:50, 0].mean(1), np.float64)
    mean, std = float(level.mean()), float(level.std())

    class _Level(nnx.Module):  # standardised, as a regressor's output 0
        def __call__(self, x):
            return (jnp.mean(x[:, 30:50, :1], axis=1) - mean) / std  # f32[B, 1]

    delta = 2 * std
    tr = TR.traverse_parameter(_Level(), vae, x, delta, mean=mean, std=std, steps=50, n_points=6, progress=False)
    assert np.median(tr.spearman()) >= 0.9 and tr.reached().mean() >= 0.9
    np.testing.assert_allclose(np.median(tr.value[:, -1] - tr.goal), 0.0, atol=0.3 * delta)
    got = mean + std * np.asarray(_Level()(jnp.asarray(tr.beats.reshape(-1, syn.T, syn.L))))[:, 0]
    np.testing.assert_allclose(tr.value, got.reshape(16, 6), atol=1e-4)  # the values are the generated beats' measurement
    with pytest.raises(DataError, match="nonzero finite change"):
        TR.traverse_parameter(_Level(), vae, x, 0.0, progress=False)
