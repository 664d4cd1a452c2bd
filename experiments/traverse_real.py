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
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the ecgjax next to this file

CONFIG = str(ROOT / "experiments" / "configs" / "traverse_aami.py")
BEGIN, END = "<!-- traverse-results:begin -->", "<!-- traverse-results:end -->"


def train_quick(model: str, workdir: Path, seed: int) -> Path:
    """The quick classifier of ``model`` (training seed ``seed``) in ``workdir``, trained unless finished."""
    from ecgjax.config import load_config
    from ecgjax.train.loop import train_and_evaluate

    if not (workdir / "results.json").is_file():
        train_and_evaluate(load_config(f"{CONFIG}:{model},quick", [f"train.seed={seed}"]), workdir)
    return workdir


def run_model(model: str, root: Path, args) -> dict:
    from ecgjax.generative.pipeline import traverse_run

    t0 = time.perf_counter()
    runs = [train_quick(model, root / f"{model}_seed{s}", s) for s in range(args.seeds)]
    train_s = time.perf_counter() - t0
    s = traverse_run(runs[0], target=args.target, source=args.source, vae_dir=root / "vae", max_beats=args.max_beats,
                     fidelity_beats=args.fidelity_beats, steps=args.steps, waves=False, batch_size=args.batch_size,
                     vae_epochs=args.vae_epochs, vae_max_train=args.vae_max_train,
                     compare=runs[1] if len(runs) > 1 else None, progress=True,
                     command=" ".join(["python experiments/traverse_real.py", *sys.argv[1:]]))
    test = json.loads((runs[0] / "results.json").read_text())
    return s | {"experiment": "traverse_real", "config": f"traverse_aami.py:{model},quick", "args": vars(args),
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
    delineated QRS width (``data.delineation``, quality-flagged beats; ``study.groundtruth.targets_and_segments``)
    of AAMI beats from DS1 records already delineated in the cache (``--param-records``), is tested on DS2
    records, and reads the generated beats; the shared VAE (``ROOT/vae``) generates them. The same query
    through a re-initialised regressor is the control.
    """
    from flax import nnx

    from ecgjax import models
    from ecgjax.data import load_beats, protocols
    from ecgjax.data.delineation import load_waves
    from ecgjax.generative import explain as EX
    from ecgjax.generative import vae as V
    from ecgjax.generative.traverse import PRIOR_MASS, prior_bound, traverse_parameter
    from ecgjax.study.groundtruth import targets_and_segments
    from ecgjax.train.regression import train_regressor

    t0 = time.perf_counter()
    train_recs = tuple(r for r in args.param_records.split(",") if r)
    test_recs = tuple(protocols.DS2)
    beats = load_beats(protocols.get("aami", records=train_recs + test_recs))
    waves = load_waves(beats)
    width, _, usable = targets_and_segments(beats, waves)["qrs_width"]
    rng = np.random.default_rng(0)
    draw = lambda rows, n: np.sort(rows if len(rows) <= n else rng.choice(rows, n, replace=False))  # noqa: E731
    train = draw(np.flatnonzero(usable & np.isin(beats.record, train_recs)), args.param_train)
    is_test = usable & np.isin(beats.record, test_recs)
    test = draw(np.flatnonzero(is_test), 1000)
    kw = {"filters": (16, 16, 32, 32), "lead_layout": "channels", "dropout": 0.0}
    reg = train_regressor("ribeiro_cnn", beats.x, width, train, test, fs=beats.fs, epochs=args.param_epochs, batch_size=64,
                          lr=1e-3, seed=0, **kw)
    model = nnx.merge(*reg.model)
    vae = V.load_vae(root / "vae")
    n_idx = beats.classes.index(args.source)
    src = draw(np.flatnonzero(is_test & (beats.y == n_idx)), args.max_beats)
    x = beats.x[src]
    common = dict(mean=reg.mean, std=reg.std, steps=args.steps, batch_size=args.batch_size, progress=True)
    out = {}
    fresh = models.build("ribeiro_cnn", n_classes=1, in_shape=beats.x.shape[1:], fs=beats.fs, rngs=nnx.Rngs(1), **kw)
    for name, m in (("trained", model), ("randomised", fresh)):
        tr = traverse_parameter(m, vae, x, args.delta, **common)
        change, labels = EX.segment_change(tr.beats, beats.r[src], beats.lo[src], beats.hi[src], beats.fs,
                                           lead_names=("MLII", "V1"))
        mean_change = EX.nan_stat(np.nanmean, change[:, -1])
        qrs = [i for i, lab in enumerate(labels) if lab.endswith(("-1", "+1"))]  # the 0.2 s around R
        bound = prior_bound(vae.settings.latent, PRIOR_MASS)
        rho = tr.spearman()
        out[name] = {"n": int(len(src)), "median_spearman": EX.nan_median(rho), "frac_spearman_ge_0_9": float(np.mean(rho >= 0.9)),
                     "frac_reached_half": float(tr.reached().mean()),
                     "median_value_start": float(np.median(tr.value[:, 0])), "median_value_end": float(np.median(tr.value[:, -1])),
                     "median_gain": float(np.median(tr.value[:, -1] - tr.value[:, 0])),
                     "frac_no_lower_than_start": float(np.mean(tr.prior_logpdf.min(axis=1) >= np.minimum(bound, tr.prior_logpdf[:, 0]) - 1e-3)),
                     "top_segment": labels[int(np.nanargmax(mean_change))],
                     "qrs_share_of_change": float(np.nansum(mean_change[qrs]) / np.nansum(mean_change))}
    return {"experiment": "traverse_parameter", "parameter": "qrs_width", "unit": "s", "delta": args.delta,
            "source": args.source, "train_records": list(train_recs), "n_train": int(len(train)), "n_test": int(len(test)),
            "r2_test": reg.r2_test, "mae_test": reg.mae_test, "regressor_train_s": reg.train_s,
            "vae": {"latent": vae.settings.latent, "beta": vae.settings.beta, "width": vae.settings.width},
            "steps": args.steps, **out, "wall_s": time.perf_counter() - t0, "args": vars(args),
            "command": " ".join(["python experiments/traverse_real.py", *sys.argv[1:]])}


# ---------------------------------------------------------------- docs


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _f(v, digits=3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def render(out: Path, results: Path) -> str:
    """The generated section: the VAE on both windows, then the traversals of every model (newest row per model)."""
    from ecgjax.io import describe_device

    lines = [BEGIN, "", "<!-- generated by `python experiments/traverse_real.py --render`; do not edit by hand -->", "",
             "**The beat VAE on both windows** (`benchmarks/vae_aami.py --protocol P --width 16 ...`, every row of "
             "`benchmarks/results/cpu_vae_<protocol>.jsonl`, each with its exact command): trained on beats "
             "of DS1's records, evaluated on DS2's (patients never seen). Per-beat Pearson r and MSE over the valid "
             "samples of both leads; the template baseline reconstructs each beat as its true class's mean training beat.",
             "", "| window | T x L | latent | beta | decoder sigma | epochs | train / test beats | median r (share > 0.9) | "
             "median MSE | template MSE | active units | device, load, versions |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for proto in ("aami", "jones2020"):
        rs = _rows(results / f"cpu_vae_{proto}.jsonl")
        if not rs:
            lines.append(f"| {proto} | not yet run | | | | | | | | | | |")
        for r in rs:
            st = r["settings"]
            lines.append(f"| {proto} | {st['in_shape'][0]} x {st['in_shape'][1]} | {r['latent']} | {st['beta']:g} | "
                         f"{st['sigma']:g} | {st['epochs']} | {r['n_train']:,} / {r['n_test']:,} | {r['median_r']:.3f} "
                         f"({r['frac_r_gt_0_9']:.2f}) | {r['median_mse']:.4f} | {r['median_mse_template']:.4f} | "
                         f"{r['active_units']}/{r['latent']} | {r['device']}, load {r['load_avg_1m']:.1f}, jax {r['jax']} |")
    rows = {}
    for r in _rows(out):
        if r.get("experiment") == "traverse_real":
            rows[r["config"].split(":")[-1].removesuffix(",quick")] = r
    lines += ["", f"**Traversals of real beats** (`{out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}`, "
                  "written by `python experiments/traverse_real.py`; quick classifiers, AAMI DS1 -> DS2, one VAE; "
                  "each row's `command` field holds its exact command). rho: median Spearman rho between the "
                  "position along the path and P(target); agreement: median Spearman of a beat's per-0.1 s-segment "
                  "change with the target's |saliency| profile (median over the target class's beats); own-saliency "
                  "agreement: the same with the traversed beat's own |saliency| of the target (same beat, same R: no "
                  "class profile); directions: cosine of the class-mean unit signed "
                  "change of the generated beats between two traversals of the same beats (trained vs a second "
                  "trained seed; trained vs a randomised classifier; two randomised classifiers).", "",
              "| model | query (beats) | test acc. | acc. originals / reconstructions (beats) | rho (>= 0.9) | cross 0.5 "
              "| P start -> end | starts inside 99% ball | stays inside (or no further out) | agreement (randomised) | own-saliency agreement (randomised) | trained vs trained seed | trained vs randomised "
              "| randomised vs randomised | randomised crosses 0.5 | wall s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for model, r in rows.items():
        t, rd, f, d = r["trained"], r["randomised"], r["fidelity"], r.get("directions", {})
        cos = lambda k: _f(d[k]["beats"]["class_cosine"]) if k in d else "-"  # noqa: E731
        lines.append(
            f"| {model} | {r['source']} -> {r['target']} ({t['n']} beats, {r['traverse']['steps']} steps) | {_f(r.get('test_accuracy'))} | "
            f"{f['acc_original']:.3f} / {f['acc_reconstructed']:.3f} ({f['n']}) | {t['median_spearman']:.3f} "
            f"({t['frac_spearman_ge_0_9']:.2f}) | {t['frac_cross_0_5']:.2f} | {t['median_prob_start']:.3f} -> "
            f"{t['median_prob_end']:.3f} | {t['frac_start_inside_prior_bound']:.2f} | {t['frac_no_lower_than_start']:.2f} | {_f(t['median_agreement'])} "
            f"({_f(rd['median_agreement'])}) | {_f(t.get('median_source_agreement'))} "
            f"({_f(rd.get('median_source_agreement'))}) | {cos('trained_vs_trained_2')} | {cos('trained_vs_randomised')}, "
            f"{cos('trained_vs_randomised_2')} | {cos('randomised_vs_randomised_2')} | {rd['frac_cross_0_5']:.2f} | "
            f"{r['wall_s']:.0f} |")
    params = [r for r in _rows(out) if r.get("experiment") == "traverse_parameter"]
    if params:
        lines += ["", "**A parameter query on real beats** (rows of the same file, `experiment: traverse_parameter`): "
                      "DS2 N beats asked for QRS width + delta through a regressor of the delineated QRS width (a small "
                      "`ribeiro_cnn` trained on DS1 beats whose delineation passes its quality flag; its held-out R^2 "
                      "and MAE on DS2 beats say how well it measures), against a re-initialised regressor. rho: median "
                      "Spearman between the position and the regressor's reading of the generated beat; reached: share "
                      "whose reading moved at least half the asked change; QRS share: the share of the mean |change| "
                      "in the two 0.1 s segments around R (both leads).", "",
                  "| delta | regressor R^2 / MAE (test beats) | model | beats | rho (>= 0.9) | reached | reading start -> end "
                  "| stays inside 99% ball (or no further out) | most changed segment | QRS share | wall s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        r = params[-1]
        for name in ("trained", "randomised"):
            t = r[name]
            lines.append(f"| +{1000 * r['delta']:.0f} ms | {r['r2_test']:.3f} / {1000 * r['mae_test']:.1f} ms ({r['n_test']}) | "
                         f"{name} | {t['n']} | {t['median_spearman']:.3f} ({t['frac_spearman_ge_0_9']:.2f}) | "
                         f"{t['frac_reached_half']:.2f} | {1000 * t['median_value_start']:.0f} -> {1000 * t['median_value_end']:.0f} ms | "
                         f"{t['frac_no_lower_than_start']:.2f} | {t['top_segment']} | {t['qrs_share_of_change']:.2f} | {r['wall_s']:.0f} |")
    rows = {k: v for k, v in rows.items() if v.get("experiment") != "traverse_parameter"}
    if rows:
        r = next(iter(rows.values()))
        lines += ["", f"Traversal: Adam (lr 0.1; steps per row), proximity {r['traverse']['proximity']}, "
                      f"{r['traverse']['n_points']} points, the prior's 99% ball (or the beat's own norm when its "
                      f"encoding lies outside: 'inside' counts those that go no further out); VAE latent "
                      f"{r['vae']['latent']}, beta {r['vae']['beta']:g}, width {r['vae']['width']}. Device of the "
                      f"rows: {', '.join(sorted({describe_device(x) for x in rows.values()}))}; wall s: the traverse command "
                      f"(VAE training included where it trained the shared VAE)."]
    return "\n".join(lines + ["", END])


def update_docs(doc: Path, out: Path, results: Path) -> None:
    from ecgjax.errors import DataError
    from ecgjax.io import atomic_write_text, replace_section

    text = doc.read_text()
    try:
        atomic_write_text(doc, replace_section(text, render(out, results), BEGIN, END, where=str(doc)))
    except DataError as e:
        raise SystemExit(f"traverse_real: {e}") from None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/traverse_real", help="runs and the shared VAE go here")
    p.add_argument("--models", default="rr_net,jones2020_cnn,jones2020_lstm")
    p.add_argument("--seeds", type=int, default=1, help="trained runs per model (2: the seed sanity check)")
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
    p.add_argument("--delta", type=float, default=0.04, help="the parameter query's change (s)")
    p.add_argument("--param-records", default="101,106,108,109,112,114,115,116,118,119,122,124",
                   help="DS1 records the width regressor trains on (delineated in the cache)")
    p.add_argument("--param-train", type=int, default=3000)
    p.add_argument("--param-epochs", type=int, default=5)
    p.add_argument("--render", action="store_true", help="only regenerate docs/results.md's section")
    p.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    if not args.render:
        from ecgjax.io import environment_info

        root = Path(args.root)
        root.mkdir(parents=True, exist_ok=True)
        jobs = [("parameter", run_parameter)] if args.parameter else \
            [(m, lambda root, a, m=m: run_model(m, root, a)) for m in args.models.split(",") if m]
        for name, job in jobs:
            row = job(root, args) | environment_info()
            out.parent.mkdir(parents=True, exist_ok=True)
            with out.open("a") as fh:
                fh.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            print(f"{name}: row appended to {out}", flush=True)
    update_docs(Path(args.doc), out, ROOT / "benchmarks" / "results")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
