"""A VAE trained once on the synthetic family (bump and no bump), shared by the generative tests."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.generative import vae as V
from tests.generative import synthetic as syn


@pytest.fixture(scope="session")
def trained_vae():
    x = syn.beats(256, bump=np.arange(256) % 2 == 0)
    st = V.VAESettings(in_shape=(syn.T, syn.L), latent=8, width=16, beta=1.0, sigma=0.05, fs=100.0)
    return V.train_vae(x, st, epochs=12, batch_size=64, lr=3e-3, progress=False)
