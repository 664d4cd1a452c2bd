"""Per-layer convolution timings for each ``Conv1d`` implementation: the evidence behind ``auto_impl``.

For every convolution shape of ``ribeiro_cnn`` and ``jones2020_cnn`` (860-sample
input), times the three implementations of ``ecgjax.models.layers.conv1d`` on
the same data, one after another per layer (so they share the machine's load):

* ``fwd``: the convolution;
* ``sal``: forward + input gradient (what saliency needs);
* ``train``: forward + input and kernel gradients (what training needs);

each as the median of ``--repeats`` calls, plain (``jit``) and, with
``--scan``, inside a rolled ``lax.scan`` of 4 chunks (how chunked attribution
methods call the model). One JSON line per (layer, impl, pass) is appended to
``--out``.

  python benchmarks/conv_layers.py --batch 64 --repeats 5 --out benchmarks/results/cpu_conv_layers.jsonl
"""

from __future__ import annotations

import argparse
import statistics
import sys

import _common as C

# (model, layer, length in, Cin, Cout, K, stride, padding) for an 860-sample beat.
LAYERS = (
    ("ribeiro_cnn", "stem", 860, 1, 64, 16, 1, "SAME"),
    ("ribeiro_cnn", "unit1.conv1", 860, 64, 128, 16, 1, "SAME"),
    ("ribeiro_cnn", "unit1.conv2", 860, 128, 128, 16, 4, "SAME"),
    ("ribeiro_cnn", "unit2.conv1", 215, 128, 196, 16, 1, "SAME"),
    ("ribeiro_cnn", "unit2.conv2", 215, 196, 196, 16, 4, "SAME"),
    ("ribeiro_cnn", "unit3.conv1", 54, 196, 256, 16, 1, "SAME"),
    ("ribeiro_cnn", "unit3.conv2", 54, 256, 256, 16, 4, "SAME"),
    ("ribeiro_cnn", "unit4.conv1", 14, 256, 320, 16, 1, "SAME"),
    ("ribeiro_cnn", "unit4.conv2", 14, 320, 320, 16, 4, "SAME"),
    ("jones2020_cnn", "conv1", 860, 1, 32, 16, 1, "VALID"),
    ("jones2020_cnn", "conv2", 845, 32, 32, 16, 1, "VALID"),
    ("jones2020_cnn", "block.conv1 (64)", 830, 32, 64, 16, 1, "SAME"),
    ("jones2020_cnn", "block.conv2 (64)", 830, 64, 32, 16, 1, "SAME"),
    ("jones2020_cnn", "block.conv1 (128)", 830, 32, 128, 16, 1, "SAME"),
    ("jones2020_cnn", "block.conv2 (128)", 830, 128, 32, 16, 1, "SAME"),
)
IMPLS = ("xla", "phase", "patches", "fft")


def programs(impl, stride, padding, scan):
    import jax
    import jax.numpy as jnp

    from ecgjax.models.layers import conv1d

    def f(x, w):
        return conv1d(x, w, stride=stride, padding=padding, impl=impl)

    def fwd(x, w):
        return f(x, w)

    def sal(x, w):
        y, vjp = jax.vjp(lambda x: f(x, w), x)
        return vjp(jnp.ones_like(y))[0]

    def train(x, w):
        y, vjp = jax.vjp(f, x, w)
        return vjp(jnp.ones_like(y))

    out = {"fwd": fwd, "sal": sal, "train": train}
    if scan:
        def in_scan(g):
            def run(x, w):
                xs = x.reshape(4, x.shape[0] // 4, *x.shape[1:])
                return jax.lax.scan(lambda c, xi: (c, g(xi, w)), None, xs)[1]
            return run
        out = {k: in_scan(g) for k, g in out.items()}
    return {k: jax.jit(g) for k, g in out.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", default="ribeiro_cnn,jones2020_cnn")
    p.add_argument("--passes", default="fwd,sal,train")
    p.add_argument("--impls", default=",".join(IMPLS))
    p.add_argument("--scan", action="store_true", help="inside a rolled lax.scan over 4 chunks of the batch")
    p.add_argument("--out")
    p.add_argument("--table", nargs="+", metavar="JSONL", help="print the Markdown table of these result files and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if not args.out:
        p.error("--out is required")
    import jax
    import jax.numpy as jnp

    from ecgjax.models.layers import auto_impl

    env = C.env_record(sys.argv if argv is None else ["benchmarks/conv_layers.py", *argv])
    for model, layer, n, cin, cout, k, s, pad in LAYERS:
        if model not in args.models.split(","):
            continue
        x = jax.random.normal(jax.random.key(0), (args.batch, n, cin), jnp.float32)
        w = jax.random.normal(jax.random.key(1), (k, cin, cout), jnp.float32) / (k * cin) ** 0.5
        flops = 2 * args.batch * (-(-n // s) if pad == "SAME" else (n - k) // s + 1) * k * cin * cout
        for pas in args.passes.split(","):
            rows = []
            for impl in args.impls.split(","):
                fn = programs(impl, s, pad, args.scan)[pas]
                jax.block_until_ready(fn(x, w))
                secs = C.time_calls(lambda: fn(x, w), args.repeats)
                ms = 1e3 * statistics.median(secs)
                rows.append(dict(env, model=model, layer=layer, length=n, cin=cin, cout=cout, kernel=k, stride=s, padding=pad,
                                 batch=args.batch, impl=impl, pass_=pas, scan=args.scan, ms_median=ms, ms_min=1e3 * min(secs),
                                 ms_max=1e3 * max(secs), fwd_gflops=flops / 1e9, auto=auto_impl(n, k, s, pad, channels=(cin, cout)),
                                 load_avg_1m=C.os.getloadavg()[0]))
            C.append_jsonl(args.out, rows)
            C.log(f"{model:14s} {layer:18s} {pas:5s} " + "  ".join(f"{r['impl']} {r['ms_median']:8.1f}" for r in rows)
                  + f"  ms (auto={rows[0]['auto']}, load {rows[0]['load_avg_1m']:.1f})")
    return 0


def table(paths) -> str:
    """Markdown: per (layer, pass, plain or in a scan, round of measurement), the median ms of each impl and the fastest.

    A round is one commit's run (rows from before ``git_commit`` was recorded: the 2026-11-28 round, when ``auto``
    picked ``patches`` in every loop body and ``phase``'s input gradient was jax's transpose rule)."""
    import json
    from pathlib import Path

    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    groups = {}
    for r in rows:
        key = (r.get("git_commit") or "")[:8] or r["timestamp"][:10]
        groups.setdefault((key, r["model"], r["layer"], r["pass_"], r["scan"], r["batch"]), {})[r["impl"]] = r
    out = ["| round | model | layer | pass | in a scan | batch | " + " | ".join(f"{i} ms" for i in IMPLS) + " | fastest | auto | load |",
           "|---|---|---|---|---|---|" + "---|" * len(IMPLS) + "---|---|---|"]
    for (key, model, layer, pas, scan, b), by in groups.items():
        best = min(by, key=lambda i: by[i]["ms_median"])
        first = next(iter(by.values()))
        auto = "patches" if scan and not first.get("git_commit") else first["auto"]
        load = statistics.median(r["load_avg_1m"] for r in by.values())
        out.append(f"| {key} | {model} | {layer} | {pas} | {'yes' if scan else 'no'} | {b} | "
                   + " | ".join(f"{by[i]['ms_median']:.0f}" if i in by else "-" for i in IMPLS) + f" | {best} | {auto} | {load:.0f} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
