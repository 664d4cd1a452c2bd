"""qLST traversal, the planted-feature test: a classifier whose class is a bump in a known segment; the traversal raises the target's probability monotonically, crosses 0.5 and changes that segment most."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from ecgjax.errors import DataError
from ecgjax.generative import traverse as TR
from tests.conftest import CompileCounter
from tests.generative import synthetic as syn


def test_planted_bump_traversal(bump_classifier, trained_vae, planted_query):
    vae, _ = trained_vae
    # traverse(bump_classifier, vae, syn.beats(40, seed=9), 1) with its defaults (11 points): 40 beats without the bump
    # (class 0) towards it, run once for this test and test_explain's planted one (conftest's planted_query)
    tr = planted_query.explanation.traversal
    assert tr.beats.shape == (40, 11, syn.T, syn.L) and tr.z.shape == (40, 11, 8)
    np.testing.assert_allclose(tr.z[:, -1] - tr.z[:, 0], tr.direction, atol=1e-5)
    assert np.median(tr.prob[:, 0]) < 0.5
    assert np.median(tr.spearman()) >= 0.9
    assert (tr.prob[:, -1] > 0.5).mean() >= 0.9
    # the generated beats change the planted segment most
    seg = tr.change().mean(axis=2).reshape(40, syn.T // 16, 16).mean(axis=2)  # [B, 6 segments]
    assert (seg.argmax(axis=1) == syn.BUMP[0] // 16).mean() >= 0.9
    # the paths stay where the prior has mass: inside the sphere holding 0.99 of N(0, I)
    inside = (tr.prior_logpdf.min(axis=1) > TR.prior_bound(8)).mean()
    assert inside >= 0.9, inside
    # the query away from the bump on bump beats moves the same segment (the planted query's batch and path: its
    # compiled traversal; 100 steps: the bump is gone from every beat after 40)
    back = TR.traverse(bump_classifier, vae, syn.beats(40, seed=10, bump=np.ones(40, bool)), 0, steps=100, progress=False)
    assert (back.prob[:, -1] > 0.5).mean() >= 0.9
    assert (back.change().mean(axis=2).reshape(40, 6, 16).mean(axis=2).argmax(1) == 4).mean() >= 0.9


def test_prior_terms_against_scipy():
    z = np.random.default_rng(0).normal(size=(3, 5))
    np.testing.assert_allclose(np.asarray(TR.normal_logpdf(jnp.asarray(z))),
                               stats.multivariate_normal(np.zeros(5), np.eye(5)).logpdf(z), rtol=1e-5)
    # a point on the 0.999 sphere sits exactly at the bound
    r = np.sqrt(stats.chi2.ppf(0.999, 5))
    np.testing.assert_allclose(stats.multivariate_normal(np.zeros(5), np.eye(5)).logpdf(np.r_[r, 0, 0, 0, 0]),
                               TR.prior_bound(5, 0.999), rtol=1e-9)


def test_paths_are_held_inside_the_prior_ball(bump_classifier, trained_vae):
    """With a small ball (mass 0.3) and no proximity penalty, every point stays within max(ball, the start's norm).
    The optimiser's settings are arguments of the compiled traversal: the unbounded run with other steps and lr
    compiles nothing more."""
    vae, _ = trained_vae
    x = syn.beats(40, seed=16)  # the batch of test_planted_bump_traversal's queries: the same program
    r2 = stats.chi2.ppf(0.3, 8)
    tr = TR.traverse(bump_classifier, vae, x, 1, proximity=0.0, prior_mass=0.3, steps=30, progress=False)
    with CompileCounter() as c:
        free = TR.traverse(bump_classifier, vae, x, 1, proximity=0.0, prior_mass=None, steps=40, lr=0.06, progress=False)
    assert c.n == 0
    norm2 = (tr.z**2).sum(-1)
    assert (norm2 <= np.maximum(r2, norm2[:, :1]) * (1 + 1e-4)).all()
    assert ((free.z[:, -1] ** 2).sum(-1) > np.maximum(r2, norm2[:, 0]) * 1.01).any()  # the constraint was active


def test_wrong_window_is_one_clear_error(bump_classifier, trained_vae):
    with pytest.raises(DataError, match="VAE's window"):
        TR.traverse(bump_classifier, trained_vae[0], np.zeros((2, 50, 2), np.float32), 1, progress=False)


@pytest.mark.heavy
def test_traversed_beats_are_read_as_real_beats(bump_classifier, trained_vae):
    """With the window's valid range and normalisation the classifier reads every generated beat as the data pipeline
    makes a real one (vae.as_input): the padding is the window's own (0) and each lead is z-scored over its valid
    samples; the first point's probability is the classifier's on the projected reconstruction."""
    import jax
    from flax import nnx

    from ecgjax.generative.vae import as_input, valid_mask

    vae, _ = trained_vae
    x = syn.beats(8, seed=11)
    lo, hi = np.zeros(8, np.int32), np.full(8, syn.T - 10, np.int32)
    valid = valid_mask(lo, hi, syn.T)
    x = np.where(valid[..., None], x, 0).astype(np.float32)
    tr = TR.traverse(bump_classifier, vae, x, 1, steps=20, n_points=3, lo=lo, hi=hi, normalisation="zscore_lead",
                     progress=False)
    assert not tr.beats[:, :, ~valid[0]].any()
    v = tr.beats[:, :, valid[0]]  # [B, P, valid T, L]
    np.testing.assert_allclose(v.mean(axis=2), 0, atol=1e-4)
    np.testing.assert_allclose(v.std(axis=2), 1, atol=1e-3)
    first = nnx.jit(lambda c, m, xb, w: jax.nn.softmax(c(as_input(m(xb), xb, w, "zscore_lead")), -1)[:, 1])(
        bump_classifier, vae, x, valid.astype(np.float32))
    np.testing.assert_allclose(tr.prob[:, 0], np.asarray(first), atol=1e-4)
