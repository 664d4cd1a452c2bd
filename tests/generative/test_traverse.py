"""qLST traversal, the planted-feature test: a classifier whose class is a bump in a known segment; the traversal raises the target's probability monotonically, crosses 0.5 and changes that segment most."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from ecgjax.errors import DataError
from ecgjax.generative import traverse as TR
from ecgjax.models.layers import Conv1d
from tests.generative import synthetic as syn


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


@pytest.fixture(scope="module")
def bump_classifier():
    y = (np.arange(512) % 2).astype(np.int32)  # 1: the bump
    x = syn.beats(512, seed=7, bump=y == 1)
    model = _Tiny(rngs=nnx.Rngs(0))
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

    for _ in range(150):
        params, opt = step(params, opt)
    model = nnx.merge(gd, params)
    xt = syn.beats(100, seed=8, bump=np.arange(100) % 2 == 1)
    acc = (np.asarray(model(jnp.asarray(xt))).argmax(1) == np.arange(100) % 2).mean()
    assert acc > 0.95
    return model


def test_planted_bump_traversal(bump_classifier, trained_vae):
    vae, _ = trained_vae
    x = syn.beats(40, seed=9)  # no bump: class 0
    tr = TR.traverse(bump_classifier, vae, x, 1, n_points=11, progress=False)
    assert tr.beats.shape == (40, 11, syn.T, syn.L) and tr.z.shape == (40, 11, 8)
    np.testing.assert_allclose(tr.z[:, -1] - tr.z[:, 0], tr.direction, atol=1e-5)
    assert np.median(tr.prob[:, 0]) < 0.5
    assert np.median(tr.spearman()) >= 0.9
    assert (tr.prob[:, -1] > 0.5).mean() >= 0.9
    # the generated beats change the planted segment most
    seg = tr.change().mean(axis=2).reshape(40, syn.T // 16, 16).mean(axis=2)  # [B, 6 segments]
    assert (seg.argmax(axis=1) == syn.BUMP[0] // 16).mean() >= 0.9
    # the paths stay where the prior has mass: inside the sphere holding 0.999 of N(0, I)
    inside = (tr.prior_logpdf.min(axis=1) > TR.prior_bound(8)).mean()
    assert inside >= 0.9, inside
    # the query away from the bump on bump beats moves the same segment
    back = TR.traverse(bump_classifier, vae, syn.beats(20, seed=10, bump=np.ones(20, bool)), 0, progress=False)
    assert (back.prob[:, -1] > 0.5).mean() >= 0.9
    assert (back.change().mean(axis=2).reshape(20, 6, 16).mean(axis=2).argmax(1) == 4).mean() >= 0.9


def test_prior_terms_against_scipy():
    from scipy import stats

    z = np.random.default_rng(0).normal(size=(3, 5))
    np.testing.assert_allclose(np.asarray(TR.normal_logpdf(jnp.asarray(z))),
                               stats.multivariate_normal(np.zeros(5), np.eye(5)).logpdf(z), rtol=1e-5)
    # a point on the 0.999 sphere sits exactly at the bound
    r = np.sqrt(stats.chi2.ppf(0.999, 5))
    np.testing.assert_allclose(stats.multivariate_normal(np.zeros(5), np.eye(5)).logpdf(np.r_[r, 0, 0, 0, 0]),
                               TR.prior_bound(5), rtol=1e-9)


def test_wrong_window_is_one_clear_error(bump_classifier, trained_vae):
    with pytest.raises(DataError, match="VAE's window"):
        TR.traverse(bump_classifier, trained_vae[0], np.zeros((2, 50, 2), np.float32), 1, progress=False)
