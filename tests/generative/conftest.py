"""A VAE and bump classifiers trained once on the synthetic family (bump and no bump), and the planted query run once
with them, shared by the generative tests."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from ecgjax import models
from ecgjax.generative import explain as EX
from ecgjax.generative import vae as V
from ecgjax.models.layers import Conv1d
from tests.generative import synthetic as syn


@pytest.fixture(scope="session")
def trained_vae():
    x = syn.beats(256, bump=np.arange(256) % 2 == 0)
    st = V.VAESettings(in_shape=(syn.T, syn.L), latent=8, width=16, beta=1.0, sigma=0.05, fs=100.0)
    return V.train_vae(x, st, epochs=12, batch_size=64, lr=3e-3, progress=False)


class _Tiny(nnx.Module):
    """x: f32[B, T, L] -> logits f32[B, 2]: a convolution and a linear read-out of the planted segment only.

    The classifier sees nothing else, so the one right explanation is a change of that segment; a change
    elsewhere is the traversal's (or the VAE's) doing.
    """

    def __init__(self, *, rngs):
        self.conv = Conv1d(syn.L, 4, 9, rngs=rngs)
        self.lin = nnx.Linear((syn.BUMP[1] - syn.BUMP[0]) * 4, 2, rngs=rngs)

    def __call__(self, x):
        h = nnx.gelu(self.conv(x))[:, syn.BUMP[0] : syn.BUMP[1]]
        return self.lin(h.reshape(x.shape[0], -1))


def fit_bump(model: nnx.Module, steps: int = 150, n: int = 512) -> nnx.Module:
    """``model`` trained (full-batch Adam on ``n`` beats) to tell bump beats (class 1) from the rest; asserts it learned."""
    y = (np.arange(n) % 2).astype(np.int32)  # 1: the bump
    x = syn.beats(n, seed=7, bump=y == 1)
    gd, params = nnx.split(model)
    tx = optax.adam(1e-2)
    opt = tx.init(params)

    @jax.jit
    def step(params, opt):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(nnx.merge(gd, p)(jnp.asarray(x)), y).mean()

        g = jax.grad(loss)(params)
        upd, opt = tx.update(g, opt, params)
        return optax.apply_updates(params, upd), opt

    for _ in range(steps):
        params, opt = step(params, opt)
    model = nnx.merge(gd, params)
    xt = syn.beats(100, seed=8, bump=np.arange(100) % 2 == 1)
    acc = (np.asarray(nnx.jit(lambda m, v: m(v))(model, xt)).argmax(1) == np.arange(100) % 2).mean()
    assert acc > 0.95
    return model


@pytest.fixture(scope="session")
def bump_classifier():
    return fit_bump(_Tiny(rngs=nnx.Rngs(0)))


@functools.cache
def fns(model: nnx.Module) -> models.Fns:
    """An ``Fns`` over a plain module (saliency needs only the logits). One per module: the attribution runner compiles
    a program per ``Fns`` object (it holds the module as a constant), so the module's saliency maps of any beats of one
    shape share it."""
    return models.Fns(logit_fn=model, feature_fn=lambda x: x, head_fn=model)


@pytest.fixture(scope="session")
def planted_query(bump_classifier, trained_vae):
    """The planted query, run once for test_explain's and test_traverse's planted tests (a 300-step traversal of 40
    beats: the generative tests' longest run): the bump class's saliency profiles (per segment and per wave) on 40 bump
    beats, and ``explain_class`` of 40 beats without the bump (class 0) towards it, whose ``traversal`` is ``traverse``
    with its defaults (every sample valid)."""
    vae, _ = trained_vae
    x = syn.beats(40, seed=9)
    bump = syn.beats(40, seed=11, bump=np.ones(40, bool))
    bounds = np.tile(np.array(syn.WAVE_BOUNDS, np.float32), (40, 1))
    prof, wave_prof = EX.class_saliency_profile(fns(bump_classifier), bump, 1, *syn.where(40), syn.FS, n_leads=2,
                                                bounds=bounds, progress=False)
    ex = EX.explain_class(bump_classifier, vae, x, 1, *syn.where(40), syn.FS, profile=prof, bounds=bounds,
                          wave_profile=wave_prof, progress=False)
    return SimpleNamespace(x=x, profile=prof, wave_profile=wave_prof, explanation=ex)
