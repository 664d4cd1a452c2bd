"""Integrated gradients' completeness error with its default settings, on trained runs.

Explains a seeded, class-balanced sample of each run's test beats with
``integrated_gradients`` at its defaults (``ecgjax.attribution.get``: the
steps, baseline and quadrature ``ecgjax explain`` uses), through ``explain_run``
(so the number is the one a run's ``meta.json`` reports), and appends one JSON
line per run to ``--out``; then prints the Markdown table of every line in
``--out`` (docs/results.md quotes it verbatim). ``--hp`` changes a setting
(``steps=512``, ``baseline=zeros``) to see what the error depends on.
``--path-profile`` instead evaluates the target logit along the straight path
from the baseline (``--hp baseline=...``) of a few beats on a fine grid of alpha and zooms into
its steepest interval in float64, and prints where the logit changes and how
the trapezoid rule's sum of the gradient compares with that change::

    python experiments/ig_completeness.py RUN... --per-class 8 --out benchmarks/results/cpu_ig_completeness.jsonl
    python experiments/ig_completeness.py RUN --per-class 8 --hp baseline=blurred --out benchmarks/results/cpu_ig_completeness.jsonl
    python experiments/ig_completeness.py --out benchmarks/results/cpu_ig_completeness.jsonl   # the table only
    python experiments/ig_completeness.py RUN --path-profile --per-class 1 --hp baseline=zeros --out benchmarks/results/cpu_ig_path_profile.jsonl

Error per beat: |sum of the map - (z_t(x) - z_t(baseline))| / |z_t(x) - z_t(baseline)|
(``ecgjax.attribution.sanity.completeness_error``), target the true class.
Rows that leave a setting at its default say "(default)"; the baseline column names the
baseline the default resolved to (the model's ``ModelInfo.ig_baseline``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the ecgjax next to this file

import numpy as np  # noqa: E402


def sample_test(y: np.ndarray, test: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """i64[<= per_class * C]: up to ``per_class`` test beats of every class, seeded, sorted."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23]))
    out = [rng.permutation(test[y[test] == c])[:per_class] for c in np.unique(y[test])]
    return np.sort(np.concatenate(out)).astype(np.int64)


def measure(workdir: str, per_class: int, batch_size: int, hp: dict) -> dict:
    from ecgjax import attribution as attr
    from ecgjax.attribution.explain import explain_run, model_identity
    from ecgjax.io import environment_info
    from ecgjax.models import eval_split, model_info
    from ecgjax.train import load_run

    run = load_run(workdir)
    idx = sample_test(run.beats.y, run.split.test, per_class)
    method = attr.get("integrated_gradients", **hp).for_model(model_info(run.model))
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        explain_run(eval_split(run.model), run.beats, idx, method, tmp, target="label", batch_size=batch_size,
                    model_info=model_identity(run))
        meta = json.loads((Path(tmp) / method.name / "meta.json").read_text())
    env = environment_info()
    return {"run": str(workdir), "name": run.config.name, "seed": run.config.train.seed, "model": run.config.model.name,
            "model_kwargs": run.config.model.kwargs, "test_macro_f1_sklearn": (run.results or {}).get("test", {}).get("macro", {}).get("sklearn", {}).get("f1"),
            "method": {f.name: getattr(method, f.name) for f in dataclasses.fields(method) if f.name != "baseline_value"},
            "hp": hp, "beats": int(len(idx)), "per_class": per_class, "completeness": meta["completeness"],
            "wall_s": time.time() - t0, "device": env.get("device"), "versions": env.get("versions")}


def path_profile(workdir: str, per_class: int, hp: dict, grid: int = 4096, zoom: int = 1024) -> dict:
    """The target logit z(a) = z_t(x0 + a (x - x0)) on ``grid`` intervals of [0, 1] (float32, as IG runs)
    with the gradient's dot product with (x - x0) at the same points, for a seeded sample of test beats;
    then the steepest grid interval of each beat re-evaluated on ``zoom`` intervals in float64."""
    import jax
    import jax.numpy as jnp

    from ecgjax import attribution as attr
    from ecgjax.attribution.base import target_grad
    from ecgjax.models import eval_split, model_info, pure_fns
    from ecgjax.train import load_run

    run = load_run(workdir)
    idx = sample_test(run.beats.y, run.split.test, per_class)
    method = attr.get("integrated_gradients", **hp).for_model(model_info(run.model))
    x = jnp.asarray(run.beats.x[idx])
    t = jnp.asarray(run.beats.y[idx], jnp.int32)
    x0 = method.baseline_for(x)
    graphdef, state = eval_split(run.model)
    a = np.linspace(0.0, 1.0, grid + 1)

    def along(state, x, x0, t, a):
        fns = pure_fns(graphdef, state)

        def one(ai):
            xs = x0 + ai * (x - x0)
            z = jnp.take_along_axis(fns.logit_fn(xs), t[:, None], 1)[:, 0]
            return z, (target_grad(fns, xs, t) * (x - x0)).sum((1, 2))

        return jax.lax.map(one, a, batch_size=32)

    z, gd = (np.asarray(v, np.float64) for v in jax.jit(along)(state, x, x0, t, jnp.asarray(a, jnp.float32)))  # [A, B]
    jax.config.update("jax_enable_x64", True)
    try:
        s64 = jax.tree.map(lambda v: v.astype(jnp.float64) if jnp.issubdtype(v.dtype, jnp.floating) else v, state)
        beats = []
        for b in range(len(idx)):
            k = int(np.abs(np.diff(z[:, b])).argmax())
            az = np.linspace(a[k], a[k + 1], zoom + 1)
            x64, x064 = (jnp.asarray(np.asarray(v[b : b + 1]), jnp.float64) for v in (x, x0))
            zz = np.asarray(jax.jit(lambda s, a_: along(s, x64, x064, t[b : b + 1], a_)[0])(s64, jnp.asarray(az)))[:, 0]
            dz = z[-1, b] - z[0, b]
            dzz = np.abs(np.diff(zz))
            beats.append({
                "index": int(idx[b]), "target": int(t[b]), "dz": float(dz),
                "tv": float(np.abs(np.diff(z[:, b])).sum()),  # total variation of z along the path
                "trapz": {str(n): float(np.trapezoid(gd[:: grid // n, b], dx=1.0 / n)) for n in (128, 512, grid)},
                "steepest": {"a": float(a[k]), "width": float(a[k + 1] - a[k]), "dz": float(z[k + 1, b] - z[k, b]),
                             "dz64": float(zz[-1] - zz[0]), "max_dz64_step": float(dzz.max()),
                             "max_slope64": float(dzz.max() / (az[1] - az[0])), "monotone64": bool(np.allclose(dzz.sum(), abs(zz[-1] - zz[0])))},
                "max_abs_gd": float(np.abs(gd[:, b]).max()),
            })
    finally:
        jax.config.update("jax_enable_x64", False)
    return {"run": str(workdir), "name": run.config.name, "seed": run.config.train.seed, "baseline": method.baseline,
            "hp": hp, "grid": grid, "zoom": zoom, "beats": beats}


def profile_table(rows: list[dict]) -> str:
    head = ("| run | baseline | beat | z(x) - z(x0) | total variation | IG sum 128 / 512 / 4096 steps | steepest 1/4096 of the path: "
            "at alpha, change | float64 zoom: largest slope dz/dalpha |")
    out = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for b in r["beats"]:
            s, tr = b["steepest"], b["trapz"]
            out.append(f"| {r['name']} (seed {r['seed']}) | {r['baseline']} | {b['index']} | {b['dz']:.2f} | {b['tv']:.2f} | "
                       f"{tr['128']:.2f} / {tr['512']:.2f} / {tr[str(r['grid'])]:.2f} | {s['a']:.4f}, {s['dz']:+.2f} | {s['max_slope64']:.3g} |")
    return "\n".join(out)


def table(rows: list[dict]) -> str:
    head = "| run | model | test macro F1 (sklearn) | beats | steps | baseline | median error | 90th pct | under 5% |"
    out = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c, m = r["completeness"], r["method"]
        f1 = "-" if r["test_macro_f1_sklearn"] is None else f"{r['test_macro_f1_sklearn']:.3f}"
        dflt = lambda k: "" if k in r.get("hp", {}) else " (default)"  # noqa: E731
        out.append(f"| {r['name']} (seed {r['seed']}) | {r['model']} | {f1} | {c['n']} | {c['steps']}{dflt('steps')} | {m['baseline']}{dflt('baseline')} | "
                   f"{100 * c['median_rel_error']:.2f}% | {100 * c['p90_rel_error']:.2f}% | {'yes' if c['ok'] else 'NO'} |")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="*", help="finished training runs (workdirs)")
    p.add_argument("--per-class", type=int, default=8, help="test beats per class (seeded)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hp", nargs="*", default=[], help="IG settings other than the defaults, name=value (steps=512 baseline=blurred)")
    p.add_argument("--path-profile", action="store_true", help="profile the logit along the path instead (see above)")
    p.add_argument("--out", required=True, help="JSON lines file: one row per run is appended")
    args = p.parse_args(argv)
    from ecgjax.cli import run_guarded

    return run_guarded(_run, args, prog="ig_completeness")


def _run(args) -> None:
    from ecgjax.errors import DataError
    from ecgjax.io import atomic_write_text, read_jsonl

    out = Path(args.out)
    rows = read_jsonl(out, "ig_completeness result file") if out.exists() else []
    key, kind = ("beats", "--path-profile") if args.path_profile else ("completeness", "completeness")
    if any(key not in r for r in rows):  # another script's rows, or the other mode's
        raise DataError(f"--out {out}: its rows are not this script's {kind} rows; give another file")
    hp = {}
    for item in args.hp:
        k, _, v = item.partition("=")
        hp[k] = int(v) if v.isdigit() else v
    for w in args.runs:
        rows.append(path_profile(w, args.per_class, hp) if args.path_profile else measure(w, args.per_class, args.batch_size, hp))
        atomic_write_text(out, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    print(profile_table(rows) if args.path_profile else table(rows))


if __name__ == "__main__":
    raise SystemExit(main())
