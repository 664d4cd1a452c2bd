"""Peak host memory (max RSS) of saliency over a whole data set, computed in chunks.

A child process holds the full input f32[N, 430, 2] and output arrays on the
host (N = 104,000 beats: ~0.36 GB each, about the size of the MIT-BIH beat
set), runs the jitted one-hot-VJP saliency chunk by chunk (fixed chunk shape,
the last chunk padded, one compile), copies each result back to the host
array, and reports ``resource.getrusage`` max RSS; the parent appends one JSON
line to ``--out``. With ``--max-chunks`` only the first chunks are computed
(the arrays are still full size and touched): the RSS after each chunk is
recorded to show it has reached its plateau, so the peak holds for the full run.

  python benchmarks/memory_rss.py --model ribeiro_cnn --n-beats 104000 --chunk 256 --max-chunks 6 \\
      --out benchmarks/results/cpu_memory.jsonl
  python benchmarks/memory_rss.py --model jones2020_lstm --n-beats 104000 --out ...   # every chunk
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

import _common as C


def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child(args) -> dict:
    import time

    import jax
    import jax.numpy as jnp
    import numpy as np

    from ecgjax import models
    from saliency_throughput import build_model

    t, l = args.length, args.leads
    rng = np.random.default_rng(0)
    x_host = np.empty((args.n_beats, t, l), np.float32)
    for i in range(0, args.n_beats, 8192):  # synthetic data of the real shape, filled in pieces
        x_host[i : i + 8192] = rng.standard_normal((min(8192, args.n_beats - i), t, l), dtype=np.float32)
    target = (np.arange(args.n_beats) % 8).astype(np.int32)
    out_host = np.zeros_like(x_host)
    model, impl = build_model(args.model, args.conv_impl, in_shape=(t, l))
    graphdef, state = models.eval_split(model)

    @jax.jit
    def sal(state, x, tg):
        y, vjp = jax.vjp(lambda x: models.pure_fns(graphdef, state).logit_fn(x), x)
        return vjp(jax.nn.one_hot(tg, y.shape[-1], dtype=y.dtype))[0]

    n_chunks = -(-args.n_beats // args.chunk)
    todo = min(n_chunks, args.max_chunks) if args.max_chunks else n_chunks
    rss_after, t0 = [], time.perf_counter()
    for c in range(todo):
        lo, hi = c * args.chunk, min((c + 1) * args.chunk, args.n_beats)
        xb, tb = x_host[lo:hi], target[lo:hi]
        if hi - lo < args.chunk:  # pad the tail to the fixed shape
            xb = np.concatenate([xb, np.zeros((args.chunk - (hi - lo), t, l), np.float32)])
            tb = np.concatenate([tb, np.zeros(args.chunk - (hi - lo), np.int32)])
        out_host[lo:hi] = np.asarray(sal(state, jnp.asarray(xb), jnp.asarray(tb)))[: hi - lo]
        rss_after.append(_rss_now())
    secs = time.perf_counter() - t0
    done = min(todo * args.chunk, args.n_beats)
    return {
        "model": args.model, "conv_impl": impl, "n_beats": args.n_beats, "beats_computed": done,
        "chunk": args.chunk, "chunks_computed": todo, "chunks_total": n_chunks, "in_shape": [t, l],
        "host_array_bytes": int(x_host.nbytes + out_host.nbytes),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "rss_after_chunk_bytes": rss_after, "finite": bool(np.isfinite(out_host[:done]).all()),
        "beats_per_s": done / secs,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="ribeiro_cnn")
    p.add_argument("--n-beats", type=int, default=104_000)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--max-chunks", type=int, default=0, help="0 = all chunks")
    p.add_argument("--conv-impl", default="auto")
    p.add_argument("--length", type=int, default=430)
    p.add_argument("--leads", type=int, default=2)
    p.add_argument("--limit-gb", type=float, default=4.0)
    p.add_argument("--quick", action="store_true", help="1,000 beats of the LSTM, chunks of 250")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.model, args.n_beats, args.chunk, args.length = "jones2020_lstm", 1000, 250, 64
    if args.child:
        print(json.dumps(child(args)))
        return 0
    if not args.out:
        p.error("--out is required")
    cmd = [sys.executable, __file__, "--child", "--model", args.model, "--n-beats", str(args.n_beats),
           "--chunk", str(args.chunk), "--max-chunks", str(args.max_chunks), "--conv-impl", args.conv_impl,
           "--length", str(args.length), "--leads", str(args.leads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        return proc.returncode
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(C.env_record(sys.argv if argv is None else ["benchmarks/memory_rss.py", *argv]))
    row["method"] = "saliency"
    row["under_limit"] = row["peak_rss_bytes"] < args.limit_gb * 2**30
    C.append_jsonl(args.out, [row])
    C.log(f"{row['model']}: peak RSS {row['peak_rss_bytes'] / 2**30:.2f} GiB for {row['n_beats']} beats "
          f"({row['chunks_computed']}/{row['chunks_total']} chunks of {row['chunk']}; host arrays "
          f"{row['host_array_bytes'] / 2**30:.2f} GiB); limit {args.limit_gb} GB: {'OK' if row['under_limit'] else 'OVER'}")
    return 0 if row["under_limit"] else 1


if __name__ == "__main__":
    sys.exit(main())
