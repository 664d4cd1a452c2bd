"""Throughput of the audit checks (issue 17): beats/s of each sanity check, ROAD, glocal aggregation,
split-half stability, clustering and TCAV on N beats of one model (random weights: speed does not
depend on them).

Each check runs twice on the same inputs: the first call compiles (its extra time is ``compile_s``),
the second is timed (``beats_per_s`` = N / its wall time). One JSON line per check is appended to
``--out``, with the environment (device, versions, load average, command).

  python benchmarks/audit_throughput.py --quick --out /tmp/a.jsonl                      # seconds; in the tests
  python benchmarks/audit_throughput.py --model jones2020_cnn --n 256 --out benchmarks/results/cpu_audit.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time

import _common as C


def _checks(args):
    import numpy as np
    from flax import nnx

    from ecgjax import attribution, models
    from ecgjax.analysis.clusters import cluster_class
    from ecgjax.analysis.glocal import glocal_means, split_half
    from ecgjax.attribution import sanity, tcav

    T, L, N, C_ = args.length, 2, args.n, 5
    build = lambda seed: models.build(args.model, n_classes=C_, in_shape=(T, L), fs=360.0, rngs=nnx.Rngs(seed))  # noqa: E731
    model, fresh = build(0), build(1)
    gs, fs_ = models.eval_split(model), models.eval_split(fresh)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, T, L)).astype(np.float32)
    y = rng.integers(0, C_, N).astype(np.int32)
    r, lo, hi = np.full(N, T // 2), np.zeros(N, int), np.full(N, T)
    sal = attribution.get("saliency")
    ig = attribution.get("integrated_gradients", steps=args.ig_steps)
    maps = {"saliency": attribution.attribute_dataset(gs, x, y, sal, progress=False).maps}
    rec = np.array([f"r{i}" for i in rng.integers(0, 40, N)])
    values = np.abs(rng.normal(size=(N, L, 24)))
    layer = models.model_info(model).feature_layer
    kw = dict(batch_size=args.batch)
    return {
        "independent_randomization": lambda: sanity.cascade_for_model(model, fresh, sal, x, y, mode="independent", **kw),
        "random_logit": lambda: sanity.random_logit(gs, sal, x, **kw),
        "data_randomization": lambda: sanity.data_randomization(gs, fs_, sal, x, y, **kw),
        "completeness_integrated_gradients": lambda: sanity.method_completeness(
            gs, ig, x, y, attribution.attribute_dataset(gs, x, y, ig, progress=False, **kw).maps),
        "road": lambda: sanity.road(gs, x, y, maps, r, lo, hi, 360.0, batch_size=args.batch),
        "glocal_means": lambda: glocal_means(values, y, rec, tuple("ABCDE"), {k: k for k in rec}, n_boot=args.n_boot),
        "split_half": lambda: split_half(values, y, rec, tuple("ABCDE"), n_splits=100),
        "cluster_class": lambda: cluster_class(values, rec, ks=(2, 3, 4, 5)),
        "tcav": lambda: tcav.tcav(*_tcav_inputs(tcav, gs, layer, x, y, kw), n_random=10),
    }


def _tcav_inputs(tcav, gs, layer, x, y, kw):
    n = len(x) // 4
    acts, grads = tcav.activations_and_gradients(gs, layer, x, y, **kw)
    return acts[:n], acts[n:], grads


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="jones2020_cnn")
    p.add_argument("--n", type=int, default=256, help="beats")
    p.add_argument("--length", type=int, default=430, help="samples per beat")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--ig-steps", type=int, default=32)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--checks", default="", help="comma-separated subset (default all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test that runs in seconds")
    p.add_argument("--out", required=True, help="JSON lines are appended here")
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.n, args.length, args.batch, args.ig_steps, args.n_boot = "jones2020_lstm", 40, 64, 40, 4, 50
    env = C.env_record(sys.argv if argv is None else ["benchmarks/audit_throughput.py", *argv])
    checks = _checks(args)
    want = [c for c in args.checks.split(",") if c] or list(checks)
    rows = []
    for name in want:
        t0 = time.perf_counter()
        checks[name]()
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        checks[name]()
        second = time.perf_counter() - t0
        row = dict(env, model=args.model, method=name, batch=args.batch, n=args.n, length=args.length,
                   beats_per_s=args.n / second, seconds=second, compile_s=max(first - second, 0.0))
        C.log(f"{name:36s} {row['beats_per_s']:9.1f} beats/s ({second:.2f} s for {args.n} beats; compile {row['compile_s']:.1f} s)")
        rows.append(row)
    C.append_jsonl(args.out, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
