"""TCAV: activations and gradients at a named layer against their closed form, a planted concept is
significant for the class that reads it (and not a random concept), and the beat concepts, also as the
default delineation finds them on closed-form beats."""

from __future__ import annotations

import types

import jax.numpy as jnp
import numpy as np
import pytest

from ecgjax.attribution import tcav

from conftest import linear_init, linear_make

T, L = 48, 2


def _bump_model():
    """Linear model: class 1's logit is 2 x the sum of lead 0 over samples 16..19, class 0's its negative."""
    W = np.zeros((T, L, 4), np.float32)
    W[16:20, 0, 1], W[16:20, 0, 0] = 2.0, -2.0
    return linear_make, {"W": jnp.asarray(W), "b": jnp.zeros(4)}


def test_activations_and_gradients_closed_form():
    import jax

    p = linear_init(jax.random.key(0))
    x = np.random.default_rng(0).normal(size=(5, T, L)).astype(np.float32)
    t = np.array([0, 1, 2, 3, 1], np.int32)
    a, g = tcav.activations_and_gradients((linear_make, p), "features", x, t, batch_size=4)
    np.testing.assert_allclose(a, x.reshape(5, -1), rtol=1e-6)  # the linear model's layer is its input
    np.testing.assert_allclose(g, np.moveaxis(np.asarray(p["W"])[..., t], -1, 0).reshape(5, -1), rtol=1e-6)


def test_planted_concept_is_significant_for_the_class_that_reads_it_and_a_random_one_is_not():
    rng = np.random.default_rng(0)
    model = _bump_model()
    noise = rng.normal(0, 1, (300, T, L)).astype(np.float32)
    bumped = rng.normal(0, 1, (40, T, L)).astype(np.float32)
    bumped[:, 16:20, 0] += 3.0
    acts = lambda x, c: tcav.activations_and_gradients(model, "features", x, np.full(len(x), c, np.int32))  # noqa: E731
    concept, _ = acts(bumped, 1)
    pool, _ = acts(noise[:200], 1)
    _, g1 = acts(noise[200:], 1)
    _, g0 = acts(noise[200:], 0)
    # one linear model: every beat has the same gradient, so each CAV scores 0 or 1 and random CAVs average ~0.5
    r1 = tcav.tcav(concept, pool, g1, n_random=20, concept="bump", cls="1", layer="features")
    r0 = tcav.tcav(concept, pool, g0, n_random=20)
    assert r1.summary()["score_mean"] == 1.0 and r1.p_value < 0.01 and np.mean(r1.cav_accuracy) > 0.9
    assert r0.summary()["score_mean"] == 0.0 and r0.p_value < 0.01  # significant the other way
    fake = tcav.tcav(pool[:40], pool[40:], g1, n_random=20, seed=1)  # a random set posing as a concept
    assert fake.p_value > 0.05
    with pytest.raises(ValueError, match="random beats"):
        tcav.tcav(concept, pool[:50], g1)


def test_beat_concepts_from_waves_and_rr():
    from ecgjax.data.delineation import Waves

    fs = 360.0
    n = 6
    rec = np.array(["a"] * 3 + ["b"] * 3)
    rr = np.array([360, 200, 360, 300, 300, 100])  # a: median 360 -> beat 1 premature; b: median 300 -> beat 5
    beats = types.SimpleNamespace(fs=fs, record=rec, rr_prev=rr)
    b = np.tile(np.array([10, 40, 60, 90, 120, 200], np.float32), (n, 1))  # QRS 30 samples = 83 ms
    b[2, 3] = 60 + 0.15 * fs  # beat 2: QRS 150 ms
    b[4, :2] = np.nan  # beat 4: no P wave
    b[3, :3] = np.nan  # beat 3: no P wave, and no QRS onset: its delineation failed, so it is no example of absent P
    waves = Waves(b, np.array([True, True, True, False, True, True]), {}, "envelope")
    idx = np.arange(10, 16)
    c = tcav.beat_concepts(types.SimpleNamespace(fs=fs, record=np.r_[np.full(10, "z"), rec], rr_prev=np.r_[np.full(10, 360), rr]),
                           idx, waves)
    assert c["wide_qrs"].tolist() == [12] and c["absent_p"].tolist() == [14] and c["premature"].tolist() == [11, 15]
    assert set(tcav.beat_concepts(beats, np.arange(n), None)) == {"premature"}



def _planted_beats(n: int = 120):
    """Closed-form beats (``ecgjax.data.closed_form``): a random ~35% with a 160 ms QRS (else 80 ms), a
    random ~30% without a P wave; (x, r, wide, no_p, the envelope delineation's concepts among the inner beats)."""
    from ecgjax.data.delineation import Waves, delineate, quality
    from ecgjax.data.closed_form import closed_form_beats

    rng = np.random.default_rng(0)
    fs = 360.0
    wide, no_p = rng.random(n) < 0.35, rng.random(n) < 0.3
    x, r, _ = closed_form_beats(np.where(wide, 160, 80), p_wave=~no_p, n_beats=n)
    b = delineate(x, r, fs)
    beats = types.SimpleNamespace(fs=fs, record=np.full(n, "syn"), rr_prev=np.full(n, int(0.8 * fs)))
    inner = np.arange(1, n - 1)
    return x, r, wide, no_p, inner, tcav.beat_concepts(beats, inner, Waves(b[inner], quality(b[inner], r[inner], fs), {}, "envelope"))


def test_wide_qrs_and_absent_p_concepts_are_the_planted_beats():
    """The default (envelope) delineation's concepts are exactly the beats planted with a wide QRS / without a P."""
    _, _, wide, no_p, inner, c = _planted_beats(60)
    assert c["wide_qrs"].tolist() == inner[wide[inner]].tolist()
    assert c["absent_p"].tolist() == inner[no_p[inner]].tolist() and len(c["premature"]) == 0


@pytest.mark.slow
def test_wide_qrs_concept_from_the_delineation_is_significant_for_a_model_that_reads_it():
    """(slow: 40 logistic regressions; the fast checks: the test above and the planted-concept test.) A linear
    classifier whose class 1 reads the planted wide-minus-narrow template scores the delineation's wide-QRS concept
    1, significantly against random concepts (random sets of narrow beats); a random set posing as a concept is
    not significant."""
    x, r, wide, _, _, c = _planted_beats()
    win = np.stack([x[k - T // 2 : k + T // 2] for k in r]).astype(np.float32)[..., None]  # [n, T, 1]
    W = np.zeros((T, 1, 4), np.float32)
    W[..., 1] = win[wide].mean(0) - win[~wide].mean(0)
    model = (linear_make, {"W": jnp.asarray(W), "b": jnp.zeros(4)})
    acts = lambda idx: tcav.activations_and_gradients(model, "features", win[idx], np.ones(len(idx), np.int32))  # noqa: E731
    concept, _ = acts(c["wide_qrs"])
    pool, g1 = acts(np.flatnonzero(~wide))  # random sets of beats without the concept: their CAVs point anywhere
    r1 = tcav.tcav(concept, pool, g1, n_random=10, set_size=15, concept="wide_qrs", cls="1")
    assert r1.summary()["score_mean"] == 1.0 and r1.p_value < 0.05, r1.summary()  # 10 sets: a Bernoulli(1/2) null gives p ~ 0.01
    fake = tcav.tcav(pool[:15], pool[15:], g1, n_random=10, seed=3)
    assert fake.p_value > 0.05, fake.summary()
