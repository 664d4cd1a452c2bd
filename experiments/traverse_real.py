"""Generative explanations on real beats at a shared CPU's scale: quick classifiers, one VAE, N -> V traversals.

For each model (``rr_net``, ``jones2020_cnn``, ``jones2020_lstm``) a quick classifier is trained on AAMI DS1
(``experiments/configs/traverse_aami.py:MODEL,quick``: 3,000 beats per split part, 4 epochs; ``--seeds 2``
trains a second one from another training seed, the seed sanity check), and ``generative.pipeline.traverse_run``
traverses DS2 N beats towards V with one VAE (trained once on the first run's DS1 training beats, shared by
all: every run trains on the same DS1 records). One JSON line per model is appended to ``--out``; ``--render``
rebuilds docs/results.md's generated section (between ``<!-- traverse-results:begin -->`` and
``<!-- traverse-results:end -->``) from ``--out`` and the VAE benchmark rows (``benchmarks/results/cpu_vae_*.jsonl``)::

    ECGJAX_DATA_DIR=... python experiments/traverse_real.py --root /work/runs/vae/traverse --models rr_net \\
        --seeds 2 --out benchmarks/results/cpu_traverse.jsonl
    ECGJAX_DATA_DIR=... python experiments/traverse_real.py --root /work/runs/vae/traverse --parameter --delta 0.04
    python experiments/traverse_real.py --render --out benchmarks/results/cpu_traverse.jsonl

Finished runs and a trained VAE are reused (resume); a model's row is appended when its traversal finishes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the ecgjax next to this file

CONFIG = str(ROOT / "experiments" / "configs" / "traverse_aami.py")
BEGIN, END = "<!-- traverse-results:begin -->", "<!-- traverse-results:end -->"

# The VAE selection rule for issue 18's 2-point criterion, fixed before any candidate was trained (no DS1-validation
# or DS2 number of a candidate existed when it joined the list): the VAE 64/48 was chosen after its DS2 check had been
# read, so DS2 no longer selects. A candidate is accepted only if all 6 (classifier, seed) pairs of ``--fidelity-seeds``
# (rr_net, jones2020_lstm_corrected, rr_net_waveform x seeds 0, 1; full,natural) are within 2 points on the classifiers'
# DS1 validation records (``--fidelity-part val``); its reconstruction quality is read on the same records
# (``vae_aami.py --eval-part val``). Candidates are judged in the order they were registered (each entry was committed
# before its training started); DS2 (``--fidelity-part test``) is read once, for the first accepted candidate only, and
# reported whatever it says. A rejected candidate's DS2 is not read.
VAE_RULE = ("accepted only if all 6 (classifier, seed) pairs are within 2 points on the DS1 validation records; candidates "
            "are judged in the order they were registered; DS2 read once, for the first accepted candidate only")
VAE_CANDIDATES = (
    {"candidate": "python benchmarks/vae_aami.py --latent 128 --width 32 --sigma 0.015 --epochs 60 --time-budget-s 3000 "
                  "--split-seed 4 --max-train 0 --max-test 0 --eval-part val --save /work/runs/vaeval/aami128/vae",
     "why": "the latent-64 VAEs' training loss still fell about 1% per epoch at epoch 16, width 48 did not lower the "
            "DS2 MSE of width 32 while latent 32 -> 64 did (0.038 -> 0.014), and the beats that change class are boundary "
            "beats a reconstruction moves either way: a larger latent, a smaller decoder sigma and more epochs aim at "
            "higher fidelity at width 32's cost per epoch"},
    {"candidate": "python benchmarks/vae_aami.py --latent 256 --width 32 --sigma 0.01 --epochs 80 --time-budget-s 3600 "
                  "--split-seed 4 --max-train 0 --max-test 0 --eval-part val --save /work/runs/vaeval/aami256/vae",
     "why": "registered after the first candidate was rejected on the DS1 validation records: 128/32 raised every pair's "
            "same-prediction share (rr_net_waveform seed 1 90.3 -> 95.8%, rr_net seed 1 from -4.6 to -0.9 points), used "
            "all 128 latent units and was stopped by its time budget at epoch 44 of 60; so twice the latent, a smaller "
            "decoder sigma (the KL term weighs 2.25x less against the reconstruction) and a longer budget on both cores"},
)

# Issue 18's criterion: the classifier's accuracy on reconstructed held-out beats within this many points of its accuracy
# on the originals, either way.
WITHIN_POINTS = 2.0


def _within(gap_points: float) -> bool:
    """Whether an accuracy gap (originals - reconstructions, in points) meets the criterion."""
    return abs(gap_points) <= WITHIN_POINTS


def train_quick(model: str, workdir: Path, seed: int, recipe: str = "quick") -> Path:
    """The classifier of ``model`` (``traverse_aami.py:MODEL,RECIPE``, training seed ``seed``) in ``workdir``, trained unless finished."""
    from ecgjax.config import load_config
    from ecgjax.train.loop import train_and_evaluate

    if not (workdir / "results.json").is_file():
        train_and_evaluate(load_config(f"{CONFIG}:{model},{recipe}", [f"train.seed={seed}"]), workdir)
    return workdir


def _run_name(model: str, recipe: str, seed: int) -> str:
    return f"{model}_seed{seed}" if recipe == "quick" else f"{model}_{recipe.replace(',', '_')}_seed{seed}"


def run_model(model: str, root: Path, args) -> dict:
    from ecgjax.generative.pipeline import traverse_run

    t0 = time.perf_counter()
    runs = [train_quick(model, root / _run_name(model, args.recipe, s), s, args.recipe) for s in range(args.seeds)]
    train_s = time.perf_counter() - t0
    s = traverse_run(runs[0], target=args.target, source=args.source, vae_dir=root / "vae", max_beats=args.max_beats,
                     fidelity_beats=args.fidelity_beats, steps=args.steps, waves=not args.no_waves, batch_size=args.batch_size,
                     vae_epochs=args.vae_epochs, vae_max_train=args.vae_max_train,
                     compare=runs[1] if len(runs) > 1 else None, progress=True,
                     command=" ".join(["python experiments/traverse_real.py", *sys.argv[1:]]))
    test = json.loads((runs[0] / "results.json").read_text())
    return s | {"experiment": "traverse_real", "config": f"traverse_aami.py:{model},{args.recipe}", "args": vars(args),
                "vae_dir": str((root / "vae").resolve()),
                "train_s": train_s, "test_accuracy": _accuracy(test)}


def _accuracy(results: dict):
    for path in (("test", "accuracy"), ("accuracy",)):
        v = results
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            return float(v)
    return None


def run_parameter(root: Path, args) -> dict:
    """A parameter query on real beats: "QRS width + ``args.delta`` s" for DS2 N beats, through a regressor.

    The regressor (``train.regression.train_regressor``, ``study.groundtruth``'s small ``ribeiro_cnn``) learns the
    delineated QRS width (``data.delineation``) of AAMI beats of the DS1 records ``--param-records`` (default
    all 22), with the ground-truth check's filters (``study.groundtruth.GroundTruthSpec``: quality flag, N beats
    delineated wider than 120 ms and per-record outliers left out), is tested on DS2 records, and reads the
    generated beats; the shared VAE (``ROOT/vae``) generates them. The traversed beats are DS2 N beats whose
    delineation passes its quality flag, so the change along the path is also measured per wave of the source
    beat (P, PR, QRS, ST, T). A second regressor (training seed 1) that the traversal never saw reads the same
    generated beats: if it also reads a wider QRS, the change is not an adversarial quirk of the first one.
    The same query through a re-initialised regressor is the control.
    """
    from flax import nnx

    from ecgjax import models
    from ecgjax.data.delineation import WAVES
    from ecgjax.data import load_beats, protocols
    from ecgjax.data.delineation import load_waves
    from ecgjax.generative import explain as EX
    from ecgjax.generative import vae as V
    from ecgjax.generative.traverse import PRIOR_MASS, prior_bound, spearman_rows, traverse_parameter
    from ecgjax.study.groundtruth import GroundTruthSpec, targets_and_segments
    from ecgjax.train.regression import train_regressor

    t0 = time.perf_counter()
    train_recs = tuple(r for r in args.param_records.split(",") if r) or tuple(protocols.DS1)
    test_recs = tuple(protocols.DS2)
    beats = load_beats(protocols.get("aami", records=train_recs + test_recs))
    waves = load_waves(beats)
    spec = GroundTruthSpec()
    width, _, usable = targets_and_segments(beats, waves, min_record_quality=spec.min_record_quality,
                                            width_outlier_mad=spec.width_outlier_mad,
                                            normal_qrs_symbols=spec.normal_qrs_symbols,
                                            normal_qrs_max_s=spec.normal_qrs_max_s)["qrs_width"]
    rng = np.random.default_rng(0)
    draw = lambda rows, n: np.sort(rows if len(rows) <= n else rng.choice(rows, n, replace=False))  # noqa: E731
    train = draw(np.flatnonzero(usable & np.isin(beats.record, train_recs)), args.param_train)
    is_test = usable & np.isin(beats.record, test_recs)
    test = draw(np.flatnonzero(is_test), 1000)
    kw = {"filters": (16, 16, 32, 32), "lead_layout": "channels", "dropout": 0.0}
    regs = [train_regressor("ribeiro_cnn", beats.x, width, train, test, fs=beats.fs, epochs=args.param_epochs,
                            batch_size=64, lr=1e-3, seed=seed, **kw) for seed in (0, 1)]
    reg, reader = regs
    model = nnx.merge(*reg.model)
    vae = V.load_vae(root / "vae")
    n_idx = beats.classes.index(args.source)
    src = draw(np.flatnonzero(is_test & (beats.y == n_idx)), args.max_beats)
    x = beats.x[src]
    bounds = waves.bounds[src].astype(np.float32)  # every source beat passes the quality flag (usable)
    leads = ("MLII", "V1")
    common = dict(mean=reg.mean, std=reg.std, steps=args.steps, batch_size=args.batch_size, progress=True,
                  lo=beats.lo[src], hi=beats.hi[src], normalisation=beats.protocol.get("normalisation", "none"))
    out = {}
    fresh = models.build("ribeiro_cnn", n_classes=1, in_shape=beats.x.shape[1:], fs=beats.fs, rngs=nnx.Rngs(1), **kw)
    for name, m in (("trained", model), ("randomised", fresh)):
        tr = traverse_parameter(m, vae, x, args.delta, **common)
        change, labels = EX.segment_change(tr.beats, beats.r[src], beats.lo[src], beats.hi[src], beats.fs, lead_names=leads)
        wchange, wlabels = EX.wave_change(tr.beats, bounds, beats.lo[src], beats.hi[src], lead_names=leads)
        mean_change = EX.nan_stat(np.nanmean, change[:, -1])
        wave_path = EX.nan_stat(np.nanmedian, wchange)  # [P, L*5]: the median change per wave along the path
        qrs = [i for i, lab in enumerate(labels) if lab.endswith(("-1", "+1"))]  # the 0.2 s around R
        bound = prior_bound(vae.settings.latent, PRIOR_MASS)
        rho = tr.spearman()
        b, p = tr.beats.shape[:2]
        read = reader.predict(tr.beats.reshape(b * p, *tr.beats.shape[2:])).reshape(b, p)
        wave_end = EX.nan_stat(np.nanmean, wchange[:, -1])
        by_wave = {w: float(np.nansum(wave_end[[k for k, lab in enumerate(wlabels) if lab.endswith(":" + w)]])) for w in WAVES}
        out[name] = {"n": int(len(src)), "median_spearman": EX.nan_median(rho), "frac_spearman_ge_0_9": float(np.mean(rho >= 0.9)),
                     "frac_reached_half": float(tr.reached().mean()),
                     "median_value_start": float(np.median(tr.value[:, 0])), "median_value_end": float(np.median(tr.value[:, -1])),
                     "median_gain": float(np.median(tr.value[:, -1] - tr.value[:, 0])),
                     "reader_median_gain": float(np.median(read[:, -1] - read[:, 0])),
                     "reader_median_spearman": EX.nan_median(spearman_rows(read)),
                     "reader_frac_reached_half": float(np.mean((read[:, -1] - read[:, 0]) / args.delta >= 0.5)),
                     "frac_no_lower_than_start": float(np.mean(tr.prior_logpdf.min(axis=1) >= np.minimum(bound, tr.prior_logpdf[:, 0]) - 1e-3)),
                     "top_segment": labels[int(np.nanargmax(mean_change))],
                     "qrs_share_of_change": float(np.nansum(mean_change[qrs]) / np.nansum(mean_change)),
                     "wave_labels": list(wlabels), "wave_change_path": wave_path.tolist(),
                     "wave_change_end": wave_end.tolist(),
                     "wave_share_end": {w: v / sum(by_wave.values()) for w, v in by_wave.items()},
                     "top_wave": wlabels[int(np.nanargmax(wave_end))]}
    dur = waves.durations(beats.fs)[src]
    return {"experiment": "traverse_parameter", "parameter": "qrs_width", "unit": "s", "delta": args.delta,
            "source": args.source, "train_records": list(train_recs), "n_train": int(len(train)), "n_test": int(len(test)),
            "r2_test": reg.r2_test, "mae_test": reg.mae_test, "r2_train": reg.r2_train, "regressor_train_s": reg.train_s,
            "reader_r2_test": reader.r2_test, "reader_mae_test": reader.mae_test,
            "sd_test": float(np.std(width[test])), "mae_of_training_mean": float(np.mean(np.abs(width[test] - width[train].mean()))),
            "filters": {"width_outlier_mad": spec.width_outlier_mad, "normal_qrs_symbols": list(spec.normal_qrs_symbols),
                        "normal_qrs_max_s": spec.normal_qrs_max_s, "min_record_quality": spec.min_record_quality},
            "source_delineated_qrs_median_s": float(np.nanmedian(dur[:, list(WAVES).index("QRS")])),
            "delineation": waves.method,
            "vae": {"latent": vae.settings.latent, "beta": vae.settings.beta, "width": vae.settings.width,
                    "sigma": vae.settings.sigma},
            "steps": args.steps, **out, "wall_s": time.perf_counter() - t0, "args": vars(args),
            "command": " ".join(["python experiments/traverse_real.py", *sys.argv[1:]])}


def run_fidelity(root: Path, args) -> dict:
    """The 2-point check for every trained seed of each model (``--seeds``), with the VAE in ``ROOT/vae``.

    ``traverse_run`` checks the first seed's run only; this reads the classifier of each seed on the same beats
    (``--fidelity-beats`` of the split part ``--fidelity-part``: DS2, or the classifiers' DS1 validation records) as real beats and as reconstructions (``explain.reconstruction_fidelity``, read as
    input) and diagnoses each (``reconstruction_diagnosis`` with the records, annotation symbols and P(true) of the
    lost beats): is a gap a property of the model, or of one training? Nothing is traversed.
    """
    from ecgjax.generative import explain as EX
    from ecgjax.generative import vae as V
    from ecgjax.generative.pipeline import _subset
    from ecgjax.train import load_run

    t0 = time.perf_counter()
    if not (root / "vae" / "vae.json").is_file():
        _fail(f"{root / 'vae'}: no VAE; train one first (benchmarks/vae_aami.py --save {root / 'vae'})")
    vae = V.load_vae(root / "vae")
    out = {}
    for model in (m for m in args.models.split(",") if m):
        for seed in range(args.seeds):
            wd = train_quick(model, root / _run_name(model, args.recipe, seed), seed, args.recipe)
            run = load_run(wd)
            b, n_leads = run.beats, vae.settings.in_shape[1]
            idx = _subset(np.asarray(getattr(run.split, args.fidelity_part)), args.fidelity_beats, 0)
            fid = EX.reconstruction_fidelity(run.model, vae, b.x[idx], b.y[idx], lo=b.lo[idx], hi=b.hi[idx],
                                             normalisation=b.protocol.get("normalisation", "none"),
                                             batch_size=max(args.batch_size, 512), progress=True)
            diag = EX.reconstruction_diagnosis(vae, b.x[idx][..., :n_leads], b.y[idx], fid["pred_original"],
                                               fid["pred_reconstructed"], b.r[idx], b.lo[idx], b.hi[idx], b.fs,
                                               list(b.classes), record=b.record[idx], symbol=b.symbol[idx],
                                               prob_true=fid["prob_true_original"])
            out[f"{model} seed {seed}"] = {
                "model": model, "seed": seed, "workdir": str(wd), "classes": list(b.classes),
                "test_accuracy": _accuracy(json.loads((wd / "results.json").read_text())),
                "fidelity": {k: v for k, v in fid.items() if not isinstance(v, np.ndarray)}, "diagnosis": diag}
    return {"experiment": "traverse_fidelity", "part": args.fidelity_part, "config": f"traverse_aami.py:MODEL,{args.recipe}",
            "root": str(root.resolve()),
            "vae_dir": str((root / "vae").resolve()),
            "vae": {k: getattr(vae.settings, k) for k in ("latent", "beta", "width", "sigma")}, "runs": out,
            "wall_s": time.perf_counter() - t0, "args": vars(args),
            "command": " ".join(["python experiments/traverse_real.py", *sys.argv[1:]])}


def run_agreement(root: Path, args) -> dict:
    """Why the agreement of a traversal's change with the saliency profile may not tell trained from randomised.

    For each model's finished traversal (``ROOT/MODEL_RECIPE_seed0/traversals/SOURCE-to-TARGET``, its stored
    ``traversal.npz``; nothing is traversed again): ``generative.explain.agreement_contrast`` (the per-beat
    agreements of the trained and the randomised classifier's paths with the trained profile, the paired bootstrap
    CI of their difference, how flat the profile is) and ``extra_channel_reliance`` on the same source beats and
    the target beats the profile was made from (how much a two-input model's P(target) rests on the RR features
    the traversal holds fixed).
    """
    from ecgjax.generative import explain as EX
    from ecgjax.generative.pipeline import _subset
    from ecgjax.io import load_npz
    from ecgjax.train import load_run

    t0 = time.perf_counter()
    out = {}
    for model in (m for m in args.models.split(",") if m):
        wd = root / _run_name(model, args.recipe, 0)
        trav = wd / "traversals" / f"{args.source}-to-{args.target}" / "traversal.npz"
        if not trav.is_file():
            _fail(f"{trav}: no finished traversal of {model}; run the class query first (without --agreement)")
        z = load_npz(trav, "traversal")
        run = load_run(wd)
        b, test = run.beats, np.asarray(run.split.test)
        classes = list(b.classes)
        src = np.asarray(z["index"])
        tgt = _subset(test[b.y[test] == classes.index(args.target)], len(src), 0)
        n_leads = z["beats"].shape[-1]
        contrast = EX.agreement_contrast(z["change"][:, -1], z["change_randomised"][:, -1], z["profile"])
        reliance = EX.extra_channel_reliance(run.model, b.x[src], b.x[tgt], classes.index(args.target), n_leads,
                                             batch_size=args.batch_size)  # F = the channels after the VAE's leads
        prof = np.asarray(z["profile"], float)
        labels = [str(v) for v in z["labels"]]
        t_idx = classes.index(args.target)
        where = (b.r[tgt], b.lo[tgt], b.hi[tgt], b.fs)
        again, _ = EX.class_saliency_profile(run.model, b.x[tgt], t_idx, *where, n_leads=n_leads, batch_size=args.batch_size,
                                             progress=False)
        same_profile = bool(np.allclose(again, prof, rtol=1e-3, equal_nan=True))  # the stored profile's beats, recomputed
        contrast_ctx, prof_ctx = None, None
        if b.x.shape[2] > n_leads:  # the target's profile in the source beats' RR context (what the traversal holds)
            x_ctx = b.x[tgt].copy()
            x_ctx[..., n_leads:] = np.median(b.x[src][..., n_leads:], 0)
            prof_ctx, _ = EX.class_saliency_profile(run.model, x_ctx, t_idx, *where, n_leads=n_leads,
                                                    batch_size=args.batch_size, progress=False)
            contrast_ctx = EX.agreement_contrast(z["change"][:, -1], z["change_randomised"][:, -1], prof_ctx)
        end = EX.nan_stat(np.nanmean, z["change"][:, -1])
        end_r = EX.nan_stat(np.nanmean, z["change_randomised"][:, -1])
        made_by = json.loads((trav.parent / "summary.json").read_text())
        out[model] = {"contrast": contrast, "reliance": reliance, "n_src": int(len(src)), "n_tgt": int(len(tgt)),
                      "vae": made_by["vae"], "traverse_command": made_by["command"],
                      "profile_recomputed_equal": same_profile, "contrast_source_rr_context": contrast_ctx,
                      "profile_source_rr_context": None if prof_ctx is None else
                      dict(zip(labels, (prof_ctx / np.nanmax(prof_ctx)).tolist())),
                      "extra_channels": list(b.rr_names) if b.x.shape[2] > n_leads else [],
                      "profile": dict(zip(labels, (prof / np.nanmax(prof)).tolist())),
                      "change_trained": dict(zip(labels, (end / np.nanmax(end)).tolist())),
                      "change_randomised": dict(zip(labels, (end_r / np.nanmax(end_r)).tolist()))}
    return {"experiment": "traverse_agreement", "config": f"traverse_aami.py:MODEL,{args.recipe}", "root": str(root.resolve()),
            "source": args.source, "target": args.target, "models": out, "wall_s": time.perf_counter() - t0,
            "args": vars(args), "command": " ".join(["python experiments/traverse_real.py", *sys.argv[1:]])}


# ---------------------------------------------------------------- docs


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _f(v, digits=3) -> str:
    return "-" if v is None or v != v else f"{v:.{digits}f}"  # None or NaN: "-"


def _latest(rows: list[dict], experiment: str) -> dict[str, dict]:
    """The newest row per classifier config (``MODEL,RECIPE``), VAE and way of reading reconstructions (``_as_input``);
    keyed ``MODEL,RECIPE``, plus `` [VAE latent/width]`` (and ``, read as input``) when one config was checked with
    several VAEs or both ways (and the VAE folder if that is not enough)."""
    newest = {}
    for r in rows:
        if r.get("experiment") == experiment:
            newest[(r.get("config", "").split(":")[-1], r.get("vae_dir"), _as_input(r))] = r
    configs = [c for c, _, _ in newest]
    short = {k: f"{k[0]} [VAE {r.get('vae', {}).get('latent', '?')}/{r.get('vae', {}).get('width', '?')}"
                f"{', read as input' if _as_input(r) else ''}]" for k, r in newest.items()}
    out = {}
    for (c, v, a), r in newest.items():
        key = c if configs.count(c) == 1 else short[(c, v, a)]
        if configs.count(c) > 1 and list(short.values()).count(key) > 1:
            key = f"{c} [{Path(v or '?').parent.name}/{Path(v or '?').name}]"
        out[key] = r
    return out


def _as_input(r: dict) -> bool:
    """Whether a row's classifier read the generated beats through ``vae.as_input`` (the window's padding and the
    protocol's normalisation restored); earlier rows fed it the decoder's output as it was."""
    return "normalisation" in r.get("fidelity", {})


def _natural(r: dict) -> bool:
    opts = r.get("config", "").split(":")[-1].split(",")
    return "full" in opts and "natural" in opts


def _vae_rows(results: Path) -> list[tuple[str, dict]]:
    return [(proto, r) for proto in ("aami", "jones2020") for r in _rows(results / f"cpu_vae_{proto}.jsonl")]


def _eval_words(r: dict) -> str:
    """The held-out beats a VAE row was evaluated on (``vae_aami.py --eval-part``; rows before the field: DS2)."""
    return "DS1 validation" if r.get("eval_part") == "val" else "DS2"


def _vaes_used(results, rows) -> dict:
    """{command: saved VAE row} of the VAEs that ``rows`` used (by their ``vae_dir``), each once."""
    out = {}
    for r in rows:
        v = _saved_vae(results, r.get("vae_dir"))
        if v:
            out[v["command"]] = v
    return out


def _saved_vae(results: Path, vae_dir: str | None) -> dict | None:
    """The VAE benchmark row that stored the VAE in ``vae_dir`` (its command's ``--save``), if any."""
    if not vae_dir:
        return None
    found = None
    for _, r in _vae_rows(results):
        cmd = r.get("command", "").split()
        if "--save" in cmd and Path(cmd[cmd.index("--save") + 1]).resolve() == Path(vae_dir).resolve():
            found = r
    return found


def _delineation(r: dict) -> str:
    """The delineation method a row's waves came from (rows before the field was recorded used neurokit2's dwt,
    then ``load_waves``' default)."""
    return r.get("delineation") or "dwt"


def _load(r: dict) -> str:
    a, b = r.get("load_avg_1m_start"), r.get("load_avg_1m_end")
    return "not recorded" if a is None else f"{a:.1f} at the start, {b:.1f} at the end"


def render(out: Path, results: Path) -> str:
    """docs/results.md's section 5b (5b and 5b.2): every number comes from ``out`` and ``results``' VAE rows."""
    from ecgjax.io import describe_device

    rows_all = _rows(out)
    rel = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    lines = [BEGIN, "", "## 5b. Explanations by generation: the beat VAE and query-based latent space traversal (issue 18)", "",
             "<!-- generated by `python experiments/traverse_real.py --render` from benchmarks/results/cpu_vae_*.jsonl "
             "and cpu_traverse.jsonl; do not edit by hand -->", "",
             "**The beat VAE on both windows** (`benchmarks/vae_aami.py`, every row of "
             "`benchmarks/results/cpu_vae_<protocol>.jsonl`; each row holds its exact command, the device, the "
             "load average when it finished and the versions): trained on beats of DS1's records only, evaluated "
             "on DS2's (patients never seen), or where the test beats say DS1 validation, on the 4 DS1 records that "
             "validate the classifiers (`--eval-part val`; the VAE did not train on them, no DS2 beat read). "
             "Per-beat Pearson r and MSE over the valid samples of both leads; the "
             "template baseline reconstructs each beat as its true class's mean training beat (it is given the "
             "label the VAE never sees); active units: Cov_x(E[z|x]) > 0.01 (Burda et al. 2016).",
             "", "| window | T x L | latent | beta | decoder sigma | width | epochs | train / test beats | median r (share > 0.9) | "
             "median MSE | template MSE | active units | train s | device, load, jax |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for proto, r in _vae_rows(results):
        st = r["settings"]
        lines.append(f"| {proto} | {st['in_shape'][0]} x {st['in_shape'][1]} | {r['latent']} | {st['beta']:g} | "
                     f"{st['sigma']:g} | {st['width']} | {_epochs(r)} | {r['n_train']:,} / {r['n_test']:,}"
                     f"{' DS1 validation' if _eval_words(r) != 'DS2' else ''} | {r['median_r']:.3f} "
                     f"({r['frac_r_gt_0_9']:.2f}) | {r['median_mse']:.4f} | {r['median_mse_template']:.4f} | "
                     f"{r['active_units']}/{r['latent']} | {r['train_s']:.0f} | {r['device']}, {r.get('host_cpus', '?')} cores, "
                     f"load {r['load_avg_1m']:.1f}, jax {r['jax']} |")
    full = _latest(rows_all, "traverse_real")
    used = _vaes_used(results, full.values())
    for v in used.values():
        lines += ["", f"Per class, a VAE the classifier check below uses (`{v['command']}`; {_eval_words(v)} beats):", "",
                  "| class | beats | median r | median MSE | template MSE |", "|---|---|---|---|---|"]
        lines += [f"| {c} | {d['n']:,} | {d['median_r']:.3f} | {d['median_mse']:.4f} | {d['median_mse_template']:.4f} |"
                  for c, d in v["per_class"].items()]
    lines += ["", "### 5b.2 The classifier on reconstructions, and traversals on real beats", "",
              f"Rows of `{rel}`, each written by `python experiments/traverse_real.py` (its `command` field holds the "
              "exact command; `versions` and `device` the versions and the machine; `load_avg_1m_start` / `_end` the "
              "shared CPU's load). Classifiers: `experiments/configs/traverse_aami.py` (AAMI DS1 -> DS2, validation on "
              "4 DS1 records); `quick`: 3,000 beats per split part and 4 epochs, N downsampled; `full,natural`: every "
              "DS1 training beat at DS1's class frequencies, up to 15 epochs with early stopping. `rr_net_waveform` "
              "reads the waveform only (every bit of its decision passes through the VAE); `rr_net` also reads 8 RR "
              "features, held fixed when a beat is reconstructed or traversed; `jones2020win`: the same split on the "
              "paper's window (protocol `jones2020`: midpoint windows zero-padded to 430 samples, per-beat min-max "
              "over both leads and the padding, the 8 MIT-BIH classes), checked with the jones2020-window VAE.", "",
              "Commands of this session's rows (run with `ECGJAX_DATA_DIR=... ECGJAX_CACHE_DIR=... "
              "XLA_FLAGS=--xla_cpu_multi_thread_eigen=false nice -n 10`, one after another, on the shared 2-core CPU):", "",
              "```bash", *dict.fromkeys(v["command"] for v in used.values()),
              *dict.fromkeys(r["command"] for r in rows_all if r.get("load_avg_1m_start") is not None), "```", "",
              "Versions of those rows: " + "; ".join(sorted({", ".join(f"{k} {v}" for k, v in r["versions"].items() if v)
                                                             for r in rows_all if r.get("load_avg_1m_start") is not None
                                                             and r.get("versions")})) + ".", "",
              "**The classifier on VAE reconstructions** of held-out (DS2) beats: the same beats classified as they are "
              "and as the decoded posterior mean; the issue asks for a gap within 2 points. Rows marked *read as "
              "input* (and their `reads` column) give the classifier each reconstruction as the data pipeline gives it "
              "a real beat (`generative.vae.as_input`: the decoder's valid samples, the window's own padding, the "
              "protocol's per-beat normalisation applied again; the traversals read generated beats the same way); "
              "their last accuracy column is the decoder's output fed as it is, what the earlier rows measured.", "",
              "| classifier | VAE (train beats, sigma, latent / width) | DS2 beats | test acc. (run) | acc. originals | acc. reconstructions "
              "| gap (points) | within 2 | same prediction | reads | acc. decoder output as is (gap) | device, load |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in full.items():
        f, v = r["fidelity"], _saved_vae(results, r.get("vae_dir"))
        vae = (f"{v['n_train']:,}, {r['vae']['sigma']:g}, {r['vae']['latent']} / {r['vae']['width']}" if v else
               f"? (trained by the run), {r['vae'].get('sigma', '?')}, {r['vae']['latent']} / {r['vae']['width']}")
        gap = 100 * f["acc_gap"]
        lines.append(f"| {key} | {vae} | {f['n']:,} | {_f(r.get('test_accuracy'))} | {f['acc_original']:.3f} | "
                     f"{f['acc_reconstructed']:.3f} | {gap:+.1f} | {'yes' if _within(gap) else '**no**'} | "
                     f"{f['pred_agreement']:.3f} | "
                     + (f"as input ({f['normalisation']}) | {f['acc_reconstructed_raw']:.3f} ({100 * f['acc_gap_raw']:+.1f}) | "
                        if _as_input(r) else "decoder output | - | ")
                     + f"{describe_device(r)}, {_load(r)} |")
    diag = {k: r for k, r in full.items() if "diagnosis" in r}
    if diag:
        lines += ["", "**Why the accuracy moves** (`generative.explain.reconstruction_diagnosis`): per true class, recall "
                      "on originals -> reconstructions, beats lost (right on the original, wrong on the reconstruction; "
                      "and what they became) and gained; then the medians over the beats per class and over the beats "
                      "whose prediction flipped against those whose did not: Pearson r, QRS slope ratio (the steepest "
                      "sample-to-sample step within 50 ms of R, reconstruction over original, max over leads; < 1: "
                      "blurred QRS edges), squared error within 50 ms of R and elsewhere; P(true): the classifier's "
                      "median probability of the true class on the originals of the beats it loses, and of those it "
                      "keeps right (rows read as input).", ""]
        for key, r in diag.items():
            d = r["diagnosis"]
            lines += [f"*{key}* ({r['fidelity']['n']:,} DS2 beats):", "",
                      "| beats | n | recall orig. -> rec. | lost (to) | gained | median r | QRS slope ratio | QRS MSE | rest MSE "
                      "| lost beats: median r, QRS slope ratio | P(true) lost / kept |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            order = [c for c in r.get("classes", []) if c in d["per_class"]] + sorted(set(d["per_class"]) - set(r.get("classes", [])))
            for c in order:
                e = d["per_class"][c]
                to = ", ".join(f"{k} {n}" for k, n in sorted(e["lost_to"].items(), key=lambda kv: -kv[1]))
                lines.append(f"| class {c} | {e['n']:,} | {e['recall_original']:.3f} -> {e['recall_reconstructed']:.3f} | "
                             f"{e['lost']}{f' ({to})' if to else ''} | {e['gained']} | {_f(e['median_r'])} | "
                             f"{_f(e['median_slope_ratio'])} | {_f(e['median_mse_qrs'], 4)} | {_f(e['median_mse_rest'], 4)} | "
                             f"{_f(e.get('lost_median_r'))}, {_f(e.get('lost_median_slope_ratio'))} | "
                             f"{_f(e.get('lost_median_p_true'))} / {_f(e.get('median_p_true_kept'))} |")
            for name in ("flipped", "kept"):
                e = d[name]
                lines.append(f"| prediction {name} | {e['n']:,} | | | | {_f(e['median_r'])} | {_f(e['median_slope_ratio'])} | "
                             f"{_f(e['median_mse_qrs'], 4)} | {_f(e['median_mse_rest'], 4)} | | |")
            lines.append("")
    lines += ["", "**Traversals of real beats** (N -> V, DS2 N beats, one VAE per root). rho: median Spearman rho between "
                  "the position along the path and P(target); agreement: median Spearman of a beat's per-0.1 s-segment "
                  "change with the target's |saliency| profile (median over the target class's beats); own-saliency "
                  "agreement: the same with the traversed beat's own |saliency| of the target (same beat, same R: no "
                  "class profile); directions: cosine of the class-mean unit signed change of the generated beats "
                  "between two traversals of the same beats (trained vs a second trained seed; trained vs a randomised "
                  "classifier; two randomised classifiers); most changed wave: of the source beat's delineated P, PR, "
                  "QRS, ST, T (beats whose delineation passes its quality flag; `data.delineation` method: "
                  f"{', '.join(sorted({k + ' ' + _delineation(r) for k, r in full.items() if r['trained'].get('top_wave')}))}).", "",
              "| classifier | query (beats) | rho (>= 0.9) | cross 0.5 "
              "| P start -> end | starts inside 99% ball | stays inside (or no further out) | agreement (randomised) | own-saliency agreement (randomised) | trained vs trained seed | trained vs randomised "
              "| randomised vs randomised | randomised crosses 0.5 | most changed segment / wave | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, r in full.items():
        t, rd, d = r["trained"], r["randomised"], r.get("directions", {})
        cos = lambda k: _f(d[k]["beats"]["class_cosine"]) if k in d else "-"  # noqa: E731
        lines.append(
            f"| {model} | {r['source']} -> {r['target']} ({t['n']} beats, {r['traverse']['steps']} steps) | {t['median_spearman']:.3f} "
            f"({t['frac_spearman_ge_0_9']:.2f}) | {t['frac_cross_0_5']:.2f} | {t['median_prob_start']:.3f} -> "
            f"{t['median_prob_end']:.3f} | {t['frac_start_inside_prior_bound']:.2f} | {t['frac_no_lower_than_start']:.2f} | {_f(t['median_agreement'])} "
            f"({_f(rd['median_agreement'])}) | {_f(t.get('median_source_agreement'))} "
            f"({_f(rd.get('median_source_agreement'))}) | {cos('trained_vs_trained_2')} | {cos('trained_vs_randomised')}, "
            f"{cos('trained_vs_randomised_2')} | {cos('randomised_vs_randomised_2')} | {rd['frac_cross_0_5']:.2f} | "
            f"{t['top_segment']} / {t.get('top_wave') or '-'} | {r['wall_s']:.0f} |")
    waved = {k: r for k, r in full.items() if r["trained"].get("mean_wave_change")}
    if waved:
        labels = list(next(iter(waved.values()))["trained"]["mean_wave_change"])
        lines += ["", "Per-wave change at the path's end (mean over the traversed beats whose delineation passes its "
                      "quality flag of the mean |generated beat - the path's first beat| over each wave of the source "
                      "beat; per-lead z-score units; trained classifier, then its first randomised one):", "",
                  "| classifier | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        for k, r in waved.items():
            for name in ("trained", "randomised"):
                w = r[name].get("mean_wave_change", {})
                lines.append(f"| {k} ({name}) | " + " | ".join(_f(w.get(lab)) for lab in labels) + " |")
    params = [r for r in rows_all if r.get("experiment") == "traverse_parameter"]
    if params:
        r = params[-1]
        lines += ["", "**A parameter query on real beats** (the newest `experiment: traverse_parameter` row, with this "
                      "recipe's earlier rows in the table; "
                      f"`{r['command']}`; {describe_device(r)}, load {_load(r)}): DS2 N beats asked for "
                      f"QRS width + {1000 * r['delta']:.0f} ms through a regressor of the delineated QRS width "
                      f"(`data.delineation` method {_delineation(r)}; a small "
                      f"`ribeiro_cnn`, {r['n_train']:,} beats of {len(r['train_records'])} DS1 records, "
                      f"{r['args']['param_epochs']} epochs{', the ground-truth check' + chr(39) + 's filters' if 'filters' in r else ''}; "
                      f"VAE latent {r['vae']['latent']}, width {r['vae']['width']}), against a re-initialised "
                      "regressor. rho: median Spearman between the position and the regressor's reading of the "
                      "generated beat; reached: share whose reading moved at least half the asked change; reader: a "
                      "second regressor (training seed 1) that the traversal never saw, reading the same generated beats; "
                      "QRS share: of the mean |change| at the path's end, the two 0.1 s segments around R (both leads), "
                      "and the source beat's delineated QRS (of the five waves, both leads).", "",
                  f"Regressor on {r['n_test']:,} DS2 beats: R^2 {r['r2_test']:.3f} (training beats {_f(r.get('r2_train'))}), "
                  f"MAE {_msv(r['mae_test'])} ms against {_msv(r.get('mae_of_training_mean'))} ms for predicting the "
                  f"training mean (SD {_msv(r.get('sd_test'))} ms); the reader: R^2 {_f(r.get('reader_r2_test'))}, MAE "
                  f"{_msv(r.get('reader_mae_test'))} ms. The traversed beats' delineated QRS: median "
                  f"{_msv(r.get('source_delineated_qrs_median_s'), 0)} ms.", "",
                  "| regressor traversed | beats | rho (>= 0.9) | reached | reading start -> end | reader: gain, reached, rho "
                  "| stays inside 99% ball (or no further out) | most changed segment / wave | QRS share: segments, waves |",
                  "|---|---|---|---|---|---|---|---|---|"]
        earlier = [q for q in params[:-1] if "filters" in q]  # this recipe's earlier rows (another VAE or delineation)
        if earlier:
            lines[-2] = lines[-2].replace("| regressor traversed |", "| row | regressor traversed |")
            lines[-1] = "|---" + lines[-1]
        for q in [*earlier, r]:
            label = (f"VAE {q['vae']['latent']}/{q['vae']['width']}, {_delineation(q)}, R^2 {q['r2_test']:.2f} | "
                     if earlier else "")
            for name in ("trained", "randomised"):
                t = q[name]
                lines.append(f"| {label}{name} | {t['n']} | {t['median_spearman']:.3f} ({t['frac_spearman_ge_0_9']:.2f}) | "
                             f"{t['frac_reached_half']:.2f} | {1000 * t['median_value_start']:.0f} -> {1000 * t['median_value_end']:.0f} ms | "
                             f"{_ms(t.get('reader_median_gain'))}, {_f(t.get('reader_frac_reached_half'), 2)}, "
                             f"{_f(t.get('reader_median_spearman'))} | {t['frac_no_lower_than_start']:.2f} | {t['top_segment']} / "
                             f"{t.get('top_wave', '-')} | {t['qrs_share_of_change']:.2f}, {_f(t.get('wave_share_end', {}).get('QRS'), 2)} |")
        t = r["trained"]
        if "wave_change_path" in t:
            path = np.asarray(t["wave_change_path"])
            pts = np.linspace(0, 1, len(path))
            lines += ["", "Per-wave change along the trained regressor's path (median over beats of the mean |generated "
                          "beat - the path's first beat| over each wave of the source beat, per-lead z-score units):", "",
                      "| position | " + " | ".join(t["wave_labels"]) + " |", "|---" * (len(t["wave_labels"]) + 1) + "|"]
            for i in range(2, len(path), 2):
                lines.append(f"| {pts[i]:.1f} | " + " | ".join(_f(v) for v in path[i]) + " |")
    if full:
        r = next(iter(full.values()))
        lines += ["", f"Traversal: Adam (lr 0.1; steps per row), proximity {r['traverse']['proximity']}, "
                      f"{r['traverse']['n_points']} points, the prior's 99% ball (or the beat's own norm when its "
                      f"encoding lies outside: 'stays inside' counts those that go no further out). Devices of the rows: "
                      f"{', '.join(sorted({describe_device(x) for x in full.values()}))}; wall s: the traverse command "
                      f"(VAE training included where it trained the root's VAE)."]
    lines += _fidelity_seed_lines(rows_all, results)
    lines += _agreement_lines(rows_all)
    lines += ["", *_reading(full, params[-1] if params else None, results)]
    return "\n".join(lines + ["", END])


def _epochs(r: dict) -> str:
    """A VAE row's epochs: those asked for, and those run when a time budget stopped it earlier."""
    asked, ran = r["settings"]["epochs"], r.get("epochs_run", r["settings"]["epochs"])
    return str(asked) if ran == asked else f"{ran} (of {asked}; time budget {r['settings']['time_budget_s']:.0f} s)"


def _lost_words(e: dict) -> str:
    """Where a class's lost beats come from: the top records and annotation symbols of a diagnosis entry."""
    parts = []
    if e.get("lost_records"):
        parts.append("records " + ", ".join(f"{k} {n}" for k, n in e["lost_records"].items()))
    if e.get("lost_symbols"):
        parts.append("symbols " + ", ".join(f"{k} {n}" for k, n in e["lost_symbols"].items()))
    return "; ".join(parts) or "-"


def _selection_verdict(rows: list[dict], results: Path | None, candidate: dict, label: str) -> str:
    """The rule (``VAE_RULE``) applied to ``candidate`` (an entry of ``VAE_CANDIDATES``, named ``label`` in the verdict),
    i.e. to the VAE its command saves: the newest ``--fidelity-part val`` row of that VAE decides; DS2 rows of it are
    reported (read once if accepted)."""
    cmd = candidate["candidate"].split()
    cand = Path(cmd[cmd.index("--save") + 1]).resolve()
    mine = [r for r in rows if r.get("experiment") == "traverse_fidelity" and r.get("vae_dir")
            and Path(r["vae_dir"]).resolve() == cand]
    val = [r for r in mine if r.get("part") == "val"]
    ds2 = [r for r in mine if r.get("part", "test") == "test"]
    head = f"* **The rule's verdict on {label}**: "
    if not val:
        return head + "not yet checked on the DS1 validation records" + (
            f"; yet {len(ds2)} DS2 row(s) of it exist, against the rule." if ds2 else "; DS2 not read.")
    gaps = [(v["model"], v["seed"], 100 * v["fidelity"]["acc_gap"]) for v in val[-1]["runs"].values()]
    n_ok = sum(_within(g) for *_, g in gaps)
    ok = len(gaps) == 6 and n_ok == 6
    vae = _saved_vae(results, str(cand)) if results is not None else None
    quality = (f" Its reconstructions of the {vae['n_test']:,} {_eval_words(vae)} beats: median r {vae['median_r']:.3f}, "
               f"median MSE {vae['median_mse']:.4f} (template {vae['median_mse_template']:.4f}), {vae['active_units']} of "
               f"{vae['latent']} units active, epochs {_epochs(vae)}, {vae['train_s']:.0f} s of training." if vae else "")
    text = (head + f"{n_ok} of {len(gaps)} (classifier, seed) pairs within 2 points on the DS1 validation records ("
            + ", ".join(f"{m} seed {sd} {g:+.1f}" for m, sd, g in gaps) + "): " + ("**accepted**" if ok else "**rejected**"))
    if ok:
        if not ds2:
            return text + "; DS2 not yet read." + quality
        d_gaps = [100 * v["fidelity"]["acc_gap"] for v in ds2[0]["runs"].values()]
        d_ok = sum(_within(g) for g in d_gaps)
        return (text + f"; DS2, read once for it (its row in the table above): {d_ok} of {len(d_gaps)} pairs within 2 "
                f"points" + (f" ({len(ds2)} DS2 rows of it exist; the first is the one read)" if len(ds2) > 1 else "")
                + "." + quality)
    return (text + ("; DS2 not read." if not ds2 else f"; yet {len(ds2)} DS2 row(s) of it exist, against the rule.")
            + "".join(_outside_words(v) for v in val[-1]["runs"].values() if not _within(100 * v["fidelity"]["acc_gap"])) + quality)


def _outside_words(v: dict) -> str:
    """Why a (classifier, seed) pair is outside 2 points: its same-prediction share, the decoder-output gap, and the class
    whose count of beats turned right minus turned wrong on reconstruction moves most."""
    f, pc = v["fidelity"], v["diagnosis"]["per_class"]
    c, e = max(pc.items(), key=lambda ce: abs(ce[1]["gained"] - ce[1]["lost"]))
    return (f" {v['model']} seed {v['seed']}: same prediction on {100 * f['pred_agreement']:.1f}% of the beats, decoder "
            f"output as is {100 * f['acc_gap_raw']:+.1f}; class {c}: {e['gained']} beats right only on the reconstruction, "
            f"{e['lost']} right only on the original (recall {e['recall_original']:.3f} -> {e['recall_reconstructed']:.3f}).")


def _fidelity_seed_lines(rows: list[dict], results: Path | None = None) -> list[str]:
    """The 2-point check per training seed: the newest ``traverse_fidelity`` row per root (``--fidelity-seeds``) on DS2 as
    a table and a verdict per VAE, then a line per root for the newest row on DS1's validation records (``"part": "val"``)."""
    newest, val = {}, {}
    for r in rows:
        if r.get("experiment") == "traverse_fidelity":
            (newest if r.get("part", "test") == "test" else val)[r["root"]] = r
    if not newest:
        return []
    out = ["", "**The 2-point check per training seed** (`--fidelity-seeds`: each trained seed's classifier on the same DS2 "
               "beats, reconstructions read as input; nothing traversed). Largest loss: the class whose recall falls "
               "most, its lost beats' top records and annotation symbols, and the classifier's median P(true class) "
               "on the originals of its lost beats against the beats of that class it keeps right.", "",
           "| classifier | seed | VAE latent / width | DS2 beats | test acc. (run) | acc. originals | acc. reconstructions | gap (points) "
           "| within 2 | decoder output as is: gap | same prediction | largest loss: class, recall | lost beats from | "
           "P(true) lost / kept |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for r in newest.values():
        gaps, vae = {}, r["vae"]
        for key, v in r["runs"].items():
            f, pc = v["fidelity"], v["diagnosis"]["per_class"]
            big = [(c, e) for c, e in pc.items() if e["n"] >= 30] or list(pc.items())
            c, e = max(big, key=lambda ce: ce[1]["recall_original"] - ce[1]["recall_reconstructed"])
            gap = 100 * f["acc_gap"]
            gaps.setdefault(v["model"], []).append(gap)
            out.append(f"| {v['model']} | {v['seed']} | {r['vae']['latent']} / {r['vae']['width']} | {f['n']:,} | "
                       f"{_f(v.get('test_accuracy'))} | {f['acc_original']:.3f} | {f['acc_reconstructed']:.3f} | {gap:+.1f} | "
                       f"{'yes' if _within(gap) else '**no**'} | {100 * f['acc_gap_raw']:+.1f} | {f['pred_agreement']:.3f} | "
                       f"{c}, {e['recall_original']:.3f} -> {e['recall_reconstructed']:.3f} ({e['lost']} lost, "
                       f"{e['gained']} gained) | {_lost_words(e)} | {_f(e.get('lost_median_p_true'))} / "
                       f"{_f(e.get('median_p_true_kept'))} |")
        per_model = []
        for m, g in gaps.items():
            ok = sum(_within(x) for x in g)
            per_model.append(f"{m}: gaps {', '.join(f'{x:+.1f}' for x in g)} points ({ok} of {len(g)} seeds within 2)")
        n_ok, n = sum(_within(x) for g in gaps.values() for x in g), sum(len(g) for g in gaps.values())
        sigma = f", sigma {vae['sigma']:g}" if "sigma" in vae else ""
        verdicts.append(f"* VAE {vae['latent']}/{vae['width']}{sigma} (`{r['root']}`), per model over its trained "
                        f"seeds: " + "; ".join(per_model) + f". {n_ok} of {n} (classifier, seed) pairs within 2 points.")
    verdicts.append(f"* **VAE selection rule** (`traverse_real.VAE_RULE`, each candidate of `VAE_CANDIDATES` fixed before "
                    f"it was trained): {VAE_RULE}.")
    for i, cand in enumerate(VAE_CANDIDATES, 1):
        verdicts.append(f"* Candidate {i}: `{cand['candidate']}` ({cand['why']}).")
        verdicts.append(_selection_verdict(rows, results, cand, f"candidate {i}"))
    for r in val.values():  # the same check on DS1's validation records: held out from the VAE and the classifiers
        gaps = [(v["model"], v["seed"], 100 * v["fidelity"]["acc_gap"], v["fidelity"]["n"]) for v in r["runs"].values()]
        vae, n_ok = r["vae"], sum(_within(g) for _, _, g, _ in gaps)
        verdicts.append(f"* The same check on the classifiers' DS1 validation records (`--fidelity-part val`: records that "
                        f"neither the VAE nor the classifiers trained on, used only for the classifiers' early stopping; DS2 unread), VAE {vae['latent']}/{vae['width']}, "
                        f"sigma {vae['sigma']:g} (`{r['root']}`), gap = accuracy on the originals - on the reconstructions (negative: "
                        f"the reconstructions are classified better): " + "; ".join(
                            f"{m} seed {sd} {g:+.1f} ({n:,} beats)" for m, sd, g, n in gaps) + f". {n_ok} of {len(gaps)} within 2 points.")
    return out + [""] + verdicts


def _agreement_lines(rows: list[dict]) -> list[str]:
    """Why the profile agreement separates trained from randomised for some classifiers and not for rr_net: the
    newest ``traverse_agreement`` row (``--agreement``), every number from it."""
    rs = [r for r in rows if r.get("experiment") == "traverse_agreement"]
    if not rs:
        return []
    r = rs[-1]
    ms = r["models"]
    vaes = sorted({f"{v['vae']['latent']}/{v['vae']['width']}" for v in ms.values()})
    out = ["", f"**Does the profile agreement tell trained from randomised?** (`{r['command']}`; the traversals stored in "
               f"`{r['root']}` by the newest rows above of each classifier, VAE {', '.join(vaes)} (latent/width); nothing "
               f"traversed again; `generative.explain.agreement_contrast` and "
               f"`extra_channel_reliance`). Agreement: per beat, Spearman rho of the change per 0.1 s segment at the "
               f"path's end with {r['target']}'s saliency profile; the difference of the trained and randomised "
               f"classifiers' medians with a 95% paired bootstrap CI over the {next(iter(ms.values()))['n_src']} beats. "
               f"Flatness: the profile's max / min and coefficient of variation over its segments. Reliance: P({r['target']}) "
               f"(medians) of the {r['source']} beats traversed and of {r['target']} beats, as they are and with the "
               f"extra (RR) channels or the leads swapped between the classes; the share of |gradient x input| of "
               f"{r['target']} on the RR channels.", "",
           "| classifier | agreement trained | randomised | difference [95% CI] | profile max/min, CV | "
           f"P({r['target']}) {r['source']} beats: own / {r['target']} RR / {r['target']} leads | "
           f"P({r['target']}) {r['target']} beats: own / {r['source']} RR | RR share of abs(g x input), {r['source']} / {r['target']} |",
           "|---|---|---|---|---|---|---|---|"]
    for m, v in ms.items():
        c, e = v["contrast"], v["reliance"]
        rr = bool(v["extra_channels"])
        rel = (f"{_f(e['p_src'], 4)} / {_f(e['p_src_tgt_extra'], 4)} / {_f(e['p_src_tgt_leads'], 4)} | "
               f"{_f(e['p_tgt'])} / {_f(e['p_tgt_src_extra'])} | {_f(e['extra_share_src'], 2)} / {_f(e['extra_share_tgt'], 2)}"
               if rr else "no RR input | - | -")
        out.append(f"| {m} | {_f(c['median_trained'])} | {_f(c['median_randomised'])} | {_f(c['diff'])} "
                   f"[{_f(c['diff_ci'][0])}, {_f(c['diff_ci'][1])}] | {_f(c['profile_max_over_min'], 2)}, "
                   f"{_f(c['profile_cv'], 2)} | {rel} |")
    sep = {m: v["contrast"]["diff_ci"][0] > 0 for m, v in ms.items()}
    notsep = [m for m, ok in sep.items() if not ok]
    flat = min(ms.values(), key=lambda v: v["contrast"]["profile_cv"])
    flat_name = next(m for m, v in ms.items() if v is flat)
    text = (f"* Separated (CI above 0): {', '.join(m for m, ok in sep.items() if ok) or 'none'}; not separated: "
            f"{', '.join(notsep) or 'none'}.")
    if flat_name not in notsep and notsep:
        text += (f" A flat profile is not the reason: {flat_name}'s is the flattest (CV "
                 f"{_f(flat['contrast']['profile_cv'], 2)}) and still separates.")
    for m in notsep:
        v = ms[m]
        e, ctx = v["reliance"], v.get("contrast_source_rr_context")
        if v["extra_channels"] and e["p_tgt_src_extra"] < e["p_tgt"] / 2 and e["p_src_tgt_leads"] < 0.5:
            text += (f" {m} reads the RR features the traversal holds fixed, and its {r['target']} decision needs them: "
                     f"{r['target']} beats' P({r['target']}) falls from {_f(e['p_tgt'])} to {_f(e['p_tgt_src_extra'])} "
                     f"with {r['source']} RR features, and {r['source']} beats given real {r['target']} waveforms (their "
                     f"own RR kept) reach only {_f(e['p_src_tgt_leads'])}: along a path with {r['source']} RR, waveform "
                     f"changes no real {r['target']} beat shows push it, while the profile came from {r['target']} "
                     f"beats in their own RR context.")
        if ctx:
            ok = ctx["diff_ci"][0] > 0
            text += (f" The profile made in the traversal's context ({r['target']} beats given the {r['source']} beats' "
                     f"median RR features) gives {_f(ctx['median_trained'])} trained vs {_f(ctx['median_randomised'])} "
                     f"randomised (difference {_f(ctx['diff'])} [{_f(ctx['diff_ci'][0])}, {_f(ctx['diff_ci'][1])}]): "
                     + ("that separates them, so the RR context was the reason." if ok else
                        "still not separated, so the RR context is not the whole reason."))
        prof, ch = v["profile"], v["change_trained"]
        fin = [k for k in prof if prof[k] == prof[k] and ch.get(k) == ch.get(k)]
        top_c = sorted(fin, key=lambda k: -ch[k])[:2]
        top_p = sorted(fin, key=lambda k: -prof[k])[:4]
        text += (f" Where they differ: the trained paths change {', '.join(top_c)} most (profile there "
                 f"{', '.join(_f(prof[k], 2) for k in top_c)} of its maximum), while the profile's top segments "
                 f"{', '.join(top_p)} change {', '.join(_f(ch[k], 2) for k in top_p)} of the largest change; with a "
                 f"profile this flat (max/min {_f(v['contrast']['profile_max_over_min'], 2)}) the rank agreement of "
                 f"{v['contrast']['k']} segments rests on a few such segments. No bug was found (the stored profile is recomputed "
                 f"{'exactly' if v.get('profile_recomputed_equal') else 'DIFFERENTLY: check'} from the same beats); the "
                 f"checks that do separate this classifier's traversals are the 0.5 crossing and the seed check (rows above).")
    return out + ["", text]


def _better(cands: list) -> str:
    """Why reconstructions are classified better: the class that gains the most recall, in words."""
    c, e = max(cands, key=lambda kv: kv[1]["gained"] - kv[1]["lost"])  # the most beats won: what moves accuracy
    return (f"The reconstructions are classified *better*: class {c} gains {e['gained']} beats and loses {e['lost']} "
            f"(recall {e['recall_original']:.3f} -> {e['recall_reconstructed']:.3f}): the VAE's beat is more typical "
            f"than the beat itself, and the classifier reads the typical beat more easily. ")


def _seed_check(d: dict) -> str:
    """The seed sanity check in words, from ``directions`` (beat-space class cosines)."""
    if "trained_vs_trained_2" not in d:
        return ""
    c = {k: v["beats"]["class_cosine"] for k, v in d.items()}
    tt, tr = c["trained_vs_trained_2"], max(c["trained_vs_randomised"], c["trained_vs_randomised_2"])
    verdict = "passes" if tt > tr else "fails"
    return (f" Seed check ({verdict}): beat-space cosine of the class directions between this classifier's traversal "
            f"and a second trained seed's {tt:.2f}, " + ("above" if tt > tr else "not above") + " its cosine with either "
            f"randomised classifier's ({c['trained_vs_randomised']:.2f}, {c['trained_vs_randomised_2']:.2f}; the two "
            f"randomised ones {c['randomised_vs_randomised_2']:.2f}).")


def _sanity_lines(natural: dict) -> list[str]:
    """The randomised-classifier sanity check over the rows with a second trained seed: the seed check, the 0.5
    crossing, and the consistency of the change across beats, trained against randomised."""
    seeded = {k: r for k, r in natural.items() if "trained_vs_trained_2" in r.get("directions", {})}
    if not seeded:
        return []
    c = lambda r, k: r["directions"][k]["beats"]["class_cosine"]  # noqa: E731
    passed = [k for k, r in seeded.items()
              if c(r, "trained_vs_trained_2") > max(c(r, "trained_vs_randomised"), c(r, "trained_vs_randomised_2"))]
    cross = max(r["randomised"]["frac_cross_0_5"] for r in seeded.values())
    cons = "; ".join(f"{k}: {r['trained']['consistency']:.2f} vs {r['randomised']['consistency']:.2f}" for k, r in seeded.items())
    lower = sum(r["randomised"]["consistency"] < r["trained"]["consistency"] for r in seeded.values())
    return [f"* **The randomised-classifier sanity check** over the classifier rows with a second trained seed "
            f"({len(seeded)}): the seed check (trained seeds' class directions closer to each other than to either randomised "
            f"classifier's) passes for {len(passed)} of {len(seeded)}"
            + (f" (fails: {', '.join(k for k in seeded if k not in passed)})" if len(passed) < len(seeded) else "")
            + f"; the randomised classifiers' paths cross 0.5 for at most {100 * cross:.0f}% of the beats; consistency "
              f"of the change across beats (median pairwise Spearman of the per-segment change), trained vs randomised: "
              f"{cons} (lower for the randomised in {lower} of {len(seeded)}). "
            + ("The randomised classifiers' changes are also less consistent from beat to beat."
               if lower == len(seeded) else
               "So a randomised classifier's traversals are not always less consistent from beat to beat: what tells "
               "them from a trained classifier's is their direction (the seed check) and that they do not reach the "
               "class.")]


def _msv(v, digits: int = 1) -> str:
    return "-" if v is None else f"{1000 * v:.{digits}f}"


def _ms(v) -> str:
    return "-" if v is None else f"{1000 * v:+.1f} ms"


def _window_vae_lines(results: Path, proto: str) -> list[str]:
    """The newest VAE row of ``proto`` trained on every training beat and tested on every held-out one, read against
    the issue's criteria (median r > 0.9, MSE below the template baseline) and the best earlier row."""
    rows = [r for p, r in _vae_rows(results) if p == proto]
    full = [r for r in rows if r["settings"].get("max_train") == 0 and r["settings"].get("max_test") == 0]
    if not full:
        return []
    r = full[-1]
    st = r["settings"]
    best = max((x for x in rows if x is not r), key=lambda x: x["median_r"], default=None)
    big = {c: e for c, e in r["per_class"].items() if e["n"] >= 30}
    worst = min(big.items(), key=lambda kv: kv[1]["median_r"]) if big else None
    ok_r, ok_mse = r["median_r"] > 0.9, r["median_mse"] < r["median_mse_template"]
    return [f"* **The {proto}-window VAE on every training beat** (`{r['command']}`): {r['n_train']:,} beats of DS1's "
            f"training records, {_epochs(r)} epochs, latent {r['latent']}, width {st['width']}, beta {st['beta']:g}, "
            f"decoder sigma {st['sigma']:g}, {r['train_s']:.0f} s of training on one niced core at load "
            f"{r['load_avg_1m']:.1f}: median r {r['median_r']:.3f} on all {r['n_test']:,} held-out DS2 beats "
            f"({100 * r['frac_r_gt_0_9']:.0f}% above 0.9; the issue asks for a median above 0.9: "
            f"{'met' if ok_r else 'NOT met'}), median MSE {r['median_mse']:.4f} against the template baseline's "
            f"{r['median_mse_template']:.4f} ({'below' if ok_mse else 'NOT below'} it), {r['active_units']} of "
            f"{r['latent']} units active"
            + (f"; lowest per class (30 beats or more): {worst[0]}, r {worst[1]['median_r']:.3f}" if worst else "")
            + (f". The best earlier {proto} row: median r {best['median_r']:.3f} ({best['n_train']:,} training beats, "
               f"latent {best['latent']}, sigma {best['settings']['sigma']:g})." if best else ".")]


def _reading(full: dict, param: dict | None, results: Path) -> list[str]:
    """The reading of the tables above: every number is taken from the same rows when the section is rendered."""
    out = ["**Reading** (generated with the tables from the same rows; where the wording depends on a number, the "
           "script chooses it from that number):", ""]
    natural = {k: r for k, r in full.items() if _natural(r) and "diagnosis" in r}
    quick = {k: r for k, r in full.items() if r.get("config", "").endswith(",quick")}
    vaes = _vaes_used(results, natural.values())
    out += _window_vae_lines(results, "jones2020")
    for vae in vaes.values():
        worst = min(vae["per_class"].items(), key=lambda kv: kv[1]["median_r"] if kv[1]["n"] >= 30 else 9)
        out.append(f"* **The VAE on every DS1 training beat** ({vae['n_train']:,} beats of the classifiers' training "
                   f"records, {vae['settings']['epochs']} epochs, latent {vae['latent']}, width {vae['settings']['width']}, "
                   f"beta {vae['settings']['beta']:g}, decoder sigma {vae['settings']['sigma']:g}, {vae['train_s']:.0f} s of "
                   f"training at load {vae['load_avg_1m']:.1f}): median r {vae['median_r']:.3f} on all {vae['n_test']:,} "
                   f"{_eval_words(vae)} beats ({100 * vae['frac_r_gt_0_9']:.0f}% above 0.9), MSE {vae['median_mse']:.3f} against the template "
                   f"baseline's {vae['median_mse_template']:.3f}, {vae['active_units']} of {vae['latent']} units active. "
                   f"Lowest per class (30 beats or more): {worst[0]}, r {worst[1]['median_r']:.3f}.")
    out += _template_lines(natural)
    if natural:
        verdict = "; ".join(f"{k}: {100 * r['fidelity']['acc_gap']:+.1f}" for k, r in natural.items())
        n_ok = sum(_within(100 * r["fidelity"]["acc_gap"]) for r in natural.values())
        by_cfg = {}
        for r in natural.values():
            by_cfg.setdefault(r["config"].split(":")[-1], []).append(r)
        same = "; ".join(f"{c}: " + " -> ".join(f"{100 * r['fidelity']['pred_agreement']:.1f}% (VAE {r['vae']['latent']}/"
                                                 f"{r['vae']['width']}{', read as input' if _as_input(r) else ''})"
                                                 for r in rs) for c, rs in by_cfg.items() if len(rs) > 1)
        out.append(f"* **The 2-point criterion**, classifier x VAE (gap in points, originals minus reconstructions, all "
                   f"DS2 beats): {verdict}. {n_ok} of {len(natural)} pairs are within 2 points."
                   + (f" Beats with the same prediction on both, by VAE: {same}." if same else ""))
    for key, r in natural.items():
        f, d = r["fidelity"], r["diagnosis"]
        gap = 100 * f["acc_gap"]
        pc = d["per_class"]
        cands = [(c, e) for c, e in pc.items() if e["n"] >= 30] or list(pc.items())
        drops = sorted(((c, e["recall_original"] - e["recall_reconstructed"], e) for c, e in cands), key=lambda t: -t[1])
        c, drop, e = drops[0]
        to = max(e["lost_to"].items(), key=lambda kv: kv[1])[0] if e["lost_to"] else "-"
        fl, kp = d["flipped"], d["kept"]
        big = [e for _, e in cands]
        macro0, macro1 = (float(np.mean([e[k] for e in big])) for k in ("recall_original", "recall_reconstructed"))
        sharp = e["median_slope_ratio"] >= 0.95
        major = max(pc.items(), key=lambda kv: kv[1]["n"])
        blur = fl["median_slope_ratio"] < kp["median_slope_ratio"] - 0.05
        qrs_ratio = fl["median_mse_qrs"] / kp["median_mse_qrs"]
        rest_ratio = fl["median_mse_rest"] / kp["median_mse_rest"]
        out.append(
            f"* **{key}** on the {f['n']:,} DS2 beats: accuracy {f['acc_original']:.3f} on the originals, "
            f"{f['acc_reconstructed']:.3f} on their reconstructions, a gap of {gap:+.1f} points: "
            f"{'within' if _within(gap) else 'outside'} the 2 points asked for; {100 * f['pred_agreement']:.1f}% of "
            f"the beats get the same prediction"
            + (f" (read as input; the decoder's output fed as it is: {f['acc_reconstructed_raw']:.3f}, a gap of "
               f"{100 * f['acc_gap_raw']:+.1f})" if _as_input(r) else "")
            + f". Accuracy is mostly {major[0]}'s ({major[1]['n']:,} of {f['n']:,} beats); the mean "
            f"recall over the classes with 30 beats or more moves {macro0:.3f} -> {macro1:.3f}. The largest recall loss "
            f"is class {c} ({e['recall_original']:.3f} -> {e['recall_reconstructed']:.3f}; {e['lost']} beats lost, "
            f"most to {to}, {e['gained']} gained; QRS slope ratio {_f(e['median_slope_ratio'])}, median r "
            f"{_f(e['median_r'])}"
            + (f": not blur, its QRS is as steep as the original's; the reconstructions are drawn towards {to}). "
               if sharp else "). ")
            + (f"Its lost beats alone: median r {_f(e['lost_median_r'])}, QRS slope ratio "
               f"{_f(e['lost_median_slope_ratio'])}" + (
                   f" against {_f(e['median_slope_ratio'])} over the class: the lost beats are those whose QRS the VAE "
                   f"blunted, and a blunted QRS reads as a wider complex ({to}-like). "
                   if e["lost_median_slope_ratio"] < e["median_slope_ratio"] - 0.1 else ", about the class's: not blur. ")
               if e.get("lost_median_slope_ratio") is not None and e["lost"] else "")
            + (f"On the originals the classifier gave the lost beats a median P({c}) of {_f(e['lost_median_p_true'])}, "
               f"against {_f(e['median_p_true_kept'])} for the {c} beats it keeps right: "
               + ("they sat near its decision boundary, where a small change of the waveform flips them. "
                  if e["lost_median_p_true"] < e["median_p_true_kept"] - 0.1 else
                  "it was about as sure of them as of the rest: not a boundary effect. ")
               if e.get("lost_median_p_true") is not None and e["lost"] else "")
            + ("They come most from records " + ", ".join(f"{k} ({n})" for k, n in sorted(e["lost_records"].items(),
                                                                                          key=lambda kv: -kv[1]))
               + f": {sum(e['lost_records'].values())} of the {e['lost']}"
               + (", by annotation symbol " + ", ".join(f"{k} {n}" for k, n in e["lost_symbols"].items())
                  if e.get("lost_symbols") else "") + ". " if e.get("lost_records") and e["lost"] else "")
            + (_better(cands) if gap < 0 else "")
            + (f"Its recall of {r['target']} (the traversals' target) on the originals is only "
               f"{pc[r['target']]['recall_original']:.3f}: close to a majority classifier, so agreeing with itself on "
               f"reconstructions says little, and its traversals cannot show what makes a beat {r['target']} to it. "
               if r.get("target") in pc and pc[r["target"]]["n"] >= 30 and pc[r["target"]]["recall_original"] < 0.2 else "")
            + f"The {fl['n']:,} beats whose prediction flipped are reconstructed worse than the "
            f"{kp['n']:,} that kept it (median r {fl['median_r']:.3f} vs {kp['median_r']:.3f}; QRS slope ratio "
            f"{fl['median_slope_ratio']:.2f} vs {kp['median_slope_ratio']:.2f}; error within 50 ms of R "
            f"{qrs_ratio:.2f}x and elsewhere {rest_ratio:.2f}x the kept beats'): "
            + ("their QRS edges are not blurred more than the kept beats': blur of sharp QRS edges does not explain the "
               "flips." if not blur else
               "their QRS edges are blurred more, but the error away from the QRS grows as much or more: blur of sharp "
               "QRS edges is part of it, not all." if rest_ratio >= qrs_ratio else
               "their QRS edges are blurred more and the error grows most within the QRS: blur of the QRS is the main loss."))
    for key, r in natural.items():
        t, rd = r["trained"], r["randomised"]
        out.append(f"* **Traversal N -> V, {key}** ({t['n']} DS2 N beats, {r['traverse']['steps']} steps): P(V) rises "
                   f"monotonically (median rho {t['median_spearman']:.3f}, {100 * t['frac_spearman_ge_0_9']:.0f}% of the "
                   f"paths >= 0.9) from {t['median_prob_start']:.3f} to {t['median_prob_end']:.3f}; "
                   f"{100 * t['frac_cross_0_5']:.0f}% of the beats cross 0.5 (of the {100 * t['frac_start_below_0_5']:.0f}% "
                   f"that start below it); {100 * t['frac_start_inside_prior_bound']:.0f}% of the encodings start inside "
                   f"the prior's 99% ball and every path stays inside it or no further out than its start "
                   f"({100 * t['frac_no_lower_than_start']:.0f}%). The randomised classifier's paths cross 0.5 for "
                   f"{100 * rd['frac_cross_0_5']:.0f}%. Most changed: segment {t['top_segment']}, wave "
                   f"{t.get('top_wave') or '-'}; agreement with V's saliency profile {_f(t['median_agreement'])} "
                   f"(randomised {_f(rd['median_agreement'])}), with the beat's own saliency "
                   f"{_f(t.get('median_source_agreement'))} (randomised {_f(rd.get('median_source_agreement'))})."
                   + _seed_check(r.get("directions", {})))
    out += _sanity_lines(natural)
    if quick:
        gaps = ", ".join(f"{k.removesuffix(',quick')} {100 * r['fidelity']['acc_gap']:+.1f}" for k, r in quick.items())
        accs = [r["test_accuracy"] for r in quick.values() if r.get("test_accuracy") is not None]
        inside = max(r["trained"]["frac_start_inside_prior_bound"] for r in quick.values())
        out.append(f"* **The quick rows** (previous session: 4-epoch classifiers on 3,000 beats per part, a VAE on the "
                   f"first quick run's 3,000 training beats, decoder sigma 0.1, 1,000 or fewer DS2 beats) missed the "
                   f"2 points (gaps in points: {gaps}); they are kept as the record of that shortfall. Their "
                   f"classifiers' DS2 accuracy was {min(accs):.2f}-{max(accs):.2f}, and at most {100 * inside:.0f}% of "
                   f"the encodings started inside the prior's ball.")
    if param and "wave_share_end" in param["trained"]:  # rows of this session's run_parameter
        t, rd = param["trained"], param["randomised"]
        valid = param["r2_test"] > 0.3
        out.append(
            f"* **QRS width + {1000 * param['delta']:.0f} ms on real beats**: the regressor of the delineated width "
            f"reaches R^2 {param['r2_test']:.2f} on held-out DS2 beats (MAE {_msv(param['mae_test'])} ms against "
            f"{_msv(param.get('mae_of_training_mean'))} ms for the training mean), "
            + ("so it measures the width in part; " if valid else "so it does not measure the width on new patients; ")
            + f"along the trained regressor's paths its reading rises from {_msv(t['median_value_start'], 0)} to "
              f"{_msv(t['median_value_end'], 0)} ms (median rho {t['median_spearman']:.2f}; "
              f"{100 * t['frac_reached_half']:.0f}% reach half the asked change), and the second regressor, never "
              f"optimised against, reads a median change of {_ms(t.get('reader_median_gain'))} "
              f"({100 * t.get('reader_frac_reached_half', float('nan')):.0f}% reach half). The change lies "
              f"{100 * t['qrs_share_of_change']:.0f}% in the two 0.1 s segments around R and "
              f"{100 * t['wave_share_end']['QRS']:.0f}% in the source beat's delineated QRS (of its five waves; "
              f"most changed {t['top_wave']}). The re-initialised regressor's reading moves too "
              f"({_msv(rd['median_value_start'], 0)} -> {_msv(rd['median_value_end'], 0)} ms; the reader: "
              f"{_ms(rd.get('reader_median_gain'))}): the query's mechanics move any reading; only the reader's "
              f"change, and where the change lies, speak for the QRS.")
    out += ["* **Tested on synthetic beats** (what the real-beat rows cannot show): a parameter query's change "
            "is measured on the generated beats by no model (`tests/generative/test_parameter.py`, slow: the full "
            "width at half maximum rises monotonically and gains 25-55 ms for +40 ms); a classifier trained on a bump "
            "in a known segment is traversed so that segment changes most (`tests/generative/test_explain.py`); two "
            "classifiers trained from different seeds move beats the same way and a randomised one agrees with "
            "neither (slow); two *randomised* classifiers can agree with each other (the architecture's bias), so "
            "the check that can fail is trained-vs-trained against trained-vs-random.",
            "* **Not measured here**: the paper's CNN (`jones2020_cnn`) with the full recipe (its 11 full-length "
            "convolutions take seconds per step on this CPU; only its quick row exists), "
            + ("" if any("jones2020win" in r.get("config", "") for r in full.values()) else
               "a classifier on the jones2020 window (so its VAE has reconstruction numbers only), ")
            + "and queries other than N -> V and QRS width."]
    return out


def _template_lines(natural: dict) -> list[str]:
    """Whether the two-input classifiers checked here subtract a running template (read from their configs now)."""
    from ecgjax.config import load_config

    cfgs = sorted({r["config"].split(":")[-1] for r in natural.values() if r["config"].split(":")[-1].startswith("rr_net")})
    if not cfgs:
        return []
    k = {c: load_config(f"{CONFIG}:{c}").data.template_beats for c in cfgs}
    none = [c for c, v in k.items() if not v]
    return ["* **Running templates**: " + (
        f"{', '.join(none)} read the beats themselves (`traverse_aami.py`: `data.template_beats` = 0), not the beat "
        "minus its record's running template that `aami_rr.py`'s inter-patient models read (`data/template.py`): a "
        "template computed from the original preceding beats cannot be what moves their predictions on "
        "reconstructions." if none else "") + "".join(
        f" {c} subtracts the mean of its record's {v} preceding beats." for c, v in k.items() if v)]


def update_docs(doc: Path, out: Path, results: Path) -> None:
    from ecgjax.errors import DataError
    from ecgjax.io import atomic_write_text, replace_section

    if not doc.is_file():
        _fail(f"--doc {doc}: no such page; pass docs/results.md (or a page holding {BEGIN} and {END})")
    try:
        atomic_write_text(doc, replace_section(doc.read_text(), render(out, results), BEGIN, END, where=str(doc)))
    except DataError as e:
        _fail(str(e))


def _fail(msg: str) -> None:
    print(f"traverse_real: {msg}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/traverse_real", help="runs and the shared VAE go here")
    p.add_argument("--models", default="rr_net,jones2020_cnn,jones2020_lstm")
    p.add_argument("--seeds", type=int, default=1, help="trained runs per model (2: the seed sanity check)")
    p.add_argument("--recipe", default="quick", help="the classifiers' traverse_aami.py options after the model: quick "
                                                     "(3,000 beats per part, 4 epochs) or full,natural (every DS1 "
                                                     "training beat, DS1's class frequencies)")
    p.add_argument("--no-waves", action="store_true", help="skip the per-wave change (the delineation of the test "
                                                             "records, neurokit2, cached per record)")
    p.add_argument("--target", default="V")
    p.add_argument("--source", default="N")
    p.add_argument("--max-beats", type=int, default=64, help="N beats traversed (and V beats profiled)")
    p.add_argument("--fidelity-beats", type=int, default=2000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64, help="beats per compiled batch (pad: keep it near --max-beats)")
    p.add_argument("--vae-epochs", type=int, default=10, help="of the shared VAE, when the root holds none")
    p.add_argument("--vae-max-train", type=int, default=20000)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu_traverse.jsonl"))
    p.add_argument("--parameter", action="store_true", help="the QRS-width query instead of the class queries")
    p.add_argument("--agreement", action="store_true",
                   help="diagnose the profile agreement of the models' finished traversals (trained vs randomised, "
                        "the profile's flatness, reliance on the RR channels) instead of traversing")
    p.add_argument("--fidelity-seeds", action="store_true",
                   help="only the classifier-on-reconstructions check, for every trained seed of each model (--seeds), "
                        "with ROOT/vae; nothing traversed")
    p.add_argument("--fidelity-part", choices=("test", "val"), default="test",
                   help="the split part --fidelity-seeds reads: test (DS2) or val (the classifiers' DS1 validation records, "
                        "held out from the VAE's and the classifiers' training: a check that reads no DS2 beat)")
    p.add_argument("--delta", type=float, default=0.04, help="the parameter query's change (s)")
    p.add_argument("--param-records", default="",
                   help="DS1 records the width regressor trains on, comma-separated (default: all 22 DS1 records)")
    p.add_argument("--param-train", type=int, default=6000)
    p.add_argument("--param-epochs", type=int, default=8)
    p.add_argument("--render", action="store_true", help="only regenerate docs/results.md's section")
    p.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if not args.render:
        from ecgjax.io import environment_info

        root = Path(args.root)
        root.mkdir(parents=True, exist_ok=True)
        jobs = [("parameter", run_parameter)] if args.parameter else [("agreement", run_agreement)] if args.agreement else \
            [("fidelity", run_fidelity)] if args.fidelity_seeds else \
            [(m, lambda root, a, m=m: run_model(m, root, a)) for m in args.models.split(",") if m]
        for name, job in jobs:
            load0, t0 = os.getloadavg()[0], time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            row = job(root, args) | environment_info() | {"load_avg_1m_start": load0, "load_avg_1m_end": os.getloadavg()[0],
                                                           "started": t0}
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as fh:
                fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            print(f"{name}: row appended to {out}", flush=True)
    update_docs(Path(args.doc), out, ROOT / "benchmarks" / "results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
