"""Explanations by generation: the per-segment change of a planted-feature traversal, its agreement with saliency,
the randomised-classifier sanity check, the classifier on reconstructions, and every registered model family
(CNN, LSTM, the two-input RR model) traversed through the model contract."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from ecgjax import models
from ecgjax.generative import explain as EX
from ecgjax.models.layers import Conv1d
from tests.generative import synthetic as syn
from tests.generative.conftest import fit_bump
from tests.generative.conftest import fns as _fns
from tests.generative.synthetic import FS, WAVE_BOUNDS
from tests.generative.synthetic import where as _where

BUMP_SEG = "+4"  # the bump's peak (sample 72) lies in [R + 30, R + 40) (syn.R: the QRS peak)


class _Whole(nnx.Module):
    """x: f32[B, T, L] -> logits f32[B, 2] reading the whole beat (two convolutions, a dense read-out)."""

    def __init__(self, *, rngs):
        self.c1 = Conv1d(syn.L, 8, 9, rngs=rngs)
        self.c2 = Conv1d(8, 8, 9, stride=2, rngs=rngs)
        self.lin = nnx.Linear(8 * syn.T // 2, 2, rngs=rngs)

    def __call__(self, x):
        h = nnx.gelu(self.c2(nnx.gelu(self.c1(x))))
        return self.lin(h.reshape(x.shape[0], -1))


def test_segment_change_against_a_loop():
    rng = np.random.default_rng(0)
    beats = rng.normal(size=(3, 4, syn.T, 2)).astype(np.float32)
    r, lo, hi = np.array([40, 35, 50]), np.array([0, 5, 0]), np.array([96, 96, 80])
    got, labels = EX.segment_change(beats, r, lo, hi, FS)
    k = got.shape[2] // 2
    assert labels[0] == f"L1-{k // 2}" and labels[k] == f"L2-{k // 2}"
    for b in range(3):
        for p in range(4):
            for lead in range(2):
                for s, name in enumerate(labels[lead * k : (lead + 1) * k]):
                    off = int(name[2:])  # "L1-4" -> -4, "L2+3" -> 3
                    a = r[b] + (off * 10 if off < 0 else (off - 1) * 10)
                    if a < lo[b] or a + 10 > hi[b]:
                        assert np.isnan(got[b, p, lead * k + s])
                    else:
                        want = np.abs(beats[b, p, a : a + 10, lead] - beats[b, 0, a : a + 10, lead]).mean()
                        np.testing.assert_allclose(got[b, p, lead * k + s], want, rtol=1e-5)
    assert np.all(got[:, 0][np.isfinite(got[:, 0])] == 0)  # the path's first beat did not change


def test_wave_change_against_a_loop():
    rng = np.random.default_rng(2)
    beats = rng.normal(size=(2, 3, syn.T, 2)).astype(np.float32)
    bounds = np.array([WAVE_BOUNDS, (np.nan, np.nan, 30, 50, 60, 90)], np.float32)  # beat 1: no P wave found
    lo, hi = np.zeros(2, int), np.array([96, 85])
    got, labels = EX.wave_change(beats, bounds, lo, hi, lead_names=("MLII", "V1"))
    assert labels[:5] == ("MLII:P", "MLII:PR", "MLII:QRS", "MLII:ST", "MLII:T") and got.shape == (2, 3, 10)
    for b in range(2):
        for w in range(5):
            a, e = bounds[b, w], bounds[b, w + 1]
            for lead in range(2):
                if np.isnan(a) or np.isnan(e):
                    assert np.isnan(got[b, :, lead * 5 + w]).all()
                    continue
                sl = slice(int(a), min(int(e), hi[b]))
                want = np.abs(beats[b, :, sl, lead] - beats[b, :1, sl, lead]).mean(axis=1)
                np.testing.assert_allclose(got[b, :, lead * 5 + w], want, rtol=1e-5)


def test_agreement_and_consistency_against_scipy():
    rng = np.random.default_rng(1)
    prof = rng.normal(size=12)
    change = rng.normal(size=(5, 12))
    change[0, 3] = np.nan
    got = EX.agreement(change, prof)
    np.testing.assert_allclose(got[1:], [stats.spearmanr(c, prof).statistic for c in change[1:]])
    keep = np.arange(12) != 3
    np.testing.assert_allclose(got[0], stats.spearmanr(change[0, keep], prof[keep]).statistic)
    c = rng.normal(size=(4, 12))
    pairs = [stats.spearmanr(c[i], c[j]).statistic for i in range(4) for j in range(i + 1, 4)]
    np.testing.assert_allclose(EX.consistency(c), np.median(pairs))
    same = np.tile(np.arange(12.0), (4, 1))
    assert EX.consistency(same) == pytest.approx(1.0)


def test_planted_traversal_changes_the_planted_segment_and_agrees_with_saliency(bump_classifier, planted_query):
    # 40 beats without the bump (class 0) explained towards the bump class, with its saliency profiles (conftest: the
    # traversal is test_traverse's planted one, run once)
    x, wave_prof, ex = planted_query.x, planted_query.wave_profile, planted_query.explanation
    s = ex.summary()
    assert s["top_segment"].endswith(BUMP_SEG), s
    assert s["top_wave"].endswith(":T"), s  # the bump is the planted "T wave"
    assert ex.waves[1][int(np.nanargmax(wave_prof))].endswith(":T")  # and the T wave is where saliency is highest
    assert s["frac_inside_prior_bound"] == 1.0  # (monotonicity and crossing: test_traverse's planted test)
    assert s["median_agreement"] > 0.5 and s["class_agreement"] > 0.5, s
    assert s["consistency"] > 0.8, s
    # each beat's own saliency of the target ranks the segments as its change does (the beats being traversed)
    own = EX.source_saliency(_fns(bump_classifier), x, 1, *_where(40), FS, n_leads=2, progress=False)
    assert own.shape == ex.change[:, -1].shape
    assert np.nanmedian(EX.paired_agreement(ex.change[:, -1], own)) > 0.5
    # the change grows along the path at the planted segment
    col = ex.labels.index("L1" + BUMP_SEG)
    assert (np.diff(np.median(ex.change[:, :, col], axis=0)) >= -1e-6).all()


@pytest.mark.heavy
def test_randomised_classifier_traversals_disagree_with_saliency(trained_vae):
    """Cascading randomisation's spirit for generative explanations: a trained classifier's traversals move the
    segments its class's saliency profile ranks high; re-initialised weights' traversals do not.

    (The per-segment change of any traversal is dominated by where the beat has energy, so the consistency across
    beats does not tell trained from random on this homogeneous family; the agreement with saliency does.)
    """
    vae, _ = trained_vae
    x = syn.beats(16, seed=12)
    where = _where(16)
    kw = dict(steps=150, progress=False)
    trained = fit_bump(_Whole(rngs=nnx.Rngs(0)), steps=30, n=64)  # right on every held-out beat after 20 steps
    prof, _ = EX.class_saliency_profile(_fns(trained), syn.beats(16, seed=13, bump=np.ones(16, bool)), 1, *where, FS,
                                        n_leads=2, progress=False)
    ex_t = EX.explain_class(trained, vae, x, 1, *where, FS, profile=prof, **kw)
    agree_t = ex_t.summary()["median_agreement"]
    for seed in (2, 3):
        ex_r = EX.explain_class(_Whole(rngs=nnx.Rngs(seed)), vae, x, 1, *where, FS, profile=prof, **kw)
        agree_r = ex_r.summary()["median_agreement"]
        assert agree_t - agree_r > 0.2, (agree_t, agree_r)
        # and the randomised classifier moves the beats another way than the trained one (slow test: trained seeds agree)
        same = EX.direction_agreement(ex_t.traversal.signed_change(), ex_r.traversal.signed_change())
        assert same["class_cosine"] < 0.5, same


def test_classifier_on_reconstructions(bump_classifier, trained_vae):
    vae, _ = trained_vae
    y = (np.arange(60) % 2).astype(np.int32)
    x = syn.beats(60, seed=14, bump=y == 1)
    f = EX.reconstruction_fidelity(bump_classifier, vae, x, y, progress=False)
    # the classifier called directly on the beats and on the VAE's output (one compiled program, not op by op)
    logits0, logits1 = nnx.jit(lambda c, v, xb: (c(xb), c(v(xb))))(bump_classifier, vae, x)
    p0, p1 = np.asarray(logits0).argmax(1), np.asarray(logits1).argmax(1)
    np.testing.assert_array_equal(f["pred_original"], p0)
    np.testing.assert_array_equal(f["pred_reconstructed"], p1)
    assert f["acc_original"] == pytest.approx((p0 == y).mean()) and f["acc_gap"] == pytest.approx((p0 == y).mean() - (p1 == y).mean())
    assert f["acc_reconstructed"] > 0.9  # the VAE keeps the bump, so the classifier still sees it


@pytest.mark.heavy
@pytest.mark.parametrize("name,kwargs", [pytest.param("jones2020_cnn", {}, marks=pytest.mark.slow), ("jones2020_lstm", {}),
                                         # one convolution block (of three): the same two-input contract, a smaller program
                                         ("rr_net", {"rr_features": ("pre", "post"), "filters": (8,)})])
def test_every_model_family_is_traversed_through_the_contract(name, kwargs, trained_vae):
    """Untrained registry models: the traversal raises the target's probability, and a two-input model's extra
    channels (RR features) are held fixed (its first point is the classifier on [reconstruction, the beat's RR])."""
    vae, _ = trained_vae
    n_extra = len(kwargs.get("rr_features", ()))
    model = models.build(name, n_classes=3, in_shape=(syn.T, syn.L + n_extra), fs=FS, rngs=nnx.Rngs(0), **kwargs)
    x = syn.beats(4, seed=15)
    if n_extra:
        rr = np.random.default_rng(0).uniform(0.5, 1.5, (4, n_extra)).astype(np.float32)
        x = np.concatenate([x, np.broadcast_to(rr[:, None], (4, syn.T, n_extra))], axis=-1)
    ex = EX.explain_class(model, vae, x, 2, *_where(4), FS, steps=30, n_points=5, progress=False)
    view = models.eval_view(model)

    @nnx.jit  # one compiled program (op by op, every primitive compiles on its own)
    def first_point(view, vae, xb):
        first = jnp.concatenate([vae(xb[..., :2]), xb[..., 2:]], axis=-1)
        return jax.nn.softmax(view(first), -1)[:, 2]

    want = np.asarray(first_point(view, vae, x))
    np.testing.assert_allclose(ex.traversal.prob[:, 0], want, rtol=1e-4, atol=1e-6)
    assert (ex.traversal.prob[:, -1] > ex.traversal.prob[:, 0]).all()
    assert ex.change.shape[:2] == (4, 5) and np.isfinite(ex.change[:, -1]).any()
    prof, _ = EX.class_saliency_profile(model, x, 2, *_where(4), FS, n_leads=2, progress=False)
    assert prof.shape == (ex.change.shape[2],) and np.isfinite(prof).any()


def test_direction_agreement_against_a_loop():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    got = EX.direction_agreement(a, b)
    cos = lambda u, v: u @ v / np.linalg.norm(u) / np.linalg.norm(v)  # noqa: E731
    ua, ub = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    assert got["class_cosine"] == pytest.approx(cos(ua.mean(0), ub.mean(0)))
    assert got["median_beat_cosine"] == pytest.approx(np.median([cos(u, v) for u, v in zip(a, b)]))
    assert EX.direction_agreement(a, 3 * a)["class_cosine"] == pytest.approx(1.0)
    assert EX.direction_agreement(a, -a)["median_beat_cosine"] == pytest.approx(-1.0)


@pytest.mark.slow
def test_traversal_directions_agree_across_trained_seeds_not_with_random_ones(trained_vae):
    """The seed sanity check: two classifiers trained from different initialisations move the same beats the same
    way (the generated beats' signed change; they learned the same class); a randomised classifier's traversal
    agrees with neither. (Two random initialisations can agree with each other, ~0.7 here: they share the
    architecture's bias, not a class; the check is trained-vs-trained against trained-vs-random.)"""
    vae, _ = trained_vae
    x = syn.beats(16, seed=12)
    kw = dict(steps=150, progress=False)
    d = lambda m: EX.explain_class(m, vae, x, 1, *_where(16), FS, **kw).traversal.signed_change()  # noqa: E731
    trained = [d(fit_bump(_Whole(rngs=nnx.Rngs(s)), steps=100)) for s in (0, 1)]
    seeds = EX.direction_agreement(*trained)
    assert seeds["class_cosine"] > 0.8 and seeds["median_beat_cosine"] > 0.7, seeds
    for s in (2, 3):
        rand = d(_Whole(rngs=nnx.Rngs(s)))
        for t in trained:
            vs = EX.direction_agreement(t, rand)
            assert vs["class_cosine"] < seeds["class_cosine"] - 0.3, (seeds, vs)


def test_reconstruction_diagnosis_counts_and_medians(trained_vae):
    """Per class: recalls, lost / gained beats and where the lost went, against direct counts; flipped + kept = all."""
    from ecgjax.generative import vae as V

    vae, _ = trained_vae
    x = syn.beats(30, seed=21, bump=np.arange(30) % 2 == 1)
    y = np.array([0, 1, 2] * 10)
    p0 = np.array([0, 1, 2, 0, 0, 2] * 5)
    p1 = np.array([0, 2, 1, 1, 0, 2] * 5)
    n = len(x)
    r, lo, hi = np.full(n, 40), np.zeros(n, int), np.full(n, syn.T)
    rec = np.array(["r1", "r2", "r1"] * 10)
    sym = np.array(list("NNLNRL") * 5)
    pt = np.linspace(0.4, 1.0, n)
    d = EX.reconstruction_diagnosis(vae, x, y, p0, p1, r, lo, hi, FS, ["a", "b", "c"], record=rec, symbol=sym, prob_true=pt)
    b = d["per_class"]["b"]  # class 1: p0 right on 5 of 10 (the rest 0), p1 wrong on all
    assert b["recall_original"] == 0.5 and b["recall_reconstructed"] == 0.0
    assert b["lost"] == 5 and b["gained"] == 0 and b["lost_to"] == {"c": 5}
    assert b["lost_records"] == {"r2": 5} and d["per_class"]["a"]["lost_records"] == {"r1": 5}
    lost_b = (y == 1) & (p0 == 1) & (p1 != 1)  # beats 1, 7, 13, ... (symbol N)
    assert b["lost_symbols"] == {"N": 5} and d["per_class"]["c"]["lost_symbols"] == {"L": 5}
    assert b["lost_median_p_true"] == pytest.approx(np.median(pt[lost_b]))
    kept_a = (y == 0) & (p0 == 0) & (p1 == 0)
    assert d["per_class"]["a"]["median_p_true_kept"] == pytest.approx(np.median(pt[kept_a]))
    c = d["per_class"]["c"]  # class 2: p0 right on 10; p1 says 1 on 5 of them
    assert (c["lost"], c["gained"], c["lost_to"]) == (5, 0, {"b": 5})
    a = d["per_class"]["a"]
    assert (a["recall_original"], a["recall_reconstructed"], a["gained"]) == (1.0, 0.5, 0)
    assert d["flipped"]["n"] + d["kept"]["n"] == n and d["flipped"]["n"] == int((p0 != p1).sum())
    rho = V.pearson_r(x, V.reconstruct(vae, x)["x_hat"])
    assert a["median_r"] == pytest.approx(np.median(rho[y == 0]))
    assert b["lost_median_r"] == pytest.approx(np.median(rho[(y == 1) & (p0 == 1) & (p1 != 1)]))


def test_agreement_contrast_against_scipy():
    """Per-beat Spearman with the profile, their medians' difference and its bootstrap CI, the profile's flatness."""
    rng = np.random.default_rng(4)
    prof = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    trained = prof[None] + rng.normal(0, 0.5, (40, 6))
    rand = prof[None, ::-1] + rng.normal(0, 0.5, (40, 6))
    got = EX.agreement_contrast(trained, rand, prof, n_boot=200)
    want_t = np.median([stats.spearmanr(c, prof)[0] for c in trained])
    want_r = np.median([stats.spearmanr(c, prof)[0] for c in rand])
    assert got["median_trained"] == pytest.approx(want_t) and got["median_randomised"] == pytest.approx(want_r)
    assert got["diff"] == pytest.approx(want_t - want_r) and got["diff_ci"][0] > 1.0  # separated: the CI is far from 0
    assert got["profile_max_over_min"] == pytest.approx(6.0) and got["profile_cv"] == pytest.approx(prof.std() / prof.mean())
    same = EX.agreement_contrast(trained, trained[rng.permutation(40)], prof, n_boot=200)
    assert same["diff_ci"][0] < 0 < same["diff_ci"][1]  # two draws of the same kind of paths: not separated


@pytest.mark.slow  # compiles rr_net's forward and gradient passes: a minute on the loaded shared CPU
def test_extra_channel_reliance_against_direct_calls():
    """P(target) with the extra (RR) channels or the leads swapped, and the |gradient x input| share of the extra
    channels, against the model called and differentiated directly."""
    feats = ("pre", "post")
    model = models.build("rr_net", n_classes=3, in_shape=(syn.T, syn.L + 2), fs=FS, rngs=nnx.Rngs(0), rr_features=feats)
    rng = np.random.default_rng(0)
    def with_rr(x, lo, hi):
        rr = rng.uniform(lo, hi, (len(x), 2)).astype(np.float32)
        return np.concatenate([x, np.broadcast_to(rr[:, None], (len(x), syn.T, 2))], axis=-1)
    src, tgt = with_rr(syn.beats(4, seed=1), 0.9, 1.1), with_rr(syn.beats(3, seed=2, bump=np.ones(3, bool)), 0.4, 0.6)
    got = EX.extra_channel_reliance(model, src, tgt, 2, syn.L)
    view = models.eval_view(model)
    prob = lambda x: np.asarray(jax.nn.softmax(view(jnp.asarray(x)), -1))[:, 2]  # noqa: E731
    swapped = src.copy()
    swapped[..., 2:] = np.median(tgt[..., 2:], 0)
    assert got["p_src"] == pytest.approx(np.median(prob(src)), rel=1e-4)
    assert got["p_src_tgt_extra"] == pytest.approx(np.median(prob(swapped)), rel=1e-4)
    leads = np.concatenate([tgt[[0, 1, 2, 0], :, :2], src[..., 2:]], -1)
    assert got["p_src_tgt_leads"] == pytest.approx(np.median(prob(leads)), rel=1e-4)
    g = np.asarray(jax.vmap(jax.grad(lambda xi: view(xi[None])[0, 2]))(jnp.asarray(tgt)))
    gx = np.abs(g * tgt)
    assert got["extra_share_tgt"] == pytest.approx(np.median(gx[..., 2:].sum((1, 2)) / gx.sum((1, 2))), rel=1e-3)



def test_extra_channel_reliance_without_extra_channels_is_nan():
    """Fast: a one-input model's beats have nothing the traversal holds fixed: every number is NaN (nothing runs)."""
    x = syn.beats(2)
    got = EX.extra_channel_reliance(None, x, x, 1, syn.L)
    assert got and all(np.isnan(v) for v in got.values())


class _Affine(nnx.Module):
    """A stand-in decoder: 2x + 3 on every sample, plus 50 on the last 12 (what a VAE trained on valid samples only
    may put in a window's padding)."""

    def __init__(self):
        from ecgjax.generative.vae import VAESettings

        self.settings = VAESettings(in_shape=(syn.T, syn.L))

    def __call__(self, x):
        return 2.0 * x + 3.0 + 50.0 * (jnp.arange(syn.T) >= syn.T - 12)[None, :, None]


def test_reconstructions_are_read_as_real_beats(bump_classifier):
    """The classifier reads a reconstruction as the data pipeline makes a real beat (vae.as_input): a decoder that
    rescales and shifts each lead and fills the padding with garbage changes nothing once the window's padding and
    its z-score are restored; the unprojected output is classified too, as the classifier reads it directly."""
    from ecgjax.data.beats import normalise
    from ecgjax.generative.vae import valid_mask

    y = (np.arange(40) % 2).astype(np.int32)
    lo, hi = np.zeros(40, np.int32), np.full(40, syn.T - 12, np.int32)
    valid = valid_mask(lo, hi, syn.T)
    x = normalise(np.where(valid[..., None], syn.beats(40, seed=21, bump=y == 1), 0), valid, "zscore_lead")
    dec = _Affine()
    f = EX.reconstruction_fidelity(bump_classifier, dec, x, y, lo=lo, hi=hi, normalisation="zscore_lead", progress=False)
    logits0, logits_raw = nnx.jit(lambda c, v, xb: (c(xb), c(v(xb))))(bump_classifier, dec, x)
    p0, p_raw = np.asarray(logits0).argmax(1), np.asarray(logits_raw).argmax(1)
    np.testing.assert_array_equal(f["pred_original"], p0)
    np.testing.assert_array_equal(f["pred_reconstructed"], p0)  # projected back onto the real beat exactly
    np.testing.assert_allclose(f["prob_true_reconstructed"], f["prob_true_original"], atol=1e-4)
    assert f["acc_gap"] == 0 and f["pred_agreement"] == 1
    assert f["acc_reconstructed_raw"] == pytest.approx((p_raw == y).mean()) and f["normalisation"] == "zscore_lead"
    assert f["pred_agreement_raw"] == pytest.approx((p_raw == p0).mean())
    assert f["pred_agreement_raw"] < 1  # the raw output does mislead it


def test_profile_and_change_share_one_segment_grid_when_r_moves(bump_classifier, trained_vae):
    """Midpoint windows put R at different places: a profile of beats with R late and a traversal of beats with R
    early get different segment grids of their own; given the grid of both (segments_per_side) they line up and
    every beat's agreement is measured."""
    vae, _ = trained_vae
    n = 40  # the planted query's batch and path (conftest): its compiled traversal and saliency
    x = syn.beats(n, seed=31)
    r_src, r_tgt = np.full(n, 20), np.full(n, 50)
    lo, hi = np.zeros(n, int), np.full(n, syn.T)
    assert EX.segments_per_side(r_src, syn.T, FS) != EX.segments_per_side(r_tgt, syn.T, FS)
    k = EX.segments_per_side(np.concatenate([r_src, r_tgt]), syn.T, FS)
    prof, _ = EX.class_saliency_profile(_fns(bump_classifier), x, 1, r_tgt, lo, hi, FS, n_leads=syn.L, n_per_side=k,
                                        progress=False)
    ex = EX.explain_class(bump_classifier, vae, x, 1, r_src, lo, hi, FS, profile=prof, n_per_side=k, steps=5, progress=False)
    assert ex.change.shape[2] == prof.shape[0] == 2 * syn.L * k
    assert np.isfinite(ex.agreement).all()
    own = EX.source_saliency(_fns(bump_classifier), x, 1, r_src, lo, hi, FS, n_leads=syn.L, n_per_side=k, progress=False)
    assert own.shape == ex.change[:, -1].shape
