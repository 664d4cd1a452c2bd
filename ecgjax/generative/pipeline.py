"""``traverse_run``: generative explanations of a trained run, end to end (what ``ecgjax traverse`` calls).

For a run (``ecgjax train``'s workdir) and a query (target class, source class):

1. the beat VAE: loaded from ``vae_dir``, or trained on the run's *training*
   beats (the leads only; valid samples) and saved there;
2. the classifier on reconstructed test beats against the originals
   (``explain.reconstruction_fidelity``; a generated beat is read as a real one,
   ``vae.as_input``: the window's padding and the protocol's normalisation), and per class why it differs
   (``explain.reconstruction_diagnosis``: lost beats, QRS blur);
3. the target class's saliency profile over its test beats;
4. the traversals of test beats of the source class towards the target
   (``explain.explain_class``), and the same for two randomised classifiers
   (the registry's freshly initialised models of the same config, two seeds)
   and, given ``compare``, for a second trained run (another training seed):
   the sanity check compares the directions (``explain.direction_agreement``:
   trained vs trained should agree, trained vs randomised should not);
5. ``summary.json``, ``summary.md``, ``traversal.npz`` and figures (morph
   strips, change heat maps) under ``out``.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
from flax import nnx

from ecgjax.errors import ConfigError, DataError
from ecgjax.io import atomic_savez, atomic_write_json, atomic_write_text, environment_info

log = logging.getLogger(__name__)


def _subset(idx: np.ndarray, n: int, seed: int) -> np.ndarray:
    idx = np.asarray(idx)
    if len(idx) <= n:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, n, replace=False))


def get_vae(run, vae_dir: Path, *, latent: int, beta: float, width: int, epochs: int, max_train: int, seed: int,
            sigma: float = 0.1,
            progress: bool = True):
    """The VAE in ``vae_dir``, or one trained on the run's training beats (at most ``max_train``) and saved there."""
    from ecgjax.generative import vae as V

    n_leads = run.beats.x.shape[2] - len(run.beats.rr_names)  # a two-input run's RR channels follow the leads
    shape = (run.beats.x.shape[1], n_leads)
    if (Path(vae_dir) / "vae.json").is_file():
        vae = V.load_vae(vae_dir)
        if tuple(vae.settings.in_shape) != shape:
            raise DataError(f"the VAE in {vae_dir} reads beats of shape {vae.settings.in_shape}, the run's leads are "
                            f"{shape}; pass another --vae folder")
        log.info("VAE loaded from %s (latent %d, beta %g)", vae_dir, vae.settings.latent, vae.settings.beta)
        return vae
    tr = _subset(run.split.train, max_train, seed)
    st = V.VAESettings(in_shape=shape, latent=latent, width=width, beta=beta, sigma=sigma, fs=run.beats.fs)
    mask = V.valid_mask(run.beats.lo[tr], run.beats.hi[tr], shape[0])
    vae, hist = V.train_vae(run.beats.x[tr][..., :n_leads], st, mask=mask, epochs=epochs, batch_size=128, seed=seed,
                            progress=progress)
    V.save_vae(vae, vae_dir, history=hist)
    return vae


def _wave_bounds(b, src: np.ndarray, tgt: np.ndarray, data_dir) -> tuple[np.ndarray, np.ndarray, str]:
    """The wave bounds (``Waves.bounds``) of the source and target beats, NaN where the delineation's quality flag is
    off, and the delineation method."""
    from ecgjax.data.delineation import load_waves

    out = []
    for idx in (src, tgt):
        w = load_waves(b.subset(idx), data_dir)
        out.append(np.where(w.quality[:, None], w.bounds, np.nan).astype(np.float32))
    return out[0], out[1], w.method


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def traverse_run(workdir, *, target: str, source: str, out=None, vae_dir=None, max_beats: int = 200,
                 fidelity_beats: int = 4000, latent: int = 16, beta: float = 1.0, width: int = 16, sigma: float = 0.1,
                 vae_epochs: int = 10,
                 vae_max_train: int = 20000, steps: int = 300, proximity: float = 0.05, n_points: int = 11,
                 method: str = "saliency", seed: int = 0, batch_size: int = 256, memory_budget: int | None = None,
                 waves: bool = True, compare=None, data_dir=None, command: str = "", progress: bool = True,
                 run=None) -> dict:
    """Generative explanations of the run in ``workdir`` for one query; returns the summary dict (also written; its
    ``figures`` lists each figure's file, relative to ``out``, and caption).

    Args:
      target, source: class names of the run's classes (the query: source beats morphed towards target).
      out: output folder (default ``WORKDIR/traversals/SOURCE-to-TARGET``); vae_dir: default ``WORKDIR/vae``.
      max_beats: source beats traversed (and target beats for the saliency profile), a seeded subset of the test part.
      fidelity_beats: test beats for the classifier-on-reconstructions check.
      latent, beta, width, sigma, vae_epochs, vae_max_train: the VAE trained when ``vae_dir`` holds none (sigma: its
        decoder's standard deviation in the beats' units).
      steps, proximity, n_points: the traversal (``generative.traverse``); method: the attribution method of the profile.
      waves: also the per-wave change (neurokit2's delineation of the records, ``data.delineation``; beats whose
        delineation fails its quality flag count as absent).
      compare: optional workdir of a second run of the same data and model config (another training seed): its
        traversals of the same beats, and their agreement with this run's (the seed sanity check).
      run: the run in ``workdir`` already loaded (``train.run.load_run``; the study passes the one it holds), or None.
    """
    from ecgjax import attribution, models
    from ecgjax.analysis import plotting
    from ecgjax.generative import explain as EX
    from ecgjax.train import load_run

    if method not in attribution.available():
        raise ConfigError(f"--method {method!r}: not a registered attribution method; available: {', '.join(attribution.available())}")
    run = load_run(workdir, data_dir=data_dir) if run is None else run
    classes = list(run.beats.classes)
    other = None
    if compare is not None:
        other = load_run(compare, data_dir=data_dir)
        if other.config.data != run.config.data or other.config.model != run.config.model:
            raise ConfigError(f"--compare {compare}: its data or model config differs from {workdir}'s; compare runs "
                              "that differ only in their training seed")
    for what, c in (("--target", target), ("--source", source)):
        if c not in classes:
            raise ConfigError(f"{what} {c!r}: not a class of this run; classes: {', '.join(classes)}")
    if target == source:
        raise ConfigError(f"--target and --source are both {target!r}; a traversal moves beats of one class towards another")
    t_idx, s_idx = classes.index(target), classes.index(source)
    out = Path(out or Path(workdir) / "traversals" / f"{source}-to-{target}")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    vae = get_vae(run, Path(vae_dir or Path(workdir) / "vae"), latent=latent, beta=beta, width=width, sigma=sigma,
                  epochs=vae_epochs,
                  max_train=vae_max_train, seed=seed, progress=progress)
    n_leads = vae.settings.in_shape[1]
    b = run.beats
    test = np.asarray(run.split.test)
    names, _ = b.lead_axis(test)
    names = list(names)[:n_leads]
    kw = dict(batch_size=batch_size, memory_budget=memory_budget, progress=progress)
    norm = b.protocol.get("normalisation", "none")  # how a generated beat becomes classifier input (vae.as_input)

    fid_idx = _subset(test, fidelity_beats, seed)
    fid = EX.reconstruction_fidelity(run.model, vae, b.x[fid_idx], b.y[fid_idx], lo=b.lo[fid_idx], hi=b.hi[fid_idx],
                                     normalisation=norm, **kw)
    diagnosis = EX.reconstruction_diagnosis(vae, b.x[fid_idx][..., :n_leads], b.y[fid_idx], fid["pred_original"],
                                            fid["pred_reconstructed"], b.r[fid_idx], b.lo[fid_idx], b.hi[fid_idx], b.fs,
                                            classes, record=b.record[fid_idx], symbol=b.symbol[fid_idx],
                                            prob_true=fid["prob_true_original"])

    src = _subset(test[b.y[test] == s_idx], max_beats, seed)
    tgt = _subset(test[b.y[test] == t_idx], max_beats, seed)
    if len(src) == 0 or len(tgt) == 0:
        raise DataError(f"the run's test part has {len(src)} {source} and {len(tgt)} {target} beats; choose classes present in both")
    where = lambda i: (b.r[i], b.lo[i], b.hi[i])  # noqa: E731
    if waves and "database" not in b.protocol:
        log.info("no per-wave change: the %s beats come from no database to delineate", b.protocol.get("name"))
        waves = False
    bounds, delineation = None, None
    if waves:
        *bounds, delineation = _wave_bounds(b, src, tgt, data_dir)
    # one segment grid for the profile and the changes (midpoint windows put R at different places per beat)
    n_side = EX.segments_per_side(np.concatenate([b.r[src], b.r[tgt]]), b.x.shape[1], b.fs)
    profile, wave_profile = EX.class_saliency_profile(run.model, b.x[tgt], t_idx, *where(tgt), b.fs, n_leads=n_leads,
                                                      method=method, lead_names=names, n_per_side=n_side,
                                                      bounds=None if bounds is None else bounds[1], **kw)
    tkw = dict(steps=steps, proximity=proximity, n_points=n_points, lead_names=names, source_saliency_method=method,
               normalisation=norm, n_per_side=n_side, **kw)
    wkw = {} if bounds is None else {"bounds": bounds[0], "wave_profile": wave_profile}
    ex = EX.explain_class(run.model, vae, b.x[src], t_idx, *where(src), b.fs, profile=profile, **wkw, **tkw)
    cfg = run.config.model
    fresh = [models.build(cfg.name, n_classes=len(classes), in_shape=run.model.in_shape, fs=b.fs, rngs=nnx.Rngs(seed + k),
                          **dict(cfg.kwargs)) for k in (1, 2)]
    ex_rand, ex_rand2 = (EX.explain_class(m, vae, b.x[src], t_idx, *where(src), b.fs, profile=profile, **wkw, **tkw)
                         for m in fresh)
    ex_cmp = None if other is None else EX.explain_class(other.model, vae, b.x[src], t_idx, *where(src), b.fs,
                                                         profile=profile, **wkw, **tkw)

    summary = {
        "command": command, "workdir": str(workdir), "model": cfg.name, "classes": classes, "target": target, "source": source,
        "vae": {"latent": vae.settings.latent, "beta": vae.settings.beta, "width": vae.settings.width,
                "sigma": vae.settings.sigma},
        "traverse": {"steps": steps, "proximity": proximity, "n_points": n_points, "method": method, "seed": seed},
        "fidelity": {k: v for k, v in fid.items() if not isinstance(v, np.ndarray)},
        "diagnosis": diagnosis,
        "trained": ex.summary(), "randomised": ex_rand.summary(),
        "randomised_vs_trained_change": float(EX.nan_median(EX.paired_agreement(ex.change[:, -1], ex_rand.change[:, -1]))),
        "directions": _directions(ex, ex_rand, ex_rand2, ex_cmp), "compare": None if compare is None else str(compare),
        "compared": None if ex_cmp is None else ex_cmp.summary(), "delineation": delineation,
        "wall_s": time.perf_counter() - t0, **environment_info(),
    }
    tr = ex.traversal
    extra = {} if ex.waves is None else {"wave_change": ex.waves[0], "wave_labels": np.asarray(ex.waves[1]),
                                         "wave_profile": ex.waves[2]}
    atomic_savez(out / "traversal.npz", **extra, index=src, target=tr.target, z=tr.z, beats=tr.beats, prob=tr.prob,
                 prior_logpdf=tr.prior_logpdf, direction=tr.direction, change=ex.change, profile=ex.profile,
                 agreement=ex.agreement, labels=np.asarray(ex.labels), prob_randomised=ex_rand.traversal.prob,
                 change_randomised=ex_rand.change)
    summary["figures"] = [{"file": str(p.relative_to(out)), "caption": c}
                          for p, c in _figures(out / "figures", ex, ex_rand, b, src, names, source, target, plotting)]
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    return summary


def _directions(ex, ex_rand, ex_rand2, ex_cmp) -> dict:
    """The seed sanity check: ``direction_agreement`` of pairs of traversals of the same beats, in latent and beat space."""
    from ecgjax.generative import explain as EX

    pairs = {"trained_vs_randomised": (ex, ex_rand), "trained_vs_randomised_2": (ex, ex_rand2),
             "randomised_vs_randomised_2": (ex_rand, ex_rand2)}
    if ex_cmp is not None:
        pairs["trained_vs_trained_2"] = (ex, ex_cmp)
    return {k: {"latent": EX.direction_agreement(a.traversal.direction, b.traversal.direction),
                "beats": EX.direction_agreement(a.traversal.signed_change(), b.traversal.signed_change())}
            for k, (a, b) in pairs.items()}


_UNITS = {"zscore_lead": "per-lead z-score", "minmax_beat": "min-max scaled over the window",
          "minmax_lead": "per-lead min-max scaled", "none": "record units"}


def _figures(fig_dir: Path, ex, ex_rand, b, src, names, source: str, target: str, plotting) -> list[tuple[Path, str]]:
    """The morph strips of up to three beats and the change heat maps (per 0.1 s segment, per wave when the beats were
    delineated; the randomised classifier's beside them); returns (path, caption) per figure, in report order."""
    from ecgjax.analysis.plotting import SEGMENT_AXIS
    from ecgjax.generative import explain as EX

    fig_dir.mkdir(parents=True, exist_ok=True)
    units = _UNITS.get(b.protocol.get("normalisation"), "normalised units")
    leads = " and ".join(names)
    tr = ex.traversal
    n, p = tr.prob.shape
    rho = tr.spearman()
    order = np.argsort(-np.nan_to_num(rho - 2 * (tr.prob[:, -1] <= 0.5)))[:3]  # monotone paths that reach the target first
    out = []
    for k, i in enumerate(order):
        title = (f"record {b.record[src[i]]}, beat at sample {b.sample[src[i]]}: towards {target} "
                 f"(P {tr.prob[i, 0]:.2f} -> {tr.prob[i, -1]:.2f})")
        fig = plotting.plot_morph_strip(tr.beats[i], tr.prob[i], b.fs, r=int(b.r[src[i]]), lead_names=names, target=target,
                                        units=units, title=title)
        path = fig_dir / f"morph_{k}.png"
        plotting.save_figure(fig, path)
        out.append((path, f"Beat morph strip: a {source} test beat of record {b.record[src[i]]} (sample "
                          f"{b.sample[src[i]]}) decoded at {p} points along its latent path towards {target}, one panel "
                          f"per lead ({leads}; amplitude in {units}, time in s from R); colour: the classifier's "
                          f"P({target}) at each point, {tr.prob[i, 0]:.2f} at the start (dashed: the beat's "
                          f"reconstruction) -> {tr.prob[i, -1]:.2f} at the end (bold); Spearman rho of position "
                          f"and P({target}) {rho[i]:.2f}."))
    what = (f"mean |change| of the generated beat against the path's start, in {units}; columns: {SEGMENT_AXIS} "
            f"(leads {leads}); grey: outside the signal")
    figs = [("change_path", EX.nan_stat(np.nanmedian, ex.change), ex.labels, ex.profile, "position along the path",
             SEGMENT_AXIS, f"median change over {n} beats along the path towards {target}",
             f"Change heat map per 0.1 s segment, trained classifier: rows = the {p} points along the path (0: start), "
             f"median over the {n} {source} beats traversed towards {target}; {what}. Below: the change at the "
             f"path's end beside {target}'s saliency profile, each scaled to its maximum."),
            ("change_beats", ex.change[:, -1], ex.labels, None, "beat", SEGMENT_AXIS,
             f"change at the path's end, per beat (towards {target})",
             f"Change heat map per 0.1 s segment and beat: each row one of the {n} {source} beats at the end of its "
             f"path towards {target}; {what}."),
            ("change_path_randomised", EX.nan_stat(np.nanmedian, ex_rand.change), ex_rand.labels, ex.profile,
             "position along the path", SEGMENT_AXIS, f"randomised classifier: median change towards {target}",
             f"The same heat map for a randomised classifier (same architecture, re-initialised weights; the sanity "
             f"check): median change over the same {n} beats along its paths towards {target}; {what}.")]
    if ex.waves is not None:
        wchange, wlabels, wprofile = ex.waves
        wave_axis = "wave of the source beat's delineation (lead:wave)"
        figs.append(("change_waves", EX.nan_stat(np.nanmedian, wchange), wlabels, wprofile, "position along the path",
                     wave_axis, f"median change per wave along the path towards {target}",
                     f"Change heat map per wave: rows = the {p} points along the path, median over the {n} {source} "
                     f"beats (those whose delineation passed its quality flag) of the mean |change| within each wave "
                     f"(P, PR, QRS, ST, T) of the source beat, in {units}; columns: lead:wave for leads {leads}. "
                     f"Below: the change at the path's end beside {target}'s per-wave saliency profile, each scaled "
                     "to its maximum."))
    for name, change, labels, profile, rows, cols, title, caption in figs:
        path = fig_dir / f"{name}.png"
        plotting.save_figure(plotting.plot_change_heatmap(change, labels, profile=profile, units=units, row_label=rows,
                                                          column_axis=cols, title=title), path)
        out.append((path, caption))
    return out


def summary_markdown(s: dict) -> str:
    """The summary as Markdown: the fidelity line and one table, trained against randomised."""
    f = s["fidelity"]
    rows = [("median Spearman rho (position, P(target))", "median_spearman"), ("beats with rho >= 0.9", "frac_spearman_ge_0_9"),
            ("beats starting below 0.5", "frac_start_below_0_5"), ("beats crossing 0.5", "frac_cross_0_5"),
            ("median P(target) start", "median_prob_start"), ("median P(target) end", "median_prob_end"),
            (f"starts inside the prior's {s['trained']['prior_mass']:.0%} sphere", "frac_start_inside_prior_bound"),
            (f"paths inside the prior's {s['trained']['prior_mass']:.0%} sphere", "frac_inside_prior_bound"),
            ("paths inside that sphere or (starting outside it) no further out than their start", "frac_no_lower_than_start"),
            ("median agreement with the saliency profile (Spearman)", "median_agreement"),
            ("class-level agreement (mean change vs profile)", "class_agreement"),
            ("median agreement with the beat's own saliency of the target (Spearman)", "median_source_agreement"),
            ("consistency across beats (median pairwise Spearman)", "consistency"), ("most changed segment", "top_segment")]
    if "top_wave" in s["trained"]:
        rows += [("most changed wave", "top_wave"), ("median agreement with the per-wave saliency profile", "median_wave_agreement"),
                 ("class-level per-wave agreement", "class_wave_agreement")]
    lines = [f"**{s['model']}**, {s['source']} -> {s['target']} ({s['trained']['n']} beats); VAE latent {s['vae']['latent']}, "
             f"beta {s['vae']['beta']:g}; classifier accuracy on {f['n']} test beats: originals {f['acc_original']:.3f}, "
             f"reconstructions {f['acc_reconstructed']:.3f} (gap {100 * f['acc_gap']:+.1f} points; same prediction "
             f"{f['pred_agreement']:.3f})" + (f"; the decoder's output unprojected: {f['acc_reconstructed_raw']:.3f}"
                                              if "acc_reconstructed_raw" in f else ""),
             "", "| | trained | randomised |", "|---|---|---|"]
    if s.get("diagnosis"):
        d = s["diagnosis"]
        per = "; ".join(f"{c} {e['recall_original']:.3f} -> {e['recall_reconstructed']:.3f} ({e['lost']} lost, {e['gained']} gained)"
                        for c, e in d["per_class"].items())
        fl, kp = d["flipped"], d["kept"]
        lines[0] += (f". Recall per class, originals -> reconstructions: {per}. Beats whose prediction flipped "
                     f"({fl['n']}) against kept ({kp['n']}): median r {_fmt(fl['median_r'])} / {_fmt(kp['median_r'])}, QRS "
                     f"slope ratio {_fmt(fl['median_slope_ratio'])} / {_fmt(kp['median_slope_ratio'])} (< 1: blurred QRS edges)")
    lines += [f"| {name} | {_fmt(s['trained'].get(k))} | {_fmt(s['randomised'].get(k))} |" for name, k in rows]
    lines += ["", f"Randomised vs trained change, per beat (median Spearman): {s['randomised_vs_trained_change']:.3f}."]
    if s.get("compared"):
        c = s["compared"]
        lines += ["", f"The second trained run ({s['compare']}): median rho {c['median_spearman']:.3f}, crossing 0.5 "
                      f"{c['frac_cross_0_5']:.3f}, median agreement with the saliency profile {c['median_agreement']:.3f}."]
    if s.get("directions"):
        lines += ["", "Seed sanity check: cosine between the directions of two traversals of the same beats (class: of the "
                      "mean unit directions; beat: median over beats). Trained runs from different seeds should agree, "
                      "a trained and a randomised classifier should not.", "",
                  "| pair | latent, class | latent, beat | beat space, class | beat space, beat |", "|---|---|---|---|---|"]
        for k, v in s["directions"].items():
            lines.append(f"| {k.replace('_', ' ')} | {v['latent']['class_cosine']:.3f} | {v['latent']['median_beat_cosine']:.3f} "
                         f"| {v['beats']['class_cosine']:.3f} | {v['beats']['median_beat_cosine']:.3f} |")
    return "\n".join(lines) + "\n"
