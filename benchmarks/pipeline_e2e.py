"""End-to-end pipeline timing on N beats: saliency over all beats with the library's
runner (``ecgjax.attribution.attribute_dataset``), 0.1 s segments
(``ecgjax.analysis.segment_values``) and per-class profiles with a record
bootstrap (``ecgjax.analysis.class_profiles``).

Stages, each timed on its own (wall seconds, JSON line to ``--out``). Beats are
synthetic with the real shape (430 x 2, R at a random position, random valid
length), so the timing does not need the records.

  python benchmarks/pipeline_e2e.py --model jones2020_cnn --n-beats 104222 --chunk 4096 --out benchmarks/results/gpu_pipeline.jsonl
"""

from __future__ import annotations

import argparse
import sys
import time

import _common as C


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="jones2020_cnn")
    p.add_argument("--n-beats", type=int, default=20_000)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--conv-impl", default="auto")
    p.add_argument("--precision", default="float32", choices=["float32", "tf32"])
    p.add_argument("--n-boot", type=int, default=200, help="record-bootstrap replicates of the profiles")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.n_beats, args.chunk, args.n_boot = "jones2020_lstm", 300, 100, 10
    import jax
    import numpy as np

    from ecgjax import models
    from saliency_throughput import build_model

    env = C.env_record(sys.argv if argv is None else ["benchmarks/pipeline_e2e.py", *argv])
    from ecgjax import attribution
    from ecgjax.analysis import class_profiles, segment_values

    rng = np.random.default_rng(0)
    n = args.n_beats
    x = rng.standard_normal((n, 430, 2), dtype=np.float32)
    labels = (np.arange(n) % 8).astype(np.int32)
    record = np.array([f"r{i % 48:02d}" for i in range(n)])
    r = rng.integers(60, 200, n)
    lo, hi = np.zeros(n, np.int64), rng.integers(250, 431, n)
    model, impl = build_model(args.model, args.conv_impl)
    gs = models.eval_split(model)
    sal = attribution.get("saliency")
    stages = {}
    with jax.default_matmul_precision(C.matmul_precision(args.precision)):
        attribution.attribute_dataset(gs, x[: args.chunk], labels[: args.chunk], sal, batch_size=args.chunk)  # compile
        t0 = time.perf_counter()
        res = attribution.attribute_dataset(gs, x, labels, sal, batch_size=args.chunk)
        stages["saliency_s"] = time.perf_counter() - t0
        stages["compile_s"] = res.compile_s
    t0 = time.perf_counter()
    seg = segment_values(np.abs(res.maps), r, lo, hi, 360.0)
    stages["segments_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    class_profiles(seg.values, labels, record, idx=np.arange(n), n_boot=args.n_boot)
    stages["profiles_s"] = time.perf_counter() - t0
    total = stages["saliency_s"] + stages["segments_s"] + stages["profiles_s"]
    row = dict(env, model=args.model, method="pipeline_e2e", batch=args.chunk, n_beats=args.n_beats, conv_impl=impl,
               precision=args.precision, n_boot=args.n_boot, total_s=total, **stages, beats_per_s=n / total)
    C.append_jsonl(args.out, [row])
    C.log(f"{args.model}: {n} beats end to end in {total:.1f} s: saliency {stages['saliency_s']:.1f} s, "
          f"segments {stages['segments_s']:.1f} s, profiles ({args.n_boot} bootstrap) {stages['profiles_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
