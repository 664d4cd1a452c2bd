"""Throughput of ``attribute_dataset`` (beats/s after compile), per model and method.

    python benchmarks/attribution_runner.py --models jones2020_cnn jones2020_lstm --methods saliency --n 2048 --batch 256
    python benchmarks/attribution_runner.py --tiny        # seconds on CPU

Compile time (first batch) is reported separately; one JSON line per (model, method)
with device kind and versions (performance.md rules). Models are freshly
initialised (throughput does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import logging
import time

import jax
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["jones2020_cnn", "jones2020_lstm"])
    ap.add_argument("--methods", nargs="+", default=["saliency"])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--T", type=int, default=430)
    ap.add_argument("--tiny", action="store_true", help="T=64, n=512: a smoke run")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    if a.tiny:
        a.T, a.n = 64, 512
    from flax import nnx

    from ecgjax import attribution as attr
    from ecgjax.models import build, eval_split

    logging.basicConfig(level=logging.WARNING)
    x = np.random.default_rng(0).normal(size=(a.n, a.T, 2)).astype(np.float32)
    for name in a.models:
        g, s = eval_split(build(name, n_classes=8, in_shape=(a.T, 2), rngs=nnx.Rngs(0)))
        for meth in a.methods:
            m = attr.get(meth)
            t0 = time.perf_counter()
            attr.attribute_dataset((g, s), x[: a.batch], "pred", m, batch_size=a.batch, key=jax.random.key(0))
            compile_s = time.perf_counter() - t0
            rates = []
            for _ in range(a.repeats):
                t0 = time.perf_counter()
                attr.attribute_dataset((g, s), x, "pred", m, batch_size=a.batch, key=jax.random.key(0))
                rates.append(a.n / (time.perf_counter() - t0))
            print(json.dumps({"model": name, "method": meth, "T": a.T, "n": a.n, "batch": a.batch,
                              "beats_per_s_median": float(np.median(rates)), "min": float(min(rates)), "max": float(max(rates)),
                              "first_call_s": round(compile_s, 2), "device": jax.devices()[0].device_kind,
                              "n_devices": jax.local_device_count(), "jax": jax.__version__}), flush=True)


if __name__ == "__main__":
    main()
