"""The study's checks on one trained run: attribution sanity checks and the noise stress test."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ecgjax.io import atomic_write_json
from ecgjax.study.config import StudyConfig
from ecgjax.study.subsets import balanced_subset

log = logging.getLogger(__name__)


def _subset(run, n: int, seed: int) -> np.ndarray:
    return balanced_subset(run.beats.y, run.split.test, n, seed)


def sanity_checks(cfg: StudyConfig, run, out_dir: Path, *, memory_budget: int | None = None) -> dict:
    """Cascading randomisation (each method) and deletion/insertion curves on a test subset.

    Args:
      run: the loaded run (``ecgjax.train.Run``).
    Returns a JSON-ready summary (``SanityResult``'s fields); files land in ``out_dir``.
    """
    import jax
    from flax import nnx

    from ecgjax import attribution, models
    from ecgjax.analysis import plotting
    from ecgjax.attribution.sanity import cascade_for_model, deletion_insertion

    out_dir.mkdir(parents=True, exist_ok=True)
    beats = run.beats
    idx = _subset(run, cfg.sanity_beats, cfg.seed)
    x, y = beats.x[idx], beats.y[idx]
    mc = run.config.model
    fresh = models.build(mc.name, n_classes=len(beats.classes), in_shape=beats.x.shape[1:], fs=beats.fs, rngs=nnx.Rngs(run.config.train.seed + 1), **mc.kwargs)
    gs = models.eval_split(run.model)
    summary = {"n_beats": int(len(idx)), "cascade": {}, "faithfulness": {}}
    maps = {}
    seen = set()
    for m in cfg.methods:
        method = attribution.get(m.name, **m.hparams)
        if method.kind == "control" or method.name in seen or attribution.refusal(method, models.model_info(run.model)):
            continue
        seen.add(method.name)
        key = jax.random.key(cfg.seed)
        log.info("sanity: cascading randomisation of %s on %d beats", method.name, len(idx))
        res = cascade_for_model(run.model, fresh, method, x, y, key=key, memory_budget=memory_budget)
        res.save(out_dir)
        plotting.save_figure(plotting.plot_cascade(res, title=f"{method.name}: cascading randomisation"), out_dir / f"cascade_{method.name}.png")
        summary["cascade"][method.name] = res.summary()
        maps[method.name] = attribution.attribute_dataset(gs, x, y, method, key=key, memory_budget=memory_budget).maps
    if maps:
        log.info("sanity: deletion/insertion curves for %s", sorted(maps))
        faith = deletion_insertion(gs, x, y, maps, beats.r[idx], beats.lo[idx], beats.hi[idx], beats.fs, seed=cfg.seed,
                                   memory_budget=memory_budget)
        faith.save(out_dir)
        plotting.save_figure(plotting.plot_faithfulness(faith, title="deletion / insertion by 0.1 s segment"), out_dir / "faithfulness.png")
        s = faith.summary()
        summary["faithfulness"] = {"deletion_auc": s["deletion_auc"], "insertion_auc": s["insertion_auc"]}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def noise_stress(cfg: StudyConfig, run, out_dir: Path, *, data_dir=None, cache=None, memory_budget: int | None = None) -> dict:
    """Accuracy and saliency-profile shift against SNR with nstdb ``bw``/``ma`` noise added to test beats.

    The noise is added to the unnormalised beats (the run's protocol with
    ``normalisation="none"``) and the run's normalisation applied afterwards,
    as a real noisy recording would be processed. The profile shift is the
    Spearman correlation between the clean and the noisy per-class median
    |saliency| segment profiles (1 = unchanged).

    Args:
      run: the loaded run (``ecgjax.train.Run``).
    Returns a JSON-ready summary (``NoiseResult``'s fields); ``noise.json`` lands in ``out_dir``.
    """
    import jax
    from scipy.stats import spearmanr

    from ecgjax import attribution, models
    from ecgjax.analysis import class_profiles, segment_values
    from ecgjax.data import beats as beats_lib
    from ecgjax.data import load_beats, noise, protocols

    out_dir.mkdir(parents=True, exist_ok=True)
    beats = run.beats
    proto = protocols.get(run.config.data.protocol, **dict(run.config.data.protocol_overrides))
    raw = load_beats(proto.replace(normalisation="none"), data_dir, cache=cache)
    if len(raw) != len(beats) or not np.array_equal(raw.sample, beats.sample):
        raise ValueError("raw and normalised beat sets differ; cannot run the noise stress test")
    idx = _subset(run, cfg.noise_max_beats, cfg.seed)
    x_raw, valid, y = raw.x[idx], raw.valid[idx], beats.y[idx]
    s_power = noise.qrs_signal_power(x_raw, raw.r[idx], valid, raw.fs)
    gs = models.eval_split(run.model)
    sal = attribution.get("saliency")
    classes = beats.classes

    def evaluate(x):
        res = attribution.attribute_dataset(gs, x, y, sal, key=jax.random.key(cfg.seed), memory_budget=memory_budget)
        seg = segment_values(np.abs(res.maps), beats.r[idx], beats.lo[idx], beats.hi[idx], beats.fs)
        prof = class_profiles(seg.values, y, beats.record[idx], idx=np.arange(len(idx)), classes=classes, n_boot=0)
        return float(np.mean(res.pred == y)), prof.median

    clean_acc, clean_prof = evaluate(beats_lib.normalise(x_raw, valid, proto.normalisation))
    rows = [{"noise": "none", "snr_db": None, "accuracy": clean_acc, "profile_spearman": 1.0}]
    for name in cfg.noise_records:
        nz = noise.load_noise(name, data_dir)
        for snr in cfg.noise_snr_db:
            xn = beats_lib.normalise(noise.add_noise(x_raw, valid, nz, snr, signal_power=s_power, seed=cfg.seed), valid, proto.normalisation)
            acc, prof = evaluate(xn)
            a, b = clean_prof.ravel(), prof.ravel()
            ok = np.isfinite(a) & np.isfinite(b)
            rho = float(spearmanr(a[ok], b[ok]).statistic) if ok.sum() > 2 else float("nan")
            rows.append({"noise": name, "snr_db": float(snr), "accuracy": acc, "profile_spearman": rho})
            log.info("noise %s at %g dB: accuracy %.3f (clean %.3f), profile rho %.3f", name, snr, acc, clean_acc, rho)
    out = {"n_beats": int(len(idx)), "rows": rows, "signal_power": s_power.tolist(),
           "method": "nst calibration: S = mean (QRS peak-to-peak)^2 / 8 per lead, N = mean square of the zero-mean noise"}
    atomic_write_json(out_dir / "noise.json", out)
    return out
