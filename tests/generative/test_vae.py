"""The beat VAE: it reconstructs a synthetic family, its KL term is the closed form, active units are counted right, it round-trips through orbax."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from flax import nnx

from ecgjax.errors import DataError
from ecgjax.generative import vae as V
from tests.generative import synthetic as syn


@pytest.fixture
def trained(trained_vae):
    return trained_vae


def test_vae_reconstructs_unseen_beats_of_the_family(trained):
    model, hist = trained
    assert hist[-1]["loss"] < 0.1 * hist[0]["loss"]
    xt = syn.beats(100, seed=1, bump=np.arange(100) % 2 == 0)
    r = V.reconstruct(model, xt)
    assert np.median(V.pearson_r(xt, r["x_hat"])) > 0.9
    # better than the class-mean template (the bump is the class)
    y_tr, y = (np.arange(256) % 2 == 0).astype(int), (np.arange(100) % 2 == 0).astype(int)  # 1: the bump
    base = V.template_baseline(syn.beats(256, bump=y_tr == 1), y_tr, xt, y)
    assert np.median(V.mse(xt, r["x_hat"])) < np.median(V.mse(xt, base))


def test_save_load_round_trip(trained, tmp_path):
    model, hist = trained
    V.save_vae(model, tmp_path / "vae", history=hist)
    back = V.load_vae(tmp_path / "vae")
    assert back.settings == model.settings
    # the batch of test_vae_reconstructs_unseen_beats_of_the_family: one compiled reconstruction for both models
    x = syn.beats(100, seed=3)
    got, want = V.reconstruct(back, x), V.reconstruct(model, x)
    for k in ("mu", "logvar", "x_hat"):
        np.testing.assert_allclose(got[k], want[k], atol=1e-6)
    with pytest.raises(DataError, match="no VAE"):
        V.load_vae(tmp_path / "nothing")


def test_the_vae_is_initialised_as_its_constructor_run_op_by_op(monkeypatch, trained_vae):
    """``initialise`` (one compiled program, as train_vae and load_vae build it): every parameter equal, bit for bit,
    to ``BeatVAE(...)`` run op by op; a second seed compiles nothing. (The shared fixture's settings: the suite trains
    it initialised op by op, so those programs are compiled already.)"""
    from ecgjax.models import initialise
    from ecgjax.models.base import INIT_ENV
    from tests.conftest import CompileCounter

    monkeypatch.delenv(INIT_ENV, raising=False)  # the default: one program (the suite initialises op by op)

    st = trained_vae[0].settings
    ref = V.BeatVAE(st, rngs=nnx.Rngs(2))
    got = initialise(V.BeatVAE, nnx.Rngs(2), settings=st)
    assert nnx.graphdef(got) == nnx.graphdef(ref)
    for a, b in zip(jax.tree.leaves(nnx.state(got, nnx.Param)), jax.tree.leaves(nnx.state(ref, nnx.Param)), strict=True):
        np.testing.assert_array_equal(a, b)
    with CompileCounter() as c:
        initialise(V.BeatVAE, nnx.Rngs(3), settings=st)
    assert c.n == 0


def test_kl_matches_closed_form_float64():
    rng = np.random.default_rng(0)
    mu, logvar = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    var = np.exp(logvar)
    # KL(N(mu, var) || N(0, 1)) per dimension, from the densities' definition: log(1/sigma) + (var + mu^2)/2 - 1/2
    ref = (-0.5 * logvar + 0.5 * (var + mu**2) - 0.5).sum(axis=1)
    got = np.asarray(jax.jit(V.kl_diag_normal)(mu.astype(np.float32), logvar.astype(np.float32)))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # and a Monte-Carlo estimate of E_q[log q - log p] agrees
    z = mu[0] + np.sqrt(var[0]) * rng.standard_normal((200_000, 4))
    logq = -0.5 * (((z - mu[0]) ** 2) / var[0] + logvar[0] + np.log(2 * np.pi)).sum(1)
    logp = -0.5 * (z**2 + np.log(2 * np.pi)).sum(1)
    assert abs((logq - logp).mean() - ref[0]) < 0.02


def test_active_units_planted():
    rng = np.random.default_rng(0)
    mu = np.zeros((1000, 6))
    mu[:, 0] = rng.normal(0, 1.0, 1000)
    mu[:, 3] = rng.normal(0, 0.2, 1000)  # variance 0.04 > 0.01
    mu[:, 4] = rng.normal(0, 0.05, 1000)  # variance 0.0025: inactive
    n, var = V.active_units(mu)
    assert n == 2
    assert np.flatnonzero(var > 0.01).tolist() == [0, 3]


def test_pearson_and_mse_use_only_valid_samples():
    x = syn.beats(3, seed=5)
    xh = x.copy()
    xh[:, 80:] += 100.0  # garbage in the padding
    mask = np.zeros(x.shape[:2], bool)
    mask[:, :80] = True
    np.testing.assert_allclose(V.pearson_r(x, xh, mask), 1.0)
    np.testing.assert_allclose(V.mse(x, xh, mask), 0.0)
    assert (V.pearson_r(x, xh) < 0.5).all()
    np.testing.assert_array_equal(V.valid_mask(np.array([0, 2]), np.array([3, 4]), 5),
                                  [[1, 1, 1, 0, 0], [0, 0, 1, 1, 0]])


def test_bad_beats_are_one_clear_error():
    st = V.VAESettings(in_shape=(syn.T, syn.L))
    with pytest.raises(DataError, match="f32\\[N, 96, 2\\]"):
        V.train_vae(np.zeros((4, 50, 2)), st)
    x = syn.beats(4)
    x[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        V.train_vae(x, st)


def test_qrs_sharpness_against_a_loop():
    """Slope ratio and QRS/rest errors against a per-beat loop; a smoothed beat's QRS edges read as blurred (< 1)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 40, 2)).astype(np.float32)
    xh = (x + 0.3 * rng.standard_normal(x.shape)).astype(np.float32)
    r, lo, hi, fs = np.array([20, 10, 30, 5, 20]), np.array([0, 0, 5, 0, 12]), np.array([40, 35, 40, 40, 40]), 100.0
    q = V.qrs_sharpness(x, xh, r, lo, hi, fs, half_s=0.03)
    for i in range(5):
        span = [t for t in range(40) if lo[i] <= t < hi[i] and abs(t - r[i]) <= 3]
        rest = [t for t in range(40) if lo[i] <= t < hi[i] and abs(t - r[i]) > 3]
        steps = [t for t in span if t + 1 in span]
        s0 = max(abs(x[i, t + 1, k] - x[i, t, k]) for t in steps for k in range(2))
        s1 = max(abs(xh[i, t + 1, k] - xh[i, t, k]) for t in steps for k in range(2))
        e = ((x[i].astype(np.float64) - xh[i]) ** 2).mean(axis=1)
        assert q["slope_ratio"][i] == pytest.approx(s1 / s0)
        assert q["mse_qrs"][i] == pytest.approx(e[span].mean())
        assert q["mse_rest"][i] == pytest.approx(e[rest].mean())
    beat, _ = syn.qrs_beats(4, seed=1, sigma=(1.5, 2.0))
    blur = np.stack([np.convolve(b, np.ones(5) / 5, mode="same") for b in beat[..., 0]])[..., None]
    n = len(beat)
    ratio = V.qrs_sharpness(beat[..., :1], blur, np.full(n, syn.QRS_AT), np.zeros(n, int), np.full(n, syn.T), 100.0)["slope_ratio"]
    assert (ratio < 0.8).all() and (V.qrs_sharpness(beat, beat, np.full(n, syn.QRS_AT), np.zeros(n, int),
                                                      np.full(n, syn.T), 100.0)["slope_ratio"] == 1).all()


def test_time_budget_stops_between_epochs(monkeypatch, trained_vae):
    """A budget no epoch fits stops after the first epoch (the loop only: the step is a stand-in, so nothing
    compiles); without one every epoch runs (the shared fixture's 12)."""
    terms = {"loss": 1.0, "recon": 1.0, "kl": 0.0}
    monkeypatch.setattr(V, "make_train_step", lambda *a, **kw: lambda params, opt, x, m, key: (params, opt, terms))
    st = trained_vae[0].settings  # the fixture's shapes: building the model compiles nothing new either
    _, hist = V.train_vae(np.zeros((4, *st.in_shape), np.float32), st, epochs=3, batch_size=4, progress=False, time_budget_s=0.0)
    assert [h["epoch"] for h in hist] == [0]
    assert [h["epoch"] for h in trained_vae[1]] == list(range(12))


def _windows(seed: int = 0):
    """Raw two-lead windows of random level and scale, zero-padded outside a random valid range [lo, hi)."""
    rng = np.random.default_rng(seed)
    n, t = 6, 40
    lo, hi = rng.integers(0, 8, n), rng.integers(28, t + 1, n)
    valid = V.valid_mask(lo, hi, t)
    raw = (rng.normal(size=(n, t, 2)) * rng.uniform(0.5, 3, (n, 1, 2)) + rng.uniform(-2, 2, (n, 1, 2))).astype(np.float32)
    raw[1, :, 1] = 0.7  # a constant lead: every normalisation maps it as data.beats.normalise does
    return np.where(valid[..., None], raw, 0).astype(np.float32), valid


@pytest.mark.parametrize("method", ["zscore_lead", "minmax_lead", "minmax_beat", "none"])
def test_as_input_is_the_protocol_normalisation_of_the_window(method):
    """A generated beat reaches the classifier as data.beats.normalise makes a real window: the decoder's valid
    samples, the window's own padding (garbage the decoder put there is dropped), normalised again; a normalised
    beat is left as it is; the traversal's gradient passes through it."""
    from ecgjax.data.beats import normalise

    raw, valid = _windows()
    garbage = np.where(valid[..., None], raw, 50.0 + np.arange(raw.shape[1])[None, :, None]).astype(np.float32)

    @jax.jit  # one program: the output and the gradient of its lead 1's sum with respect to x_hat
    def fn(xh, x, v):
        return V.as_input(xh, x, v, method), jax.grad(lambda h: V.as_input(h, x, v, method)[:, :, 0].sum())(xh)

    got = np.asarray(fn(garbage, raw, valid.astype(np.float32))[0])
    np.testing.assert_allclose(got, normalise(raw, valid, method), atol=2e-5)
    beat = normalise(raw, valid, method)  # what the data pipeline gives the classifier
    np.testing.assert_allclose(np.asarray(fn(beat, beat, valid.astype(np.float32))[0]), beat, atol=2e-5)
    g = np.asarray(fn(garbage, beat, valid.astype(np.float32))[1])
    assert np.isfinite(g).all() and not g[~valid].any()  # what the decoder put in the padding never reaches the output
    with pytest.raises(ValueError, match="unknown normalisation"):
        V.as_input(beat, beat, valid.astype(np.float32), "zscore")
