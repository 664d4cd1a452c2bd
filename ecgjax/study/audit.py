"""The study's audit stages (issue 17) on the first explained run, and their report sections.

Stages, each with its marker ``stages/<name>.json`` (skipped when finished):

* ``audit_sanity``: independent layer randomisation, data (label) randomisation
  against a copy trained on permuted labels, random-logit, completeness of the
  methods that have an axiom, and ROAD (MoRF/LeRF) beside deletion/insertion;
  throughput of each check.
* ``glocal``: mean aligned relevance per subgroup (record, sex, age band, the
  medications named) x class x lead x 0.1 s segment, and x wave (P, PR, QRS,
  ST, T from ``ecgjax.data.delineation``), with record-bootstrap CIs, the
  split-half stability of the class profiles, and Zhang et al.'s class x lead
  matrix, for every explained method.
* ``clusters``: k-means of the aligned attributions within each class, with
  silhouette and adjusted Rand index against the records.
* ``tcav``: concept activation vectors for beat concepts (wide QRS, absent P
  wave, premature beat) at a named layer, tested against random concepts.

Files go to ``<workdir>/audit/<run>/``. :func:`run_audit` is the pipeline's one
call; :func:`render` adds the report sections from the :class:`AuditResult`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from ecgjax.io import atomic_write_json

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AuditResult:
    """What the audit stages found on one run (each None when not configured).

    Attributes:
      run: the run audited.
      sanity: the ``audit_sanity`` stage's summary.
      glocal: the ``glocal`` stage's summary.
      clusters: the ``clusters`` stage's summary.
      tcav: the ``tcav`` stage's summary.
      figures: {stage: PNG paths, sorted}.
    """

    run: str
    sanity: dict | None
    glocal: dict | None
    clusters: dict | None
    tcav: dict | None
    figures: dict


def _methods(cfg, run):
    """The study's methods that apply to the run, once per name, controls left out, backgrounds filled."""
    from ecgjax import attribution, models
    from ecgjax.attribution.explain import with_data_background

    out, seen = [], set()
    for m in cfg.methods:
        method = attribution.get(m.name, **m.hparams)
        if method.kind == "control" or method.name in seen or attribution.refusal(method, models.model_info(run.model)):
            continue
        seen.add(method.name)
        out.append(with_data_background(method, run.beats, run.split.train))
    return out


def _timed(rows: dict, name: str, n: int, fn):
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    rows.setdefault(name, {"beats": 0, "wall_s": 0.0})
    rows[name]["beats"] += n
    rows[name]["wall_s"] += dt
    return out


# -- audit_sanity ------------------------------------------------------------------------------------


def audit_sanity(cfg, run, out_dir: Path, *, memory_budget: int | None = None) -> dict:
    """Independent layer and data randomisation, random-logit (``audit.methods``, default all), completeness and
    ROAD (every method) on a balanced test subset.

    Returns a JSON-ready summary; files (``independent_*``, ``random_logit_*``, ``data_randomization_*``,
    ``road.*``, figures) land in ``out_dir``.
    """
    import jax
    from flax import nnx

    from ecgjax import attribution, models
    from ecgjax.analysis import plotting
    from ecgjax.attribution import sanity
    from ecgjax.study.subsets import balanced_subset
    from ecgjax.train.permuted import train_on_permuted_labels

    a = cfg.audit
    out_dir.mkdir(parents=True, exist_ok=True)
    beats, split = run.beats, run.split
    idx = balanced_subset(beats.y, split.test, a.sanity_beats, cfg.seed)
    x, y = beats.x[idx], beats.y[idx].astype(np.int32)
    mc = run.config.model
    n_classes = len(beats.classes)
    fresh = models.build(mc.name, n_classes=n_classes, in_shape=beats.x.shape[1:], fs=beats.fs,
                         rngs=nnx.Rngs(run.config.train.seed + 1), **mc.kwargs)
    log.info("audit: training a copy on permuted labels (%d steps)", a.permuted_steps)
    perm = train_on_permuted_labels(run.config, beats.x[split.train], beats.y[split.train], n_classes, beats.fs,
                                    steps=a.permuted_steps, seed=cfg.seed)
    gs, perm_gs = models.eval_split(run.model), models.eval_split(perm.model)
    key = jax.random.key(cfg.seed)
    kw = dict(key=key, memory_budget=memory_budget)
    n = len(idx)
    summary = {"n_beats": int(n), "permuted": {"steps": perm.steps, "n_beats": perm.n_beats, "train_accuracy": perm.train_accuracy},
               "independent": {}, "random_logit": {}, "data_randomization": {}, "completeness": {}, "road": {}, "throughput": {}}
    thr: dict = {}
    maps = {}
    for method in _methods(cfg, run):
        name = method.name
        maps[name] = attribution.attribute_dataset(gs, x, y, method, r=beats.r[idx], **kw).maps
        comp = _timed(thr, "completeness", n, lambda: sanity.method_completeness(gs, method, x, y, maps[name], memory_budget=memory_budget))
        if "not_measured" not in comp:
            summary["completeness"][name] = comp
        if a.methods and name not in a.methods:
            continue
        log.info("audit: randomisation checks of %s on %d beats", name, n)
        ind = _timed(thr, "independent layer randomisation", n,
                     lambda: sanity.cascade_for_model(run.model, fresh, method, x, y, mode="independent", **kw))
        ind.save(out_dir)
        plotting.save_figure(plotting.plot_cascade(ind, title=f"{name}: independent layer randomisation"), out_dir / f"independent_{name}.png")
        summary["independent"][name] = ind.summary()
        rl = _timed(thr, "random-logit", n, lambda: sanity.random_logit(gs, method, x, seed=cfg.seed, **kw))
        rl.save(out_dir)
        summary["random_logit"][name] = rl.summary()
        dr = _timed(thr, "data randomisation (attribution only)", n, lambda: sanity.data_randomization(gs, perm_gs, method, x, y, **kw))
        dr.save(out_dir)
        summary["data_randomization"][name] = dr.summary()
    if maps:
        log.info("audit: ROAD curves for %s", sorted(maps))
        road = _timed(thr, f"ROAD ({len(maps) + 1} rankings x {2 * len(a.road_fractions)} points)", n,
                      lambda: sanity.road(gs, x, y, maps, beats.r[idx], beats.lo[idx], beats.hi[idx], beats.fs,
                                          fractions=a.road_fractions, noise=a.road_noise, seed=cfg.seed, memory_budget=memory_budget))
        road.save(out_dir)
        plotting.save_figure(plotting.plot_road(road, title="ROAD: remove and debias by 0.1 s segment"), out_dir / "road.png")
        s = road.summary()
        summary["road"] = {k: s[k] for k in ("morf_auc", "lerf_auc", "lerf_minus_morf", "noise", "fractions")}
    summary["throughput"] = {k: {**v, "beats_per_s": v["beats"] / max(v["wall_s"], 1e-9)} for k, v in thr.items()}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


# -- glocal ------------------------------------------------------------------------------------------


def _subgroupings(cfg, run, data_dir) -> dict[str, dict[str, str]]:
    """{subgrouping: {record: group}}: the record itself, and sex / age / medications from the MIT-BIH headers."""
    from ecgjax.data import demographics
    from ecgjax.data.locate import find_database

    records = sorted({str(r) for r in np.unique(run.beats.record)})
    out = {"record": {r: r for r in records}}
    if run.config.data.protocol == "synthetic":
        return out
    info = demographics.record_info(find_database("mitdb", data_dir, download=False), records)
    return {**out, **demographics.subgroups(info, medications=cfg.audit.medications)}


def _explained_waves(run, index: np.ndarray, *, data_dir, cache, waves_on: bool = True):
    """``(Waves of beats.subset(u), u)`` for the sorted unique beats ``u`` of ``index``, or ``(None, why)``."""
    from ecgjax.errors import DataError

    if run.config.data.protocol == "synthetic":
        return None, "synthetic beats have no records to delineate"
    if not waves_on:
        return None, "audit.waves is off"
    from ecgjax.data.delineation import load_waves

    u = np.unique(index)
    try:
        return (load_waves(run.beats.subset(u), data_dir, cache=cache, download=False), u), ""
    except (DataError, OSError) as e:
        return None, f"delineation failed ({e})"


def glocal_stage(cfg, run, methods_info: dict, out_dir: Path, *, data_dir=None, cache=None) -> dict:
    """Glocal tables by 0.1 s segment and by wave, split-half stability and the class x lead matrix for every
    explained method.

    Args:
      methods_info: the explain stage's ``{method key: {"attr_dir", "profile_dir", "spec", ...}}`` for the run.
    """
    from ecgjax.analysis import plotting
    from ecgjax.analysis.glocal import glocal_means, split_half
    from ecgjax.analysis.leads import class_lead_matrix, lead_relevance
    from ecgjax.analysis.transforms import transform_maps
    from ecgjax.analysis.waves import usable_wave_values, wave_labels
    from ecgjax.attribution.attributions import Attributions
    from ecgjax.io import load_npz

    a = cfg.audit
    out_dir.mkdir(parents=True, exist_ok=True)
    beats = run.beats
    classes = tuple(beats.classes)
    groupings = _subgroupings(cfg, run, data_dir)
    summary = {"subgroupings": {k: sorted(set(v.values())) for k, v in groupings.items()}, "methods": {}, "waves_left_out": ""}
    waves = None
    for i, (key, info) in enumerate(methods_info.items()):
        seg = load_npz(Path(info["profile_dir"]) / "segments.npz", "segment values")
        values, label, index = seg["values"], seg["label"].astype(np.int64), seg["index"].astype(np.int64)
        labels = [str(s) for s in seg["labels"]]
        record = beats.record[index].astype(str)
        if i == 0:
            waves, summary["waves_left_out"] = _explained_waves(run, index, data_dir=data_dir, cache=cache, waves_on=a.waves)
        mdir = out_dir / key
        mdir.mkdir(parents=True, exist_ok=True)
        res = {"split_half": None, "separated": {}, "separated_waves": {}, "lead_matrix": None, "waves": None}
        for name, group_of in groupings.items():
            t = glocal_means(values, label, record, classes, group_of, subgrouping=name, n_boot=cfg.n_boot, seed=cfg.seed)
            t.save(mdir / f"glocal_{name}.npz")
            res["separated"][name] = _separated(t)
            if i == 0 and name != "record":
                plotting.save_figure(plotting.plot_glocal(t, labels, title=f"{key}: by {name}"), out_dir / f"glocal_{name}.png")
        sh = split_half(values, label, record, classes, n_splits=a.glocal_splits, seed=cfg.seed)
        res["split_half"] = sh.summary()
        plotting.save_figure(plotting.plot_split_half(sh, title=f"{key}: split-half stability over {a.glocal_splits} record splits"),
                             out_dir / f"split_half_{key}.png")
        how = info["spec"]["transform"]
        names = beats.lead_axis(index)[0]
        rel, grp, wv, widx, wlab, wcount = [], [], [], [], [], {}
        for part in Attributions.load_classes(info["attr_dir"]):
            j = part.index.astype(np.int64)
            m = transform_maps(part.maps[..., : len(names)], how)
            rel.append(lead_relevance(m, transform="signed" if how == "signed" else "abs", lo=beats.lo[j], hi=beats.hi[j]))
            grp.append(part.label)
            if waves is not None:  # only beats whose delineation passed the quality flag
                w, u = waves
                rows = np.searchsorted(u, j)
                v, keep, n = usable_wave_values(m, w.bounds[rows], w.quality[rows], part.label, classes, beats.lo[j], beats.hi[j])
                wv.append(v)
                widx.append(j[keep])
                wlab.append(part.label[keep])
                for c, (used, seen) in n.items():
                    wcount[c] = [wcount.get(c, [0, 0])[0] + used, wcount.get(c, [0, 0])[1] + seen]
        lm_how = "signed" if how == "signed" else "abs"
        lm = class_lead_matrix(np.concatenate(rel), np.concatenate(grp).astype(np.int64), classes, names, transform=lm_how)
        res["lead_matrix"] = {"share": lm.share.tolist(), "count": lm.count.tolist(), "leads": list(lm.leads), "transform": how}
        plotting.save_figure(plotting.plot_class_lead_matrix(lm, title=f"{key}: class x lead (Zhang et al.)"), out_dir / f"lead_matrix_{key}.png")
        if wv:
            wvals, wj, wy = np.concatenate(wv), np.concatenate(widx), np.concatenate(wlab).astype(np.int64)
            wrec = beats.record[wj].astype(str)
            wl = list(wave_labels(names))
            for name, group_of in groupings.items():
                t = glocal_means(wvals, wy, wrec, classes, group_of, subgrouping=name, n_boot=cfg.n_boot, seed=cfg.seed)
                t.save(mdir / f"glocal_waves_{name}.npz")
                res["separated_waves"][name] = _separated(t)
            allb = glocal_means(wvals, wy, wrec, classes, {r: "all" for r in np.unique(wrec)}, subgrouping="all",
                                n_boot=cfg.n_boot, seed=cfg.seed)
            res["waves"] = {"labels": wl, "mean": allb.mean[0].reshape(len(classes), -1).tolist(),
                            "ci_lo": allb.ci_lo[0].reshape(len(classes), -1).tolist(),
                            "ci_hi": allb.ci_hi[0].reshape(len(classes), -1).tolist(), "n_beats": allb.n_beats[0].tolist(),
                            "quality": wcount, "method": waves[0].method}
            if i == 0 and "sex" in groupings:
                t = glocal_means(wvals, wy, wrec, classes, groupings["sex"], subgrouping="sex", n_boot=cfg.n_boot, seed=cfg.seed)
                plotting.save_figure(plotting.plot_glocal(t, wl, title=f"{key}: by sex, per wave"), out_dir / "glocal_waves_sex.png")
        summary["methods"][key] = res
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def clusters_stage(cfg, run, methods_info: dict, out_dir: Path) -> dict:
    """k-means of each class's aligned relevance (the explain stage's segment values), for every method."""
    from ecgjax.analysis import plotting
    from ecgjax.analysis.clusters import cluster_class
    from ecgjax.io import atomic_savez, load_npz

    a = cfg.audit
    out_dir.mkdir(parents=True, exist_ok=True)
    beats = run.beats
    summary = {"ks": list(a.cluster_ks), "min_beats": a.cluster_min_beats, "methods": {}}
    for i, (key, info) in enumerate(methods_info.items()):
        seg = load_npz(Path(info["profile_dir"]) / "segments.npz", "segment values")
        values, label, index = seg["values"], seg["label"].astype(np.int64), seg["index"].astype(np.int64)
        found, res = {}, {}
        for c, name in enumerate(beats.classes):
            rows = np.flatnonzero(label == c)
            if len(rows) < a.cluster_min_beats:
                continue
            try:
                cl = cluster_class(values[rows], beats.record[index[rows]], ks=a.cluster_ks, seed=cfg.seed)
            except ValueError as e:
                res[name] = {"not_clustered": str(e)}
                continue
            found[name], res[name] = cl, cl.summary()
            atomic_savez(out_dir / f"clusters_{key}_{name}.npz", index=index[rows], cluster=cl.labels, centroids=cl.centroids, kept=cl.kept)
        if i == 0:
            plotting.save_figure(plotting.plot_cluster_centroids(found, [str(s) for s in seg["labels"]], title=f"{key}: clusters within each class"),
                                 out_dir / f"clusters_{key}.png")
        summary["methods"][key] = res
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


TCAV_ALPHA = 0.05  # family-wise, Bonferroni over the concept x class tests


def tcav_stage(cfg, run, out_dir: Path, *, data_dir=None, cache=None, memory_budget: int | None = None) -> dict:
    """TCAV of the beat concepts (``ecgjax.attribution.tcav.beat_concepts``) for every class, at one named layer."""
    from ecgjax import models
    from ecgjax.analysis import plotting
    from ecgjax.attribution import tcav
    from ecgjax.errors import ConfigError, DataError
    from ecgjax.study.subsets import balanced_subset

    a = cfg.audit
    out_dir.mkdir(parents=True, exist_ok=True)
    beats, split = run.beats, run.split
    info = models.model_info(run.model)
    layer = a.tcav_layer or info.feature_layer
    if layer not in info.layer_names:
        raise ConfigError(f"audit.tcav_layer={layer!r}: {info.name} has the layers {list(info.layer_names)}")
    rng = np.random.default_rng(cfg.seed)
    pool = np.sort(rng.choice(split.train, size=min(len(split.train), 40 * a.tcav_concept_beats), replace=False))
    waves, why = None, ""
    if run.config.data.protocol == "synthetic":
        why = "synthetic beats have no records to delineate"
    elif not a.waves:
        why = "audit.waves is off"
    else:
        from ecgjax.data.delineation import load_waves

        try:
            waves = load_waves(beats.subset(pool), data_dir, cache=cache, download=False)
        except (DataError, OSError) as e:
            why = f"delineation failed ({e})"
    if why:
        log.warning("tcav: concepts from the delineation left out: %s", why)
    concepts = tcav.beat_concepts(beats, pool, waves)
    gs = models.eval_split(run.model)
    kw = dict(memory_budget=memory_budget)
    rand_idx = rng.choice(pool, size=min(len(pool), 4 * a.tcav_concept_beats), replace=False)
    rand_acts, _ = tcav.activations_and_gradients(gs, layer, beats.x[rand_idx], np.zeros(len(rand_idx), np.int32), **kw)
    test = balanced_subset(beats.y, split.test, a.tcav_beats * len(beats.classes), cfg.seed)
    grads = {}
    for c, name in enumerate(beats.classes):
        rows = test[beats.y[test] == c]
        if len(rows):
            grads[name] = tcav.activations_and_gradients(gs, layer, beats.x[rows], np.full(len(rows), c, np.int32), **kw)[1]
    summary = {"layer": layer, "left_out": why, "concept_beats": {k: int(len(v)) for k, v in concepts.items()}, "rows": []}
    for con, idx in concepts.items():
        if len(idx) < 10:
            log.info("tcav: concept %s has %d example beats (< 10), skipped", con, len(idx))
            continue
        idx = rng.choice(idx, size=min(len(idx), a.tcav_concept_beats), replace=False)
        acts, _ = tcav.activations_and_gradients(gs, layer, beats.x[idx], np.zeros(len(idx), np.int32), **kw)
        n = min(len(idx), len(rand_acts) // 2)
        for name, g in grads.items():
            r = tcav.tcav(acts, rand_acts, g, n_random=a.tcav_random_sets, set_size=n, seed=cfg.seed, concept=con, cls=name, layer=layer)
            summary["rows"].append(r.summary())
    n_tests = max(1, len(summary["rows"]))
    for r in summary["rows"]:
        r["significant"] = bool(r["p_value"] < TCAV_ALPHA / n_tests)
    summary["alpha"] = TCAV_ALPHA / n_tests
    plotting.save_figure(plotting.plot_tcav(summary["rows"], alpha=summary["alpha"], title=f"TCAV at {layer}"), out_dir / "tcav.png")
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _separated(t) -> dict:
    """{class: positions where two groups' CIs do not overlap} (a quick 'subgroups differ here' count)."""
    G, C = t.mean.shape[:2]
    out = {}
    for c in range(C):
        lo, hi = t.ci_lo[:, c].reshape(G, -1), t.ci_hi[:, c].reshape(G, -1)
        sep = np.zeros(lo.shape[1], bool)
        for g in range(G):
            for h in range(G):
                if g != h:
                    sep |= np.nan_to_num(lo[g], nan=-np.inf) > np.nan_to_num(hi[h], nan=np.inf)
        out[t.classes[c]] = int(sep.sum())
    return out


# -- the pipeline's one call ---------------------------------------------------------------------------


def run_audit(cfg, stages, first_run, run_name: str, methods_info: dict | None, workdir: Path, *,
              memory_budget: int | None = None, data_dir=None, cache=None) -> AuditResult:
    """Run (or skip, when finished) each configured audit stage on the run ``run_name``.

    Args:
      stages: the pipeline's stage markers (``done(name)`` / ``finish(name, t0, payload)``).
      first_run: a callable returning the loaded run (loaded only when a stage has work to do).
      methods_info: the explain stage's method entries for the run (None: no attributions).
    """
    a = cfg.audit
    out = workdir / "audit" / run_name
    found: dict = {}
    if a.sanity_beats:
        if (s := stages.done("audit_sanity")) is None:
            t0 = time.time()
            s = stages.finish("audit_sanity", t0, audit_sanity(cfg, first_run(), out / "sanity", memory_budget=memory_budget))
        found["sanity"] = s
    if a.glocal_splits and methods_info:
        if (s := stages.done("glocal")) is None:
            t0 = time.time()
            s = stages.finish("glocal", t0, glocal_stage(cfg, first_run(), methods_info, out / "glocal", data_dir=data_dir, cache=cache))
        found["glocal"] = s
    if a.cluster_ks and methods_info:
        if (s := stages.done("clusters")) is None:
            t0 = time.time()
            s = stages.finish("clusters", t0, clusters_stage(cfg, first_run(), methods_info, out / "clusters"))
        found["clusters"] = s
    if a.tcav_beats:
        if (s := stages.done("tcav")) is None:
            t0 = time.time()
            s = stages.finish("tcav", t0, tcav_stage(cfg, first_run(), out / "tcav", data_dir=data_dir, cache=cache,
                                                     memory_budget=memory_budget))
        found["tcav"] = s
    figures = {k: tuple(sorted((out / k).glob("*.png"))) for k in found}
    return AuditResult(run_name, found.get("sanity"), found.get("glocal"), found.get("clusters"), found.get("tcav"), figures)


# -- report -----------------------------------------------------------------------------------------------


def _fmt(v, nd=3) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (float, int)) and np.isfinite(v) else "-"


def render(rep, audit: AuditResult) -> None:
    """Add one report section per audit check that ran."""
    if (s := audit.sanity) is not None:
        _render_sanity(rep, audit, s)
    if (g := audit.glocal) is not None:
        _render_glocal(rep, audit, g)
    if (c := audit.clusters) is not None:
        _render_clusters(rep, audit, c)
    if (t := audit.tcav) is not None:
        _render_tcav(rep, audit, t)


def _render_sanity(rep, audit, s) -> None:
    sec = rep.section("More sanity checks: randomisation, random-logit, completeness")
    sec.text(f"On {s['n_beats']} test beats of {audit.run} (an equal number per class). Similarity of maps is the median over "
             "beats of the Spearman rank correlation of |maps| and of their SSIM (window 7 samples); 'random' is the "
             "similarity of the trained model's |maps| with random maps, the floor. A method passes a randomisation test "
             "when its similarity falls towards the floor (Adebayo et al. 2018).")
    rows = []
    for m, r in s["independent"].items():
        rows.append([m, *[f"{_fmt(a, 2)} / {_fmt(b, 2)}" for a, b in zip(r["median_spearman_abs"], r.get("median_ssim_abs", []))],
                     _fmt(r["random_control_abs"], 2)])
    if rows:
        layers = next(iter(s["independent"].values()))["layers"]
        sec.table(["method", *[f"{l} alone" for l in layers], "random"], rows,
                  caption="Independent layer randomisation: Spearman / SSIM of |maps| with one parameter group re-initialised")
    p = s["permuted"]
    rows = [[m, _fmt(s["data_randomization"][m]["median_spearman_abs"], 2), _fmt(s["data_randomization"][m]["median_ssim_abs"], 2),
             _fmt(s["random_logit"][m]["median_spearman_abs"], 2), _fmt(s["random_logit"][m]["median_ssim_abs"], 2),
             _fmt(s["random_logit"][m]["random_control_abs"], 2)] for m in s["random_logit"]]
    if rows:
        sec.table(["method", "data rand. Spearman", "data rand. SSIM", "random-logit Spearman", "random-logit SSIM", "random"], rows,
                  caption=f"Data randomisation: the trained model's maps vs a copy trained {p['steps']} steps on {p['n_beats']} "
                          f"training beats with permuted labels (it fits {100 * p['train_accuracy']:.0f}% of them). "
                          "Random-logit: the predicted class's map vs a random other class's (Sixt et al. 2020)")
    if s["completeness"]:
        sec.table(["method", "samples/steps", "beats", "median error", "90th percentile", "within 5%"],
                  [[m, c.get("steps") or "-", c["n"], f"{100 * c['median_rel_error']:.2f}%", f"{100 * c['p90_rel_error']:.2f}%",
                    "yes" if c["ok"] else "NO"] for m, c in s["completeness"].items()],
                  caption="Completeness: |sum of attributions - reference| / |reference|; reference f(x) - f(baseline) for IG and "
                          "DeepLIFT, f(x) - mean over the background for expected gradients (in expectation only), f(x) for "
                          "LRP-epsilon (biases absorb some relevance)")
    r = s.get("road") or {}
    if r:
        sec.table(["maps", "MoRF AUC (lower better)", "LeRF AUC (higher better)", "LeRF - MoRF"],
                  [[k, _fmt(r["morf_auc"][k]), _fmt(r["lerf_auc"][k]), _fmt(r["lerf_minus_morf"][k])] for k in r["morf_auc"]],
                  caption=f"ROAD (Rong et al. 2022): real 0.1 s segments removed in the map's order and filled by noisy linear "
                          f"imputation (noise sd {r['noise']}), at {len(r['fractions'])} shares from {r['fractions'][0]:.0%} to "
                          f"{r['fractions'][-1]:.0%}; unlike deletion to a constant it leaves no removal shape for the model to read")
    t = s.get("throughput") or {}
    if t:
        sec.table(["check", "beats", "wall s", "beats/s"], [[k, v["beats"], _fmt(v["wall_s"], 1), _fmt(v["beats_per_s"], 1)] for k, v in t.items()],
                  caption="Throughput of each check (all methods together; on this study's device)")
    for png in audit.figures.get("sanity", ()):
        sec.figure(png, f"{png.stem.replace('_', ' ')}.", name=f"audit-{png.stem}")


def _render_glocal(rep, audit, g) -> None:
    sec = rep.section("Glocal aggregation and split-half stability")
    groups = "; ".join(f"{k}: {len(v)} groups" if k == "record" else f"{k}: {', '.join(v)}" for k, v in g["subgroupings"].items())
    sec.text(f"Mean aligned relevance (the method's segment values, 0.1 s from R) per subgroup x class x lead x segment "
             f"on {audit.run}'s explained test beats, with 95% CIs from resampling the subgroup's records (Wagner et al. 2023). "
             f"Subgroups from the MIT-BIH headers ({groups}). The tables count, per class, the segments where two subgroups' "
             "CIs do not overlap; all tables are in the audit folder as npz.")
    classes = list(next(iter(g["methods"].values()))["split_half"]) if g["methods"] else []
    rows = [[key, name, *[per_class.get(c, "-") for c in classes]]
            for key, res in g["methods"].items() for name, per_class in res["separated"].items() if name != "record"]
    if rows:
        sec.table(["method", "subgrouping", *classes], rows, caption="Segments where subgroups' CIs do not overlap, per class")
    rows = [[key, *[f"{_fmt(v['median'], 2)} [{_fmt(v['lo'], 2)}, {_fmt(v['hi'], 2)}] ({v['n_records']} rec.)"
                    for v in res["split_half"].values()]] for key, res in g["methods"].items()]
    if rows:
        sec.table(["method", *classes], rows,
                  caption="Split-half stability: Pearson r between the class profiles of two disjoint halves of the records, "
                          "median [2.5%, 97.5%] over random splits ('-': the class's records never fall in both halves)")
    rows = []
    for key, res in g["methods"].items():
        lm = res["lead_matrix"]
        for c, row in zip(classes, lm["share"]):
            rows.append([key, c, *[_fmt(v, 2) for v in row]])
    if rows:
        leads = next(iter(g["methods"].values()))["lead_matrix"]["leads"]
        sec.table(["method", "class", *leads], rows, caption="Zhang et al.'s class x lead matrix: each lead's share of the class's "
                                                             "relevance (rows sum to 1)")
    rows = []
    for key, res in g["methods"].items():
        w = res.get("waves")
        if w:
            for c, (m, lo, hi, n) in enumerate(zip(w["mean"], w["ci_lo"], w["ci_hi"], w["n_beats"])):
                rows.append([key, f"{classes[c]} (n={n})", *[f"{_fmt(a, 3)} [{_fmt(b, 3)}, {_fmt(d, 3)}]" for a, b, d in zip(m, lo, hi)]])
    if rows:
        first = next(r["waves"] for r in g["methods"].values() if r.get("waves"))
        wl = first["labels"]
        sec.table(["method", "class", *wl], rows, caption="Mean relevance per wave (P, PR, QRS, ST, T from the delineation), per lead, "
                                                          "with 95% CIs over records")
        rows = [[key, name, *[per_class.get(c, "-") for c in classes]]
                for key, res in g["methods"].items() for name, per_class in res.get("separated_waves", {}).items() if name != "record"]
        if rows:
            sec.table(["method", "subgrouping", *classes], rows,
                      caption=f"Waves where subgroups' CIs do not overlap, per class (of the {len(wl)} lead x wave columns; "
                              "mean relevance per subgroup x class x lead x wave with 95% CIs over the subgroup's records)")
        if "quality" in first:
            sec.text(f"By wave, only beats whose delineation ({first.get('method', '?')}) passed its quality flag are averaged; "
                     "used of explained beats per class: " + ", ".join(f"{c} {a} of {b}" for c, (a, b) in first["quality"].items())
                     + " (the beats left out: " + ", ".join(f"{c} {b - a}" for c, (a, b) in first["quality"].items()) + ").")
    elif g.get("waves_left_out"):
        sec.text(f"Relevance by wave left out: {g['waves_left_out']}.")
    for png in audit.figures.get("glocal", ()):
        sec.figure(png, f"{png.stem.replace('_', ' ')}.", name=f"audit-{png.stem}")


def _render_clusters(rep, audit, c) -> None:
    sec = rep.section("Clusters of attributions within each class")
    sec.text(f"k-means (scikit-learn) of each class's aligned relevance (segment values, each beat divided by its total), k "
             f"in {c['ks']} chosen by the silhouette, on {audit.run}'s explained test beats (classes with at least "
             f"{c['min_beats']} beats). Silhouette near 0: no structure. Adjusted Rand index against the records near 1: the "
             "clusters are patients; near 0 with a high silhouette: a pattern shared across patients (Wagner et al. 2023).")
    rows = []
    for key, res in c["methods"].items():
        for cls, r in res.items():
            if "not_clustered" in r:
                rows.append([key, cls, "-", "-", "-", "-", r["not_clustered"]])
            else:
                rows.append([key, cls, r["n"], r["n_records"], r["k"], _fmt(r["silhouette"], 2), _fmt(r["ari_record"], 2)
                             + f" (sizes {', '.join(map(str, r['sizes']))})"])
    if rows:
        sec.table(["method", "class", "beats", "records", "k", "silhouette", "adjusted Rand vs records"],
                  rows, caption="Clusters per class")
    for png in audit.figures.get("clusters", ()):
        sec.figure(png, f"{png.stem.replace('_', ' ')}: cluster centroids per class.", name=f"audit-{png.stem}")


def _render_tcav(rep, audit, t) -> None:
    sec = rep.section("Concepts (TCAV)")
    counts = ", ".join(f"{k} {v}" for k, v in t["concept_beats"].items())
    sec.text(f"TCAV (Kim et al. 2018) at layer {t['layer']} of {audit.run}: a concept's activation vector separates its example "
             f"training beats from random training beats (logistic regression); the score is the share of a class's test beats "
             f"whose logit rises along it. Concepts: wide QRS (> 120 ms, delineation), absent P wave (delineation), premature "
             f"beat (RR before < 0.85 x the record's median). Candidate example beats: {counts}. Scores are compared with those "
             f"of random-vs-random vectors (Welch t-test); significant: p < {t['alpha']:.2g} (0.05 Bonferroni-corrected)."
             + (f" Left out: {t['left_out']}." if t.get("left_out") else ""))
    if t["rows"]:
        sec.table(["concept", "class", "TCAV score (mean ± sd)", "random CAVs", "p", "significant", "CAV accuracy", "concept beats", "class beats"],
                  [[r["concept"], r["class"], f"{r['score_mean']:.2f} ± {r['score_sd']:.2f}", _fmt(r["random_mean"], 2),
                    f"{r['p_value']:.2g}", "yes" if r["significant"] else "no", _fmt(r["cav_accuracy"], 2), r["n_concept"], r["n_class"]]
                   for r in t["rows"]], caption="TCAV per concept and class")
    for png in audit.figures.get("tcav", ()):
        sec.figure(png, "TCAV scores per concept and class.", name=f"audit-{png.stem}")
