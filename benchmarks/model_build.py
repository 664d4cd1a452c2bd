"""Seconds to build each registry model, cold, as JSON lines: what a training run, a sanity check's fresh model or a
study's audit waits for before its first step.

    python benchmarks/model_build.py --out benchmarks/results/cpu_model_build.jsonl [--models a,b] [--repeats 3]
    python benchmarks/model_build.py --table benchmarks/results/cpu_model_build.jsonl   # Markdown, one row per run

Each (model, repeat) runs in a new Python process (nothing compiled before it, no persistent compilation cache, the
XLA flags and ``$ECGJAX_INIT`` of the calling environment, recorded as ``init``): ``ecgjax.models.build`` timed until its arrays are ready, with the number of XLA
compilations it ran. Sizes: the paper's models on its 430-sample two-lead beats, rr_net on the AAMI window with its
8 RR features (``SHAPES``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import _common as C
from ecgjax.data.rr import DEFAULT_FEATURES
from ecgjax.models.base import INIT_ENV

# (in_shape (T, L), constructor keywords) per model; fs 360 Hz
SHAPES = {
    "jones2020_cnn": ((430, 2), {}),
    "jones2020_lstm": ((430, 2), {}),
    "ribeiro_cnn": ((430, 2), {}),
    "rr_net": ((252, 2 + len(DEFAULT_FEATURES)), {"rr_features": DEFAULT_FEATURES}),
}


def child(name: str) -> dict:
    """Build ``name`` once in this (new) process: {"build_s", "xla_compiles"}."""
    import jax
    from flax import nnx

    from ecgjax import models

    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, secs, **_: compiles.append(secs) if event == "/jax/core/compile/backend_compile_duration" else None)
    shape, kw = SHAPES[name]
    jax.block_until_ready(jax.numpy.zeros(()))  # the backend started before the clock
    n0 = len(compiles)
    t0 = time.perf_counter()
    model = models.build(name, n_classes=5, in_shape=shape, fs=360.0, rngs=nnx.Rngs(0), **kw)
    jax.block_until_ready(nnx.state(model))
    return {"build_s": round(time.perf_counter() - t0, 3), "xla_compiles": len(compiles) - n0}


def table(path: str) -> str:
    """The rows of ``path`` as a Markdown table, in file order."""
    from ecgjax.io import read_jsonl

    lines = ["| commit | model | build (s, median) | XLA compilations | note |", "|---|---|---|---|---|"]
    for r in read_jsonl(path):
        if r.get("benchmark") == "model_build":
            lines.append(f"| {(r['git_commit'] or '?')[:7]}{'+dirty' if str(r['git_commit']).endswith('+dirty') else ''} | {r['model']} "
                         f"| {r['build_s_median']:.2f} | {r['xla_compiles']} | {r['note']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(SHAPES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out")
    p.add_argument("--note", default="")
    p.add_argument("--table", metavar="FILE", help="print FILE's rows as a Markdown table")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.table:
        from ecgjax.errors import DataError

        try:
            print(table(args.table))
        except DataError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        except (KeyError, TypeError) as e:
            print(f"error: {args.table}: not a file of model_build rows (no {e})", file=sys.stderr)
            return 2
        return 0
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    names = args.models.split(",")
    unknown = sorted(set(names) - set(SHAPES))
    if unknown or not args.out or args.repeats < 1:
        print(f"error: {'unknown models ' + ', '.join(unknown) + '; known: ' + ', '.join(SHAPES) if unknown else '--out is required and --repeats >= 1'}",
              file=sys.stderr)
        return 2
    env = C.env_record(sys.argv if argv is None else ["benchmarks/model_build.py", *argv])
    child_env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": "", "JAX_ENABLE_COMPILATION_CACHE": "false"}
    rows = []
    for name in names:
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run([sys.executable, __file__, "--child", name], capture_output=True, text=True, env=child_env)
            if out.returncode != 0:
                print(f"error: building {name} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
                return 1
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        secs = [r["build_s"] for r in runs]
        rows.append(dict(env, benchmark="model_build", model=name, in_shape=list(SHAPES[name][0]), build_s_median=statistics.median(secs),
                         build_s=secs, xla_compiles=runs[0]["xla_compiles"], init=os.environ.get(INIT_ENV) or "program", note=args.note))
        print(f"{name}: {statistics.median(secs):.2f} s (of {', '.join(f'{s:.2f}' for s in secs)}), {runs[0]['xla_compiles']} XLA compilations",
              flush=True)
    C.append_jsonl(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
