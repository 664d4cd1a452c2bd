"""End-to-end pipeline timing on N beats (skeleton): saliency over all beats, then
segmenting into windows and per-class profiles.

Stages, each timed on its own (wall seconds, JSON line to ``--out``):
  1. ``saliency``: jitted one-hot-VJP saliency over all N beats in fixed-size
     chunks (tail padded), results copied to one host array;
  2. ``windows``/``profiles``: ``ecgjax.analysis`` when that package exists
     (HOOK below); until then a clearly marked stand-in (100 ms windows of the
     |saliency| by numpy reshape, per-class median/IQR with np.percentile) so
     the stage has a realistic cost.

  python benchmarks/pipeline_e2e.py --model jones2020_cnn --n-beats 20000 --out benchmarks/results/cpu_pipeline.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time

import _common as C


def _standin_profiles(sal, labels, fs=360, window_s=0.1, n_classes=8):
    """HOOK stand-in until ecgjax.analysis exists: windows -> per-class median, q25, q75."""
    import numpy as np

    n, t, l = sal.shape
    w = int(round(window_s * fs))
    nw = t // w  # tail policy of the stand-in: drop the incomplete last window
    win = np.abs(sal[:, : nw * w]).reshape(n, nw, w, l).mean(axis=2)
    prof = {}
    for c in range(n_classes):
        sel = win[labels == c]
        if len(sel):
            prof[c] = np.percentile(sel, [25, 50, 75], axis=0)
    return win, prof


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="jones2020_cnn")
    p.add_argument("--n-beats", type=int, default=20_000)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--conv-impl", default="auto")
    p.add_argument("--precision", default="float32", choices=["float32", "tf32"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.n_beats, args.chunk = "jones2020_lstm", 300, 100
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ecgjax import models
    from saliency_throughput import build_model

    env = C.env_record(sys.argv if argv is None else ["benchmarks/pipeline_e2e.py", *argv])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n_beats, 430, 2), dtype=np.float32)
    labels = (np.arange(args.n_beats) % 8).astype(np.int32)
    model, impl = build_model(args.model, args.conv_impl)
    graphdef, state = models.eval_split(model)

    @jax.jit
    def sal(state, xb, tb):
        y, vjp = jax.vjp(lambda v: models.pure_fns(graphdef, state).logit_fn(v), xb)
        return vjp(jax.nn.one_hot(tb, y.shape[-1], dtype=y.dtype))[0]

    stages = {}
    with jax.default_matmul_precision(C.matmul_precision(args.precision)):
        t0 = time.perf_counter()
        sal(state, jnp.zeros((args.chunk, 430, 2)), jnp.zeros(args.chunk, jnp.int32)).block_until_ready()
        stages["compile_s"] = time.perf_counter() - t0
        out = np.empty_like(x)
        t0 = time.perf_counter()
        for lo in range(0, args.n_beats, args.chunk):
            hi = min(lo + args.chunk, args.n_beats)
            xb, tb = x[lo:hi], labels[lo:hi]
            if hi - lo < args.chunk:
                xb = np.concatenate([xb, np.zeros((args.chunk - (hi - lo), 430, 2), np.float32)])
                tb = np.concatenate([tb, np.zeros(args.chunk - (hi - lo), np.int32)])
            out[lo:hi] = np.asarray(sal(state, jnp.asarray(xb), jnp.asarray(tb)))[: hi - lo]
        stages["saliency_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # HOOK: once ecgjax.analysis exists in this tree, call its windows/profiles here instead of the stand-in.
    if C.import_in_tree("ecgjax.analysis") is not None:
        source = "ecgjax.analysis present but not wired yet: stand-in used"
    else:
        source = "stand-in (ecgjax.analysis absent)"
    _standin_profiles(out, labels)
    stages["profiles_s"] = time.perf_counter() - t0
    row = dict(env, model=args.model, method="pipeline_e2e", batch=args.chunk, n_beats=args.n_beats, conv_impl=impl,
               precision=args.precision, analysis_source=source, **stages,
               beats_per_s=args.n_beats / (stages["saliency_s"] + stages["profiles_s"]))
    C.append_jsonl(args.out, [row])
    C.log(f"{args.model}: {args.n_beats} beats: compile {stages['compile_s']:.1f}s, saliency {stages['saliency_s']:.1f}s, "
          f"profiles {stages['profiles_s']:.2f}s ({source})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
