"""``run_study(cfg, workdir)``: raw records -> trained models -> attributions -> report.

One linear function in stages. Each stage writes ``<workdir>/stages/<name>.json``
when it finishes; a re-run skips finished stages (and training resumes from its
checkpoints, attributions from their per-method files) unless ``force=True``.
Each explained run is loaded once (``ecgjax.train.load_run``) and shared by the
explain stage and the checks; the stages' outcomes are gathered into one
:class:`~ecgjax.study.result.StudyResult`, which the report renders.

Workdir layout::

    config.json            the resolved study config
    stages/<stage>.json     what each finished stage produced (and its wall time)
    runs/<run>/             one training run each (ecgjax.train's workdir)
    attributions/<run>/<method-key>/   per-class npz + meta.json
    profiles/<run>/<method-key>/       profiles.npz, comparisons.json, figures/
    sanity/<run>/          cascading randomisation, deletion/insertion
    audit/<run>/           more sanity checks, ROAD, glocal aggregation (ecgjax.study.audit)
    noise/<run>/           noise stress test
    wave_checks/           expert-rule checks (<run>/expert_rules.json) and ground truth (ground_truth.json)
    traverse/<run>/        generative explanations: the VAE (unless given), summary.json, traversal.npz, figures/
    report/report.html, report/summary.md, report/figures/
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from ecgjax.errors import DataError
from ecgjax.io import atomic_write_json, environment_info, read_json, workdir_lock
from ecgjax.study.config import MethodSpec, RunSpec, StudyConfig, TraverseSpec
from ecgjax.study.result import NoiseResult, RunAttributions, SanityResult, StudyResult, TrainedRun, TraversalResult
from ecgjax.study.subsets import explain_subset

log = logging.getLogger(__name__)


class _Stages:
    """Finished-stage markers under ``<workdir>/stages``."""

    def __init__(self, workdir: Path, force: bool):
        self.dir = workdir / "stages"
        self.force = force
        self.timings: dict[str, float] = {}

    def done(self, name: str) -> dict | None:
        p = self.dir / f"{name}.json"
        if self.force or not p.exists():
            return None
        try:
            out = read_json(p, "stage marker")
        except DataError as e:  # a damaged marker is no marker: redo the stage
            log.warning("%s; redoing stage %s", e, name)
            return None
        self.timings[name] = out.get("wall_s", 0.0)
        log.info("stage %s: finished earlier, skipped (use --force to redo)", name)
        return out

    def finish(self, name: str, t0: float, payload: dict) -> dict:
        payload = {**payload, "wall_s": round(time.time() - t0, 2)}
        self.timings[name] = payload["wall_s"]
        atomic_write_json(self.dir / f"{name}.json", payload)
        log.info("stage %s: done in %.1f s", name, payload["wall_s"])
        return payload


def _config_json(cfg: StudyConfig) -> dict:
    from ecgjax import config as config_lib

    later = ("runs", "audit", "expert_rules", "ground_truth", "traverse")
    d = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in later}
    # absent when off: studies made before these fields keep their config.json
    if cfg.audit is not None:
        d["audit"] = dataclasses.asdict(cfg.audit)
    if cfg.expert_rules:
        d["expert_rules"] = True
    if cfg.ground_truth is not None:
        d["ground_truth"] = dataclasses.asdict(cfg.ground_truth)
    if cfg.traverse is not None:
        d["traverse"] = dataclasses.asdict(cfg.traverse)
    d["methods"] = [dataclasses.asdict(m) for m in cfg.methods]
    d["runs"] = [{"name": r.name, "group": r.group, "explain": r.explain, "config": config_lib.to_dict(r.config)} for r in cfg.runs]
    return json.loads(json.dumps(d, default=list))


_STAGE_DIRS = ("stages", "runs", "attributions", "profiles", "sanity", "noise", "audit", "wave_checks", "traverse", "report")


def check_owner(cfg_json: dict, workdir: Path) -> None:
    """Refuse a workdir that this study did not make (before anything is deleted or written).

    Raises:
      WorkdirError: ``workdir`` holds another study's ``config.json``, or files but no ``config.json``.
    """
    from ecgjax.errors import WorkdirError

    if not workdir.exists():
        return
    if not workdir.is_dir():
        raise WorkdirError(f"--workdir {workdir} is a file, not a folder")
    cfg_path = workdir / "config.json"
    if cfg_path.exists():
        if read_json(cfg_path, "study config") != cfg_json:
            raise WorkdirError(f"{workdir} holds another study (its {cfg_path} differs from this config); nothing was "
                               "changed or deleted, --force included: use a new --workdir, or delete that folder yourself")
    elif any(p.name != ".lock" for p in workdir.iterdir()):
        raise WorkdirError(f"{workdir} is not empty and holds no study config.json; nothing was changed or deleted: "
                           "use a new or empty --workdir")


def run_study(cfg: StudyConfig, workdir: str | Path, *, force: bool = False, data_dir=None, cache=None,
              memory_budget: int | None = None) -> dict:
    """Run every stage of ``cfg`` in ``workdir``; returns the report paths.

    Args:
      cfg: the study.
      workdir: output folder (created). Re-running with the same folder skips
        finished stages; ``force`` redoes everything (training runs included),
        deleting only the study's own stage folders, and only in a workdir
        holding this same study config (``check_owner``). One process at a time
        (``ecgjax.io.workdir_lock``).
      data_dir, cache: passed on to the data layer.
      memory_budget: bytes each evaluation may hold (default a share of the available memory; ``ecgjax.batched``).
    """
    workdir = Path(workdir)
    cfg_json = _config_json(cfg)
    check_owner(cfg_json, workdir)
    with workdir_lock(workdir):
        check_owner(cfg_json, workdir)
        return _run_study(cfg, cfg_json, workdir, force=force, data_dir=data_dir, cache=cache, memory_budget=memory_budget)


def _run_study(cfg: StudyConfig, cfg_json: dict, workdir: Path, *, force: bool, data_dir, cache, memory_budget: int | None) -> dict:
    from ecgjax.train import load_run, train_and_evaluate

    t_all = time.time()
    if force:
        for sub in _STAGE_DIRS:
            shutil.rmtree(workdir / sub, ignore_errors=True)
    atomic_write_json(workdir / "config.json", cfg_json)
    stages = _Stages(workdir, force)

    # ---- data -------------------------------------------------------------------
    if (data := stages.done("data")) is None:
        t0 = time.time()
        from ecgjax.data.summary import summarize

        protos = sorted({(r.config.data.protocol, r.config.data.split) for r in cfg.runs})
        summaries = {f"{p}/{s}": summarize(p, s, data_dir=data_dir, cache_dir=cache) for p, s in protos if p != "synthetic"}
        data = stages.finish("data", t0, {"summaries": summaries})

    # ---- train --------------------------------------------------------------------
    if (trained := stages.done("train")) is None:
        t0 = time.time()
        results = {}
        for i, r in enumerate(cfg.runs, 1):
            log.info("training run %d/%d: %s", i, len(cfg.runs), r.name)
            results[r.name] = train_and_evaluate(r.config, workdir / "runs" / r.name, data_dir=data_dir, cache=cache)
        trained = stages.finish("train", t0, {"results": results})

    # ---- explain & profile --------------------------------------------------------
    # Each explained run is loaded once; the first one stays in memory for the checks.
    explained = [r for r in cfg.runs if r.explain]
    first = None

    def first_run():
        nonlocal first
        if first is None:
            first = load_run(workdir / "runs" / explained[0].name, data_dir=data_dir, cache=cache)
        return first

    attrib = {"runs": {}}
    if cfg.methods and (attrib := stages.done("explain")) is None:
        t0 = time.time()
        attrib = {}
        for i, r in enumerate(explained):
            run = first_run() if i == 0 else load_run(workdir / "runs" / r.name, data_dir=data_dir, cache=cache)
            attrib[r.name] = _explain_run(cfg, r, workdir, run, memory_budget)
        attrib = stages.finish("explain", t0, {"runs": attrib})

    # ---- sanity checks ----------------------------------------------------------------
    sanity = None
    if cfg.sanity_beats and explained:
        out_dir = workdir / "sanity" / explained[0].name
        if (summary := stages.done("sanity")) is None:
            t0 = time.time()
            from ecgjax.study.checks import sanity_checks

            summary = stages.finish("sanity", t0, sanity_checks(cfg, first_run(), out_dir, memory_budget=memory_budget))
        sanity = SanityResult(explained[0].name, summary["n_beats"], summary["cascade"], summary["faithfulness"],
                              tuple(sorted(out_dir.glob("*.png"))))

    # ---- noise stress test --------------------------------------------------------------
    noise = None
    if cfg.noise_snr_db and explained:
        if (summary := stages.done("noise")) is None:
            t0 = time.time()
            from ecgjax.study.checks import noise_stress

            summary = stages.finish("noise", t0, noise_stress(cfg, first_run(), workdir / "noise" / explained[0].name,
                                                              data_dir=data_dir, cache=cache, memory_budget=memory_budget))
        noise = NoiseResult(explained[0].name, summary["n_beats"], tuple(summary["rows"]), summary["method"])

    # ---- audit: more sanity checks, glocal aggregation, clusters, TCAV (ecgjax.study.audit) ------
    audit = None
    if cfg.audit is not None and explained:
        from ecgjax.study.audit import run_audit

        audit = run_audit(cfg, stages, first_run, explained[0].name, attrib["runs"].get(explained[0].name, {}).get("methods"),
                          workdir, memory_budget=memory_budget, data_dir=data_dir, cache=cache)

    # ---- checks by wave: expert rules on the explained maps, ground-truth regressions ------------
    waves = {}
    if cfg.expert_rules and explained:
        if (summary := stages.done("expert_rules")) is None:
            t0 = time.time()
            from ecgjax.study.expert_rules import expert_rule_check

            summary = stages.finish("expert_rules", t0, expert_rule_check(
                first_run(), attrib["runs"][explained[0].name], workdir / "wave_checks" / explained[0].name,
                data_dir=data_dir, cache=cache, n_boot=cfg.n_boot, seed=cfg.seed))
        waves["expert_rules"] = {**summary, "run": explained[0].name}
    if cfg.ground_truth is not None:
        if (summary := stages.done("ground_truth")) is None:
            t0 = time.time()
            from ecgjax.study.groundtruth import ground_truth_check

            summary = stages.finish("ground_truth", t0, ground_truth_check(
                cfg.ground_truth, workdir / "wave_checks", data_dir=data_dir, cache=cache, memory_budget=memory_budget))
        waves["ground_truth"] = summary

    # ---- generative explanations: a beat VAE and query-based latent space traversal ------------
    traversal = None
    if cfg.traverse is not None:
        out_dir = workdir / "traverse" / explained[0].name
        if (summary := stages.done("traverse")) is None:
            t0 = time.time()
            summary = stages.finish("traverse", t0, _traverse(cfg, workdir, explained[0].name, first_run(), out_dir,
                                                             data_dir=data_dir, memory_budget=memory_budget))
        traversal = TraversalResult(explained[0].name, {k: v for k, v in summary.items() if k not in ("figures", "wall_s")},
                                    tuple((out_dir / f["file"], f["caption"]) for f in summary["figures"]))
    first = None

    # ---- report -----------------------------------------------------------------------
    from ecgjax.study.report import build_report

    t0 = time.time()
    result = StudyResult(
        config=cfg, config_json=cfg_json, environment=environment_info(), data=data["summaries"],
        runs={r.name: TrainedRun(r.name, r.group, r.explain, trained["results"][r.name]) for r in cfg.runs},
        attributions={name: RunAttributions.load(info) for name, info in attrib["runs"].items()},
        sanity=sanity, noise=noise, timings=dict(stages.timings), audit=audit, wave_checks=waves, traversal=traversal)
    rep = build_report(result)
    paths = rep.write(workdir / "report")
    stages.finish("report", t0, {"html": str(paths["html"]), "markdown": str(paths["markdown"])})
    log.info("report: %s (%d figures); whole study %.1f s", paths["html"], len(rep.figures), time.time() - t_all)
    return {k: str(v) for k, v in paths.items()}


def _traverse(cfg: StudyConfig, workdir: Path, name: str, run, out_dir: Path, *, data_dir, memory_budget) -> dict:
    """The traverse stage: ``generative.pipeline.traverse_run`` on the loaded run, its summary (figures included)."""
    from ecgjax.generative.pipeline import traverse_run

    t = cfg.traverse
    return traverse_run(workdir / "runs" / name, run=run, target=t.target, source=t.source, out=out_dir,
                        vae_dir=Path(t.vae_dir) if t.vae_dir else out_dir / "vae", max_beats=t.max_beats,
                        fidelity_beats=t.fidelity_beats, latent=t.latent, beta=t.beta, width=t.width, sigma=t.sigma,
                        vae_epochs=t.vae_epochs, vae_max_train=t.vae_max_train, steps=t.steps, n_points=t.n_points,
                        method=t.method, seed=cfg.seed, batch_size=t.batch_size, memory_budget=memory_budget,
                        waves=t.waves, data_dir=data_dir, command=f"ecgjax study (stage traverse, run {name})")


def _explain_run(cfg: StudyConfig, r: RunSpec, workdir: Path, run, memory_budget: int | None = None) -> dict:
    """Every method on (a per-class subset of) the run's test beats, then profiles."""
    import jax

    from ecgjax import attribution
    from ecgjax.analysis.attribution_profiles import profile_run
    from ecgjax.attribution.attributions import read_meta
    from ecgjax.attribution.explain import explain_run, model_identity
    from ecgjax.models import eval_split, model_info

    beats, split = run.beats, run.split
    idx = explain_subset(beats.y, split.test, cfg.explain_max_per_class, cfg.seed)
    model = eval_split(run.model)
    out = {"n_beats": int(len(idx)), "methods": {}}
    for m in cfg.methods:
        method = attribution.get(m.name, **m.hparams)
        if (why := attribution.refusal(method, model_info(run.model))) is not None:
            log.warning("%s / %s: not applicable, skipped: %s", r.name, m.key, why)
            out.setdefault("skipped", {})[m.key] = why
            continue
        attr_dir = workdir / "attributions" / r.name / m.key
        prof_dir = workdir / "profiles" / r.name / m.key
        stored = attr_dir / method.name
        done = prof_dir / "complete.json"  # written last: a kill while drawing figures redoes the method
        if done.exists() and (stored / "meta.json").exists():
            log.info("%s / %s: attributions and profiles exist, skipped", r.name, m.key)
        else:
            done.unlink(missing_ok=True)
            explain_run(model, beats, idx, method, attr_dir, target=m.target, key=jax.random.key(cfg.seed),
                        model_info=model_identity(run), background_idx=run.split.train, memory_budget=memory_budget)
            profile_run(stored, beats, prof_dir, transform=m.transform, n_boot=cfg.n_boot, seed=cfg.seed)
            _example_beats(beats, stored, prof_dir / "figures" / "example_beats.png", m.transform)
            atomic_write_json(done, {"method": m.key})
        meta = read_meta(stored)
        out["methods"][m.key] = {"attr_dir": str(stored), "profile_dir": str(prof_dir), "beats_per_s": meta.get("beats_per_s"),
                                 "completeness": meta.get("completeness"), "spec": dataclasses.asdict(m)}
    return out


def _example_beats(beats, attr_dir: Path, path: Path, transform: str) -> None:
    """Figure 5: the first correctly classified explained beat of each class, its map as colour."""
    from ecgjax.analysis import plotting
    from ecgjax.analysis.transforms import VALUE_LABELS, transform_maps
    from ecgjax.attribution.attributions import Attributions

    xs, maps, rs, his, titles, idx = [], [], [], [], [], []
    for a in Attributions.load_classes(attr_dir):
        ok = np.flatnonzero(a.label == a.pred)
        if not len(ok):
            continue
        i, j = int(ok[0]), int(a.index[ok[0]])
        xs.append(beats.x[j]), rs.append(beats.r[j]), his.append(beats.hi[j]), idx.append(j)
        maps.append(np.abs(transform_maps(a.maps[i : i + 1], transform)[0]))
        titles.append(f"{beats.classes[int(a.label[i])]} ({beats.record[j]}:{beats.sample[j]})")
    if xs:
        names = [beats.lead_axis(np.array([j]))[0] for j in idx]  # each beat's own record's leads
        n = len(names[0])  # waveform leads only (rr_net's trailing RR channels are not a trace)
        fig = plotting.plot_example_beats(np.stack(xs)[..., :n], np.stack(maps)[..., :n], beats.fs, rs=np.array(rs), his=np.array(his), titles=titles,
                                          lead_names=names, value_label=VALUE_LABELS["abs"])
        plotting.save_figure(fig, path)


__all__ = ["MethodSpec", "RunSpec", "StudyConfig", "TraverseSpec", "run_study"]
