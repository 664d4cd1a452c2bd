"""train_regressor learns a target that is a function of the input, and its BatchNorm statistics are those of the data."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from ecgjax import models
from ecgjax.train.regression import r2_score, recalibrate_batchnorm, train_regressor

KW = {"filters": (4, 4), "lead_layout": "channels", "dropout": 0.0}


def test_recalibrated_batchnorm_holds_the_batch_statistics():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 64, 1)).astype(np.float32)
    m = models.build("ribeiro_cnn", n_classes=1, in_shape=(64, 1), fs=360.0, rngs=nnx.Rngs(0), **KW)
    recalibrate_batchnorm(m, x)
    # the stem's BatchNorm sees the stem convolution's output: its running stats are that output's moments
    h = np.asarray(nnx.jit(lambda mod, v: mod.stem(v))(m, x), np.float64)
    np.testing.assert_allclose(np.asarray(m.bn0.mean[...]), h.mean((0, 1)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(m.bn0.var[...]), h.var((0, 1)), rtol=1e-3, atol=1e-5)
    assert m.bn0.momentum == 0.99


def test_learns_a_segment_mean():
    rng = np.random.default_rng(1)
    N, T = 768, 64
    x = rng.normal(size=(N, T, 1)).astype(np.float32)
    x[:, 20:30] += rng.normal(size=(N, 1, 1)) * 2
    target = x[:, 20:30, 0].mean(1)
    reg = train_regressor("ribeiro_cnn", x, target, np.arange(640), np.arange(640, N), fs=360.0, epochs=6, batch_size=32,
                          lr=3e-3, **KW)
    assert reg.r2_test > 0.5, reg  # a model that learned nothing scores <= 0
    assert reg.std == pytest.approx(target[:640].std(), rel=1e-6)
    pred = reg.predict(x[640:])  # the method reads beats in the target's unit: the R^2 and MAE it was tested with
    assert r2_score(pred, target[640:]) == pytest.approx(reg.r2_test, abs=1e-6)
    assert np.mean(np.abs(pred - target[640:])) == pytest.approx(reg.mae_test, rel=1e-5)
