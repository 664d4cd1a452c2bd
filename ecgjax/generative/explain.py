"""Explanations by generation: where a traversal changed a beat, whether saliency agrees, and sanity checks.

A traversal (``generative.traverse``) morphs a beat towards a target class.
This module reads it with the project's 0.1 s segmenter
(``analysis.segments``):

* ``segment_change``: the mean |generated beat - the path's first beat| per
  segment and lead at every point of the path, f32[B, P, L, S];
* ``wave_change``: the same per wave (P, PR, QRS, ST, T of the source beat's
  delineation, ``data.delineation`` / ``analysis.waves``), f32[B, P, L*5];
* ``class_saliency_profile``: the class's saliency profile, the median over
  that class's beats of the mean |map| per segment (and per wave, given the
  beats' wave bounds; any registered attribution method, class-targeted);
* ``agreement``: per beat, the Spearman rank correlation between the
  traversal's change (at the path's end) and that profile;
* ``source_saliency``: each traversed beat's own |map| of the target per
  segment (where the target's logit is sensitive on that beat: the
  first-order answer to the query), compared beat by beat with its change;
* ``consistency``: the median pairwise Spearman correlation of the beats'
  change profiles (a trained classifier's traversals move the same segments
  from beat to beat; a randomised one's should not);
* ``direction_agreement``: the cosine between two traversals' directions
  (latent, or the generated beats' signed change) for the same query and
  beats: across classifiers trained from different seeds it should be high
  (they learned the same class), between a trained and a randomised
  classifier low (the seed sanity check; two random initialisations may agree
  with each other: they share the architecture's bias, not a class);
* ``reconstruction_fidelity``: the classifier's accuracy on beats and on their
  VAE reconstructions (explanations happen where it behaves as on real data);
  ``reconstruction_diagnosis``: which classes lose accuracy, and whether the
  flipped beats are those whose QRS edges the VAE blurred;
* ``extra_channel_reliance`` and ``agreement_contrast``: why a profile agreement
  may not tell a trained classifier from a randomised one (how much a
  two-input model's decision rests on the channels a traversal holds fixed;
  how flat the profile is; the agreements' bootstrap CIs).

``explain_class`` runs the traversal, the profile and the measures for one
query and returns a :class:`TraversalExplanation`.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy import stats

from ecgjax import timebase
from ecgjax.analysis.segments import segment_values
from ecgjax.batched import map_batches
from ecgjax.generative.traverse import PRIOR_MASS, Traversal, prior_bound, traverse
from ecgjax.models.base import Static, eval_split



def segments_per_side(r, t: int, fs: float, seg_s: float = 0.1) -> int:
    """Segments per side of R that cover the whole window of every beat with R at ``r`` (the rest would be NaN columns
    only). Measures compared column by column (a traversal's change and a class's profile, from beats whose R sits
    at different places, as in a midpoint window) must share it: pass it as their ``n_per_side``."""
    return -(-max(int(np.max(r)), t - int(np.min(r))) // max(1, timebase.to_samples(seg_s, fs)))


def segment_change(beats: np.ndarray, r, lo, hi, fs: float, *, lead_names: Sequence[str] | None = None,
                   seg_s: float = 0.1, n_per_side: int | None = None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Change along each path per segment: mean |beats[:, p] - beats[:, 0]| over each segment's valid samples.

    Args:
      beats: f32[B, P, T, L] generated beats (``Traversal.beats``).
      r, lo, hi: i[B] the source beats' R position and valid range (``BeatSet.r``, ``lo``, ``hi``).
      fs: Hz; seg_s: segment length (s).

    Returns:
      (f32[B, P, L*S] NaN where a segment is outside the beat's real signal, the L*S column labels).
    """
    b, p, t, n_leads = beats.shape
    d = np.abs(beats - beats[:, :1]).reshape(b * p, t, n_leads)
    seg = segment_values(d, np.repeat(r, p), np.repeat(lo, p), np.repeat(hi, p), fs, seg_s=seg_s,
                         n_per_side=n_per_side or segments_per_side(r, t, fs, seg_s), lead_names=lead_names)
    return seg.flat().reshape(b, p, -1), seg.labels


def wave_change(beats: np.ndarray, bounds: np.ndarray, lo, hi, *, lead_names: Sequence[str] | None = None
                ) -> tuple[np.ndarray, tuple[str, ...]]:
    """Change along each path per wave: mean |beats[:, p] - beats[:, 0]| over each wave of the source beat.

    Args:
      beats: f32[B, P, T, L]; bounds: f[B, 6] the source beats' window-relative wave bounds (``Waves.bounds``);
      lo, hi: i[B] valid ranges.

    Returns:
      (f32[B, P, L*5] NaN where a wave is absent, the column labels ``MLII:P`` ...).
    """
    from ecgjax.analysis.waves import wave_labels, wave_masks, wave_values

    b, p, t, n_leads = beats.shape
    masks = np.repeat(wave_masks(bounds, t, lo, hi), p, axis=0)
    v = wave_values(np.abs(beats - beats[:, :1]).reshape(b * p, t, n_leads), masks)
    return v.reshape(b, p, -1), wave_labels(lead_names or n_leads)


def class_saliency_profile(classifier, x: np.ndarray, target: int, r, lo, hi, fs: float, *, n_leads: int,
                           method: str = "saliency", lead_names: Sequence[str] | None = None, seg_s: float = 0.1,
                           bounds: np.ndarray | None = None, batch_size: int = 256, memory_budget: int | None = None,
                           progress: bool = True, n_per_side: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """The class's saliency profile: the median over beats of the mean |map| per segment and per wave (the leads only).

    Args:
      classifier: any model of the contract (or an ``Fns``); x: f32[N, T, L(+F)] the class's beats (its input); target: the class.
      r, lo, hi: i[N]; fs: Hz; n_leads: L (a two-input model's extra channels are left out).
      method: a registered attribution method (``ecgjax.attribution.available()``).
      bounds: optional f[N, 6] the beats' wave bounds (``Waves.bounds``).

    Returns:
      (f64[L*S] per segment, f64[L*5] per wave or None without ``bounds``).
    """
    from ecgjax.analysis.waves import wave_masks, wave_values

    maps = _abs_maps(classifier, x, target, r, n_leads=n_leads, method=method, batch_size=batch_size,
                     memory_budget=memory_budget, progress=progress)
    seg = segment_values(maps, r, lo, hi, fs, seg_s=seg_s, n_per_side=n_per_side or segments_per_side(r, maps.shape[1], fs, seg_s),
                         lead_names=lead_names)
    per_wave = None
    if bounds is not None:
        per_wave = nan_stat(np.nanmedian, wave_values(maps, wave_masks(bounds, maps.shape[1], lo, hi)).reshape(len(maps), -1))
    return nan_stat(np.nanmedian, seg.flat()), per_wave


def _abs_maps(classifier, x, target, r, *, n_leads, method, batch_size, memory_budget, progress) -> np.ndarray:
    """f32[N, T, L]: |the method's map| of ``target`` on beats x (the leads only)."""
    from ecgjax import attribution

    model = eval_split(classifier) if isinstance(classifier, nnx.Module) else classifier
    return np.abs(attribution.attribute_dataset(model, x, int(target), attribution.get(method), key=jax.random.key(0),
                                                batch_size=batch_size, memory_budget=memory_budget, progress=progress,
                                                r=np.asarray(r, np.int32)).maps[..., :n_leads])


def source_saliency(classifier, x: np.ndarray, target: int, r, lo, hi, fs: float, *, n_leads: int, method: str = "saliency",
                    lead_names: Sequence[str] | None = None, seg_s: float = 0.1, batch_size: int = 256,
                    memory_budget: int | None = None, progress: bool = True, n_per_side: int | None = None) -> np.ndarray:
    """Per beat, the mean |map| of ``target`` per segment on the beats being traversed (not the target class's beats).

    The first-order answer to the query: where the target's logit is sensitive on *this* beat, the direction
    the traversal starts along (for a traversal in input space it would be its first step). Compared beat by
    beat with the traversal's change (``paired_agreement``), it needs no class profile: same beats, same R.

    Returns:
      f32[B, L*S] (NaN outside the beats' signal), the columns of ``segment_change``.
    """
    maps = _abs_maps(classifier, x, target, r, n_leads=n_leads, method=method, batch_size=batch_size,
                     memory_budget=memory_budget, progress=progress)
    return segment_values(maps, r, lo, hi, fs, seg_s=seg_s, n_per_side=n_per_side or segments_per_side(r, maps.shape[1], fs, seg_s),
                          lead_names=lead_names).flat()


def nan_stat(fn, v: np.ndarray) -> np.ndarray:
    """``fn(v, axis=0)`` for a NaN-ignoring numpy statistic, NaN (without numpy's warning) for an all-NaN column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(np.asarray(v, np.float64), axis=0)


def nan_median(v: np.ndarray) -> float:
    """The median of the finite values of f[N]; NaN when there are none."""
    return float(nan_stat(np.nanmedian, np.ravel(v)))


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(stats.spearmanr(a[ok], b[ok]).statistic)


def agreement(change: np.ndarray, profile: np.ndarray) -> np.ndarray:
    """f64[B]: Spearman rho between each beat's change f[B, K] and the profile f[K] over the segments both have."""
    return np.array([_spearman(c, np.asarray(profile)) for c in np.asarray(change)], np.float64)


def paired_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """f64[B]: Spearman rho between row b of two changes f[B, K] (e.g. two classifiers' traversals of the same beats)."""
    return np.array([_spearman(u, v) for u, v in zip(np.asarray(a), np.asarray(b))], np.float64)


def consistency(change: np.ndarray) -> float:
    """The median pairwise Spearman rho between beats' change profiles f[B, K] (NaN columns dropped; NaN if B < 2)."""
    c = np.asarray(change, np.float64)
    keep = np.isfinite(c).all(axis=0)
    c = c[:, keep]
    if len(c) < 2 or c.shape[1] < 3:
        return float("nan")
    rho = stats.spearmanr(c, axis=1).statistic
    rho = np.atleast_2d(rho)
    return nan_median(rho[np.triu_indices(len(c), 1)])


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, np.nan)


def direction_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """How two traversals of the same beats for the same query agree (e.g. two classifiers trained from
    different seeds, a trained and a randomised one: the seed sanity check).

    Args:
      a, b: f[B, ...] the traversals' directions, row i of both the same beat: in latent space
        (``Traversal.direction``, f[B, D]) or in beat space (``Traversal.signed_change()``, f[B, T, L]).

    Returns:
      dict: ``class_cosine``, the cosine between the two mean unit directions (what the class query does);
      ``median_beat_cosine``, the median over beats of the cosine between the beat's two directions.
    """
    a, b = (np.asarray(v, np.float64).reshape(len(v), -1) for v in (a, b))
    ua, ub = _unit(a), _unit(b)
    ma, mb = _unit(nan_stat(np.nanmean, ua)), _unit(nan_stat(np.nanmean, ub))
    return {"class_cosine": float(np.sum(ma * mb)), "median_beat_cosine": nan_median(np.sum(ua * ub, axis=-1))}


# ---------------------------------------------------------------- the classifier on reconstructions


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fidelity_step(static, normalisation: str, cls_state, vae_params, x, valid):
    from ecgjax.generative.vae import as_input

    cls_graphdef, vae_graphdef = static.value
    model = nnx.merge(cls_graphdef, cls_state)
    vae = nnx.merge(vae_graphdef, vae_params)
    n_leads = vae.settings.in_shape[1]
    leads, extra = x[..., :n_leads], x[..., n_leads:]
    decoded = vae(leads)
    p0 = jax.nn.softmax(model(x), -1)
    p1 = jax.nn.softmax(model(jnp.concatenate([as_input(decoded, leads, valid, normalisation), extra], axis=-1)), -1)
    p_raw = jax.nn.softmax(model(jnp.concatenate([decoded, extra], axis=-1)), -1)
    return p0, p1, jnp.argmax(p_raw, -1)


def reconstruction_fidelity(classifier: nnx.Module, vae: nnx.Module, x: np.ndarray, y: np.ndarray, *, lo=None, hi=None,
                            normalisation: str = "none", batch_size: int = 512, memory_budget: int | None = None,
                            progress: bool = True) -> dict:
    """The classifier on beats and on their reconstructions (the decoded posterior means; extra channels kept).

    A reconstruction reaches the classifier as a real beat does (``vae.as_input``: the window's padding kept,
    the protocol's normalisation applied again); the decoder's output as it is, also classified, is reported
    beside it (``*_raw``) for the record.

    Args:
      x: f32[N, T, L(+F)] the classifier's input; y: i[N] true classes.
      lo, hi: i[N] the beats' valid ranges (``BeatSet.lo``/``hi``; default: every sample valid).
      normalisation: the beats' protocol normalisation (``BeatSet.protocol["normalisation"]``).

    Returns:
      dict: ``n``, ``acc_original``, ``acc_reconstructed``, ``acc_gap`` (original - reconstructed),
      ``pred_agreement`` (same prediction on both), ``recall_original`` / ``recall_reconstructed``
      (per class present, by class index as str), ``acc_reconstructed_raw``, ``acc_gap_raw`` and
      ``pred_agreement_raw`` (the decoder's output unprojected), ``normalisation``, ``pred_original``,
      ``pred_reconstructed`` (i32[N]), ``prob_true_original`` / ``prob_true_reconstructed`` (f32[N]: the
      probability of the true class).
    """
    from ecgjax.generative.vae import valid_mask

    x = np.asarray(x, np.float32)
    y = np.asarray(y)
    n, t = x.shape[:2]
    valid = np.ones((n, t), np.float32) if lo is None else valid_mask(lo, hi, t).astype(np.float32)
    cg, cs = eval_split(classifier)
    vg, vp = nnx.split(vae)
    q0, q1, p_raw = map_batches(_fidelity_step, (cs, vp), (x, valid), static=(Static((cg, vg)), normalisation), batch_size=batch_size,
                                memory_budget=memory_budget, desc="classifying reconstructions", progress=progress).outputs
    q0, q1, p_raw = np.asarray(q0), np.asarray(q1), np.asarray(p_raw)
    p0, p1 = q0.argmax(-1), q1.argmax(-1)
    acc0, acc1, acc_raw = float((p0 == y).mean()), float((p1 == y).mean()), float((p_raw == y).mean())
    rec = lambda p: {str(int(c)): float((p[y == c] == c).mean()) for c in np.unique(y)}  # noqa: E731
    true = lambda q: np.take_along_axis(q, y[:, None].astype(np.int64), 1)[:, 0].astype(np.float32)  # noqa: E731
    return {"n": int(len(y)), "acc_original": acc0, "acc_reconstructed": acc1, "acc_gap": acc0 - acc1,
            "pred_agreement": float((p0 == p1).mean()), "recall_original": rec(p0), "recall_reconstructed": rec(p1),
            "acc_reconstructed_raw": acc_raw, "acc_gap_raw": acc0 - acc_raw, "pred_agreement_raw": float((p0 == p_raw).mean()),
            "normalisation": normalisation,
            "pred_original": np.asarray(p0, np.int32), "pred_reconstructed": np.asarray(p1, np.int32),
            "prob_true_original": true(q0), "prob_true_reconstructed": true(q1)}


def _probs(classifier, x: np.ndarray, target: int, batch_size: int = 256, memory_budget: int | None = None) -> np.ndarray:
    """f32[N]: softmax probability of ``target`` (``sanity.target_prob``: one compiled program per classifier and batch)."""
    from ecgjax.attribution.runner import model_parts
    from ecgjax.attribution.sanity import target_prob

    make, params = model_parts(eval_split(classifier))
    x = np.asarray(x, np.float32)
    return map_batches(target_prob, (params,), (x, np.full(len(x), target, np.int32)), static=(make,),
                       batch_size=batch_size, memory_budget=memory_budget, progress=False).outputs


def extra_channel_reliance(classifier, x_src: np.ndarray, x_tgt: np.ndarray, target: int, n_leads: int, *,
                           batch_size: int = 256, memory_budget: int | None = None, progress: bool = False) -> dict:
    """How much a two-input classifier's P(target) rests on the channels after the leads (RR features), which a
    traversal holds fixed: swaps between source and target beats, and the share of |gradient x input|.

    Args:
      x_src: f32[B, T, L+F] the source class's beats (those traversed); x_tgt: f32[M, T, L+F] the target class's.
      n_leads: L; F = the rest (0: nothing to measure, NaNs).

    Returns:
      dict of medians over beats: ``p_src`` (source beats as they are), ``p_src_tgt_extra`` (their extra channels
      replaced by the target beats' per-channel median), ``p_src_tgt_leads`` (their leads replaced by target beats',
      own extra channels kept), ``p_tgt``, ``p_tgt_src_extra`` (target beats with the source beats' median extra
      channels), ``extra_share_src`` / ``extra_share_tgt`` (share of sum |gradient x input| of ``target`` on the extra
      channels), ``frac_src_flipped_by_extra`` (source beats whose P(target) crosses 0.5 with the target's extra channels).
    """
    from ecgjax import attribution

    x_src, x_tgt = np.asarray(x_src, np.float32), np.asarray(x_tgt, np.float32)
    if x_src.shape[2] <= n_leads:
        return {k: float("nan") for k in ("p_src", "p_src_tgt_extra", "p_src_tgt_leads", "p_tgt", "p_tgt_src_extra",
                                         "extra_share_src", "extra_share_tgt", "frac_src_flipped_by_extra")}
    med = lambda v: float(np.median(v))  # noqa: E731
    swap_extra = lambda x, donor: np.concatenate(  # noqa: E731
        [x[..., :n_leads], np.broadcast_to(np.median(donor[..., n_leads:], 0), x[..., n_leads:].shape)], -1)
    tgt_leads = x_tgt[np.arange(len(x_src)) % len(x_tgt), :, :n_leads]
    p_src = _probs(classifier, x_src, target, batch_size, memory_budget)
    p_swap = _probs(classifier, swap_extra(x_src, x_tgt), target, batch_size, memory_budget)

    def share(x):
        m = np.abs(attribution.attribute_dataset(eval_split(classifier), x, int(target), attribution.get("gradient_x_input"),
                                                 key=jax.random.key(0), batch_size=batch_size, memory_budget=memory_budget,
                                                 progress=progress).maps)
        return med(m[..., n_leads:].sum((1, 2)) / np.maximum(m.sum((1, 2)), 1e-30))

    return {"p_src": med(p_src), "p_src_tgt_extra": med(p_swap),
            "p_src_tgt_leads": med(_probs(classifier, np.concatenate([tgt_leads, x_src[..., n_leads:]], -1), target, batch_size, memory_budget)),
            "p_tgt": med(_probs(classifier, x_tgt, target, batch_size, memory_budget)),
            "p_tgt_src_extra": med(_probs(classifier, swap_extra(x_tgt, x_src), target, batch_size, memory_budget)),
            "extra_share_src": share(x_src), "extra_share_tgt": share(x_tgt),
            "frac_src_flipped_by_extra": float(np.mean((p_src < 0.5) & (p_swap > 0.5)))}


def agreement_contrast(change: np.ndarray, change_rand: np.ndarray, profile: np.ndarray, *, n_boot: int = 2000,
                       seed: int = 0) -> dict:
    """Does the profile agreement tell the trained classifier's traversals from the randomised one's, beyond chance?

    Args:
      change, change_rand: f[B, K] the end change per segment of the same B beats, trained and randomised classifier.
      profile: f[K] the target class's profile (of the trained classifier).

    Returns:
      dict: ``median_trained`` / ``median_randomised`` (per-beat Spearman with the profile), ``diff`` (their medians'
      difference) with ``diff_ci`` (95%, paired bootstrap over beats), ``profile_max_over_min`` and
      ``profile_cv`` (how flat the profile is: a flat profile's ranks are noise), ``k`` (segments with a value).
    """
    a, b = agreement(change, profile), agreement(change_rand, profile)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (n_boot, len(a)))
    boot = np.median(a[idx], 1) - np.median(b[idx], 1)
    p = np.asarray(profile, np.float64)
    p = p[np.isfinite(p)]
    return {"n": int(len(a)), "median_trained": float(np.median(a)), "median_randomised": float(np.median(b)),
            "diff": float(np.median(a) - np.median(b)), "diff_ci": [float(v) for v in np.percentile(boot, [2.5, 97.5])],
            "profile_max_over_min": float(p.max() / p.min()) if p.min() > 0 else float("inf"),
            "profile_cv": float(p.std() / p.mean()), "k": int(len(p))}


def reconstruction_diagnosis(vae: nnx.Module, x: np.ndarray, y: np.ndarray, pred_original: np.ndarray,
                             pred_reconstructed: np.ndarray, r, lo, hi, fs: float, classes: Sequence[str], *,
                             record: np.ndarray | None = None, symbol: np.ndarray | None = None,
                             prob_true: np.ndarray | None = None, half_s: float = 0.05,
                             batch_size: int = 1024) -> dict:
    """Why the classifier's accuracy moves on reconstructions: per class, and for the beats whose prediction flips.

    Args:
      vae: the ``BeatVAE``; x: f32[N, T, L] the beats' leads; y: i[N] true classes; pred_original,
      pred_reconstructed: i[N] (``reconstruction_fidelity``'s); r, lo, hi: i[N]; fs: Hz; classes: the C names.
      record: optional [N] the beats' records: adds each class's ``lost_records`` (the 3 records losing the most
        beats, {record: beats}; a few patients, or all of them?).
      symbol: optional [N] the beats' original annotation symbols: adds each class's ``lost_symbols`` (the 3 symbols
        losing the most beats: which kind of beat within an AAMI class, e.g. bundle branch block beats among N).
      prob_true: optional f[N] the classifier's probability of the true class on the originals
        (``reconstruction_fidelity``'s ``prob_true_original``): adds each class's ``median_p_true_kept`` and
        ``lost_median_p_true`` (how sure the classifier was of the beats it keeps and of those it loses: lost beats
        that sat near its decision boundary flip for small changes).
      half_s: the span around R whose slopes and errors ``vae.qrs_sharpness`` measures.

    Returns:
      dict: ``per_class`` {name: n, recall on originals and on reconstructions, ``lost`` (right on the original,
      wrong on the reconstruction) and ``gained`` beats, ``lost_to`` {predicted class: beats}, median Pearson r,
      QRS slope ratio, QRS and rest MSE, and the median r and slope ratio of the lost beats}; ``flipped`` / ``kept``: the same medians over beats whose prediction
      changed / did not (blur of sharp QRS edges shows as a lower slope ratio and a larger QRS error in
      ``flipped``).
    """
    from ecgjax.generative import vae as V

    x = np.asarray(x, np.float32)
    y, p0, p1 = (np.asarray(v) for v in (y, pred_original, pred_reconstructed))
    xh = V.reconstruct(vae, x, batch_size=batch_size)["x_hat"]
    rho = V.pearson_r(x, xh, V.valid_mask(lo, hi, x.shape[1]))
    q = V.qrs_sharpness(x, xh, r, lo, hi, fs, half_s=half_s)

    def medians(sel: np.ndarray) -> dict:
        return {"n": int(sel.sum()), "median_r": nan_median(rho[sel]), "median_slope_ratio": nan_median(q["slope_ratio"][sel]),
                "median_mse_qrs": nan_median(q["mse_qrs"][sel]), "median_mse_rest": nan_median(q["mse_rest"][sel])}

    per_class = {}
    for c in np.unique(y):
        sel = y == c
        lost = sel & (p0 == c) & (p1 != c)
        lost_m = medians(lost)
        per_class[str(classes[c])] = medians(sel) | {
            "lost_median_r": lost_m["median_r"], "lost_median_slope_ratio": lost_m["median_slope_ratio"],
            "recall_original": float((p0[sel] == c).mean()), "recall_reconstructed": float((p1[sel] == c).mean()),
            "lost": int(lost.sum()), "gained": int((sel & (p0 != c) & (p1 == c)).sum()),
            "lost_to": {str(classes[k]): int((p1[lost] == k).sum()) for k in np.unique(p1[lost])}}
        if prob_true is not None:
            pt = np.asarray(prob_true, np.float64)
            per_class[str(classes[c])] |= {"median_p_true_kept": nan_median(pt[sel & (p0 == c) & (p1 == c)]),
                                           "lost_median_p_true": nan_median(pt[lost])}
        if record is not None:
            recs, counts = np.unique(np.asarray(record)[lost], return_counts=True)
            top = np.argsort(-counts, kind="stable")[:3]
            per_class[str(classes[c])]["lost_records"] = {str(recs[i]): int(counts[i]) for i in top}
        if symbol is not None:
            sym, counts = np.unique(np.asarray(symbol)[lost], return_counts=True)
            top = np.argsort(-counts, kind="stable")[:3]
            per_class[str(classes[c])]["lost_symbols"] = {str(sym[i]): int(counts[i]) for i in top}
    flipped = p0 != p1
    return {"per_class": per_class, "flipped": medians(flipped), "kept": medians(~flipped), "half_s": half_s}


# ---------------------------------------------------------------- one query


@dataclasses.dataclass(frozen=True)
class TraversalExplanation:
    """One query's traversals and what they changed.

    Attributes:
      traversal: the ``Traversal`` of B beats (P points).
      change: f32[B, P, K] per-segment change along each path (K = L*S columns, NaN outside the signal).
      labels: the K column names (``MLII-2`` ...).
      profile: f32[K] the target class's saliency profile (NaN when not computed).
      agreement: f64[B] Spearman rho of each beat's end change with ``profile``.
      latent: D, the VAE's latent size (for the prior bound).
      waves: None, or ``(change f32[B, P, L*5], labels, profile f64[L*5])`` per wave.
      source_agreement: None, or f64[B] Spearman rho of each beat's end change with its own |saliency| of the
        target per segment (``source_saliency``).
    """

    traversal: Traversal
    change: np.ndarray
    labels: tuple[str, ...]
    profile: np.ndarray
    agreement: np.ndarray
    latent: int
    waves: tuple | None = None
    source_agreement: np.ndarray | None = None

    def summary(self) -> dict:
        """The query's numbers: monotonicity, crossing, the prior bound, agreement and consistency."""
        tr = self.traversal
        rho = tr.spearman()
        bound = prior_bound(self.latent, PRIOR_MASS)
        end = self.change[:, -1]
        mean_change = nan_stat(np.nanmean, end)
        return {
            "n": int(len(rho)),
            "median_spearman": nan_median(rho),
            "frac_spearman_ge_0_9": float(np.mean(rho >= 0.9)),
            "frac_start_below_0_5": float(np.mean(tr.prob[:, 0] < 0.5)),
            "frac_cross_0_5": float(np.mean((tr.prob[:, 0] < 0.5) & (tr.prob[:, -1] > 0.5))),
            "frac_end_above_0_5": float(np.mean(tr.prob[:, -1] > 0.5)),
            "median_prob_start": float(np.median(tr.prob[:, 0])),
            "median_prob_end": float(np.median(tr.prob[:, -1])),
            "prior_mass": PRIOR_MASS,
            "prior_bound_logpdf": bound,
            "frac_start_inside_prior_bound": float(np.mean(tr.prior_logpdf[:, 0] >= bound - _ON_SPHERE)),
            "frac_inside_prior_bound": float(np.mean(tr.prior_logpdf.min(axis=1) >= bound - _ON_SPHERE)),
            "frac_no_lower_than_start": float(np.mean(tr.prior_logpdf.min(axis=1) >= np.minimum(bound, tr.prior_logpdf[:, 0]) - _ON_SPHERE)),
            "median_agreement": nan_median(self.agreement),
            "class_agreement": _spearman(mean_change, self.profile),
            "consistency": consistency(end),
            "top_segment": _top(self.labels, mean_change),
            "median_source_agreement": float("nan") if self.source_agreement is None else nan_median(self.source_agreement),
            **self._wave_summary(),
        }

    def _wave_summary(self) -> dict:
        if self.waves is None:
            return {}
        change, labels, profile = self.waves
        mean = nan_stat(np.nanmean, change[:, -1])
        return {"top_wave": _top(labels, mean), "mean_wave_change": dict(zip(labels, map(float, mean))),
                "median_wave_agreement": nan_median(agreement(change[:, -1], profile)),
                "class_wave_agreement": _spearman(mean, profile)}


_ON_SPHERE = 1e-3  # log-density tolerance: float32 rounding of points the traversal projected onto the sphere


def _top(labels, values) -> str:
    return labels[int(np.nanargmax(values))] if np.isfinite(values).any() else ""


def explain_class(classifier: nnx.Module, vae: nnx.Module, x: np.ndarray, target: int, r, lo, hi, fs: float, *,
                  profile: np.ndarray | None = None, bounds: np.ndarray | None = None, wave_profile: np.ndarray | None = None,
                  lead_names: Sequence[str] | None = None, seg_s: float = 0.1, source_saliency_method: str | None = None,
                  n_per_side: int | None = None, **traverse_kw) -> TraversalExplanation:
    """Traverse beats towards ``target`` and measure what changed.

    Args:
      classifier, vae: as ``traverse``; x: f32[B, T, L(+F)] the source beats (the classifier's input).
      target: the query class; r, lo, hi: i[B] the beats' R positions and valid ranges; fs: Hz.
      profile: f32[L*S] the target's saliency profile (``class_saliency_profile``), or None (agreement NaN).
      bounds: optional f[B, 6] the source beats' wave bounds: adds the per-wave change (and its agreement
        with ``wave_profile`` f[L*5], the target's per-wave saliency profile, when given).
      source_saliency_method: a registered method: also each beat's agreement with its own |map| of the target
        (``source_saliency``), or None.
      n_per_side: segments per side of R (``segments_per_side``; default from these beats): pass the profile's.
      traverse_kw: ``steps``, ``lr``, ``proximity``, ``n_points``, ``batch_size``, ``memory_budget``, ``progress``,
        ``normalisation`` (the beats' protocol normalisation; ``lo``/``hi`` give the window's valid samples).
    """
    tr = traverse(classifier, vae, x, target, lo=np.asarray(lo), hi=np.asarray(hi), **traverse_kw)
    change, labels = segment_change(tr.beats, np.asarray(r), np.asarray(lo), np.asarray(hi), fs, lead_names=lead_names,
                                    seg_s=seg_s, n_per_side=n_per_side)
    prof = np.full(change.shape[2], np.nan) if profile is None else np.asarray(profile, np.float64)
    waves = None
    if bounds is not None:
        wc, wl = wave_change(tr.beats, bounds, np.asarray(lo), np.asarray(hi), lead_names=lead_names)
        waves = (wc, wl, np.full(wc.shape[2], np.nan) if wave_profile is None else np.asarray(wave_profile, np.float64))
    src_agree = None
    if source_saliency_method is not None:
        kw = {k: traverse_kw[k] for k in ("batch_size", "memory_budget", "progress") if k in traverse_kw}
        own = source_saliency(classifier, x, target, r, lo, hi, fs, n_leads=vae.settings.in_shape[1],
                              method=source_saliency_method, lead_names=lead_names, seg_s=seg_s, n_per_side=n_per_side,
                              **kw)
        src_agree = paired_agreement(change[:, -1], own)
    return TraversalExplanation(tr, change, labels, prof, agreement(change[:, -1], prof), vae.settings.latent, waves,
                                src_agree)
