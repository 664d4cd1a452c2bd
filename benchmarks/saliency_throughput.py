"""Saliency throughput: beats/s for a grid of method x model x batch size.

Each cell builds the model (random weights: speed does not depend on them),
takes its eval view, jit-compiles ``method(fns, x, target)`` ahead of time
(compile time reported apart), then times ``--repeats`` calls on a fixed
device-resident batch. One JSON line per cell is appended to ``--out``:
``model, method, batch, beats_per_s`` (median) with ``_min``/``_max``,
``compile_s``, ``device``, ``device_kind``, versions, the command, the
timestamp, the conv impl, the precision, FLOP/s achieved and, where a peak is
known (GPU table or ``--peak-tflops``), the share of it. This is ``--path
kernel`` (the default): the method's compiled program alone, no host transfers.

``--path library`` times what a user's call costs instead: each repeat is one
``ecgjax.attribution.attribute_dataset`` call (``ecgjax.batched.map_batches``:
padded batches of ``--batch``, shrunk to the memory budget if needed, keys per
beat, maps copied back to the host) over ``LIBRARY_BATCHES x batch`` host
beats; ``compile_s`` is the first call's time, ``batch_run`` the batch that ran.
Registered methods only.

Methods: ``saliency`` (one VJP of the batched logits with a one-hot
cotangent), ``vmap_grad`` (``vmap(grad(one beat's logit))``, the
reference), and any other name registered in ``ecgjax.attribution`` when that
package exists (it is used for ``saliency`` too, if present), at its default
hyperparameters (``expected_gradients``: 16 samples per beat; ``kernel_shap``:
512 coalitions per beat over 48 segment x lead features).

  python benchmarks/saliency_throughput.py --quick --out /tmp/q.jsonl        # seconds; in the tests
  python benchmarks/saliency_throughput.py --models ribeiro_cnn --batches 256 --repeats 7 \\
      --out benchmarks/results/cpu_saliency.jsonl                              # CPU reference cell
  python benchmarks/saliency_throughput.py --out gpu.jsonl                      # GPU: default grid 256..16384
  python benchmarks/saliency_throughput.py --models jones2020_cnn --methods expected_gradients,kernel_shap \\
      --batches 64 --repeats 3 --out benchmarks/results/cpu_shapley.jsonl       # the Shapley methods' CPU rows
  python benchmarks/saliency_throughput.py --render benchmarks/results/cpu_methods.jsonl,benchmarks/results/cpu_shapley.jsonl
      # the table of every attribution method's rows (latest per cell) into docs/performance.md, between its markers
"""

from __future__ import annotations

import argparse
import ast
import json
import sys

import _common as C

DEFAULT_MODELS = ("ribeiro_cnn", "jones2020_cnn", "jones2020_lstm")
CPU_BATCHES = (64, 256)
GPU_BATCHES = (256, 1024, 4096, 16384)
LIBRARY_BATCHES = 4  # batches per library call: the host copies overlap the next batch's dispatch


# ---------------------------------------------------------------- methods
def _local_saliency(fns, x, target):
    """d logit[i, target[i]] / d x[i] for every row: one VJP with a one-hot cotangent."""
    import jax

    y, vjp = jax.vjp(fns.logit_fn, x)
    return vjp(jax.nn.one_hot(target, y.shape[-1], dtype=y.dtype))[0]


def _local_vmap_grad(fns, x, target):
    """The reference: vmap over beats of grad of one beat's target logit."""
    import jax

    def one(xi, ti):
        return fns.logit_fn(xi[None])[0, ti]

    return jax.vmap(jax.grad(one))(x, target)


LOCAL_METHODS = {"saliency": _local_saliency, "vmap_grad": _local_vmap_grad}


# In --quick mode, smaller budgets so the smoke test stays seconds.
QUICK_HPARAMS = {"kernel_shap": {"n_evals": 96, "chunk_size": 48}, "expected_gradients": {"n": 4, "chunk_size": 2}}


def get_method(name: str, quick: bool = False, hparams: dict | None = None):
    """``fn(fns, x, target) -> f32[B, T, L]``; from ``ecgjax.attribution`` when available.

    Methods with ``needs_r`` get R at the middle of each window (``T // 2``): the
    cost of KernelSHAP does not depend on where R is, only on its budget.
    """
    if name == "vmap_grad":
        return LOCAL_METHODS[name], "local"
    attribution = C.import_in_tree("ecgjax.attribution")  # optional; may not exist in this tree yet
    if attribution is not None and hasattr(attribution, "get"):
        try:
            m = attribution.get(name, **(QUICK_HPARAMS.get(name, {}) if quick else {}), **(hparams or {}))
        except Exception:  # noqa: BLE001 - unknown name in the registry
            m = None
        if m is not None:
            import jax
            import jax.numpy as jnp

            from ecgjax.attribution.base import row_keys

            key = jax.random.key(0)

            def call(fns, x, t):
                # Methods that draw noise take one key per beat (as the library's runner passes them).
                keys = row_keys(key, x.shape[0]) if m.needs_key else None
                if m.needs_r:
                    return m(fns, x, t, keys, r=jnp.full((x.shape[0],), x.shape[1] // 2, jnp.int32))
                return m(fns, x, t, keys)

            # Forward + backward passes per beat: IG's steps, SmoothGrad's samples, else one (for the FLOP count).
            call.passes = getattr(m, "steps", None) or getattr(m, "n", None) or 1
            return call, "ecgjax.attribution"
    if name in LOCAL_METHODS:
        return LOCAL_METHODS[name], "local"
    raise SystemExit(f"unknown method {name!r}; local: {sorted(LOCAL_METHODS)}")


# ---------------------------------------------------------------- models
def build_model(name: str, conv_impl: str, n_classes: int = 8, in_shape=(430, 2), **extra):
    """A model for synthetic MIT-BIH-shaped beats (360 Hz)."""
    from flax import nnx

    from ecgjax import models
    from ecgjax.errors import ConfigError
    from ecgjax.timebase import MITBIH_FS

    try:
        return models.build(name, n_classes=n_classes, in_shape=in_shape, fs=MITBIH_FS, rngs=nnx.Rngs(0), conv_impl=conv_impl, **extra), conv_impl
    except ConfigError:  # models without convolutions (the LSTM)
        return models.build(name, n_classes=n_classes, in_shape=in_shape, fs=MITBIH_FS, rngs=nnx.Rngs(0), **extra), None


def forward_flops_per_beat(graphdef, state, x) -> float | None:
    """XLA's FLOP count of the eval forward pass, per beat."""
    import jax

    from ecgjax import models

    f = jax.jit(lambda s, x: models.pure_fns(graphdef, s).logit_fn(x))
    return (lambda v: v / x.shape[0] if v else None)(C.cost_flops(f.lower(state, x).compile()))


def run_library_cell(model_name, method_name, batch, args, env):
    """One repeat = ``attribute_dataset`` over ``LIBRARY_BATCHES x batch`` host beats (see the module docstring)."""
    import jax
    import numpy as np

    from ecgjax import models

    attribution = C.import_in_tree("ecgjax.attribution")
    if attribution is None or method_name not in attribution.available():
        raise SystemExit(f"--path library needs a method registered in ecgjax.attribution, not {method_name!r}")
    m = attribution.get(method_name, **(QUICK_HPARAMS.get(method_name, {}) if args.quick else {}), **args.hp)
    model, impl = build_model(model_name, args.conv_impl, in_shape=(args.length, args.leads))
    gs = models.eval_split(model)
    n = LIBRARY_BATCHES * batch
    x = np.asarray(jax.random.normal(jax.random.key(1), (n, args.length, args.leads)))
    target = np.arange(n, dtype=np.int32) % 8
    r = np.full(n, args.length // 2, np.int32)

    def call():
        return attribution.attribute_dataset(gs, x, target, m, key=jax.random.key(0), r=r, batch_size=batch, progress=False)

    row = dict(env, model=model_name, method=method_name, method_source="ecgjax.attribution", path="library", batch=batch,
               n_beats_per_call=n, conv_impl=impl, precision=args.precision, dtype="float32", in_shape=[args.length, args.leads],
               hparams={k: repr(v) for k, v in args.hp.items()})
    with jax.default_matmul_precision(C.matmul_precision(args.precision)):
        t0 = C.time.perf_counter()
        first = call()
        row["compile_s"] = C.time.perf_counter() - t0
        assert np.isfinite(first.maps).all(), "maps are not finite"
        row["batch_run"] = first.batch_size
        for _ in range(args.warmup):
            call()
        secs = C.time_calls(lambda: call().maps, args.repeats)
    row.update(C.summarize(n, secs))
    return row


def run_cell(model_name, method_name, batch, args, env, probe_gflops):
    import jax
    import jax.numpy as jnp

    from ecgjax import models

    if args.path == "library":
        return run_library_cell(model_name, method_name, batch, args, env)

    model, impl = build_model(model_name, args.conv_impl, in_shape=(args.length, args.leads))
    graphdef, state = models.eval_split(model)
    n_classes = 8
    x = jax.random.normal(jax.random.key(1), (batch, args.length, args.leads), jnp.float32)
    target = jnp.arange(batch, dtype=jnp.int32) % n_classes
    method, source = get_method(method_name, quick=args.quick, hparams=args.hp)

    def step(state, x, target):
        return method(models.pure_fns(graphdef, state), x, target)

    row = dict(env, model=model_name, method=method_name, method_source=source, path="kernel", batch=batch,
               conv_impl=impl, precision=args.precision, dtype="float32", in_shape=[args.length, args.leads],
               hparams={k: repr(v) for k, v in args.hp.items()})
    with jax.default_matmul_precision(C.matmul_precision(args.precision)):
        t0 = C.time.perf_counter()
        lowered = jax.jit(step).lower(state, x, target)
        compiled = lowered.compile()
        row["compile_s"] = C.time.perf_counter() - t0
        fwd = forward_flops_per_beat(graphdef, state, x[: min(batch, 8)])
    prog = C.cost_flops(compiled)
    out = compiled(state, x, target)
    jax.block_until_ready(out)
    assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out))), "saliency is not finite"
    for _ in range(args.warmup):
        jax.block_until_ready(compiled(state, x, target))
    secs = C.time_calls(lambda: compiled(state, x, target), args.repeats)
    row.update(C.summarize(batch, secs))
    nominal = C.NOMINAL_FWD_FLOPS.get(model_name) if (args.length, args.leads) == (430, 2) else None
    row["fwd_flops_per_beat_xla"] = fwd
    row["fwd_flops_per_beat_nominal"] = nominal
    row["program_flops_per_beat_xla"] = prog / batch if prog else None
    fwd_used = nominal or fwd
    if fwd_used:
        passes = getattr(method, "passes", 1)
        row["gradient_passes"] = passes
        row["achieved_tflops"] = row["beats_per_s"] * 2 * passes * fwd_used / 1e12  # one gradient ~ 2x forward
        peak = C.peak_tflops(env["device_kind"], args.precision, args.peak_tflops)
        row["peak_tflops"] = peak
        row["share_of_peak"] = row["achieved_tflops"] / peak if peak else None
    row["matmul_probe_gflops"] = probe_gflops
    if probe_gflops and fwd_used:
        row["share_of_matmul_probe"] = row["achieved_tflops"] * 1e3 / probe_gflops
    return row


# ---------------------------------------------------------------- the methods table (docs/performance.md)
DOC = C.ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- method-throughput:begin -->", "<!-- method-throughput:end -->"
# The methods of issue 17 (each must have a row); saliency is the yardstick measured beside them.
ISSUE17_METHODS = ("expected_gradients", "deeplift", "kernel_shap", "lrp", "guided_backprop")


def _settings(r) -> str:
    hp = r.get("hparams") or {}
    return ", ".join(f"{k}={v}" for k, v in sorted(hp.items())) or "defaults"


def methods_table(paths) -> str:
    """Markdown: the latest row per (model, method, settings, batch, path) of registered methods in ``paths``."""
    from pathlib import Path

    latest = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("method_source") != "ecgjax.attribution" or "error" in r:
                continue
            key = (r["model"], r["method"], _settings(r), r["batch"], r.get("path", "kernel"))
            if key not in latest or r["timestamp"] > latest[key]["timestamp"]:
                latest[key] = r
    rows = sorted(latest.values(), key=lambda r: (r["model"], r["method"] != "saliency", r["method"], _settings(r), r["batch"]))
    files = ",".join(map(str, paths))
    out = [f"Generated by `python benchmarks/saliency_throughput.py --render {files}`; each row by the command in its "
           "`command` field (below the table): the method's compiled program on a device-resident batch of random beats "
           "(430 x 2, random weights: speed does not depend on them), median [min, max] over the timed calls after one "
           "warm-up call. Settings: the hyperparameters given on the command line; 'defaults' means the registry's "
           "(expected_gradients: 16 samples per beat, no background given, so from a zero reference; kernel_shap: 512 "
           "coalitions over 48 segment x lead features, zero baseline; lrp: the epsilon rule, eps 0.01, on every layer; "
           "deeplift: the rescale rule, zero baseline). Load: the 1-minute load average of the "
           "shared 2-core machine when the row was written: compare rows of similar load only.",
           "",
           "| model | method | settings | batch | beats/s [min, max] | s per call | compile s | load | jax, device | UTC |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['method']} | {_settings(r)} | {r['batch']} | **{r['beats_per_s']:.3g}** "
                   f"[{r['beats_per_s_min']:.3g}, {r['beats_per_s_max']:.3g}] | {r['seconds_per_call_median']:.3g} | "
                   f"{r['compile_s']:.1f} | {r['load_avg_1m']:.1f} | {r['jax']}, {r['device_kind']}"
                   f"{', `XLA_FLAGS=' + r['xla_flags'] + '`' if r.get('xla_flags') else ''} | {r['timestamp'][:16]} |")
    missing = [m for m in ISSUE17_METHODS if m not in {r["method"] for r in rows}]
    if missing:
        out += ["", "Not measured: " + ", ".join(missing) + "."]
    out += ["", "Commands:", "", "```bash", *dict.fromkeys(r["command"] for r in rows), "```"]
    return "\n".join(out)


def render(text: str, doc=DOC) -> None:
    """Replace the block between ``BEGIN`` and ``END`` of ``doc`` (``DataError`` when the markers are missing)."""
    from ecgjax.io import atomic_write_text, replace_section

    atomic_write_text(doc, replace_section(doc.read_text(), BEGIN + "\n" + text + "\n" + END, BEGIN, END, where=str(doc)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--methods", default="saliency,vmap_grad")
    p.add_argument("--path", default="kernel", choices=("kernel", "library"),
                   help="kernel: the compiled method on a device-resident batch; library: attribute_dataset over host beats")
    p.add_argument("--batches", default=None, help="comma list; default 64,256 on CPU, 256..16384 on GPU")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--conv-impl", default="auto", choices=["auto", "xla", "phase", "patches", "fft"])  # ecgjax.models.layers.CONV_IMPLS
    p.add_argument("--precision", default="float32", choices=["float32", "tf32"])
    p.add_argument("--peak-tflops", type=float, default=None, help="device peak for --precision (overrides the table)")
    p.add_argument("--matmul-probe", action="store_true", help="measure a 2048^3 matmul first (a yardstick on shared CPUs)")
    p.add_argument("--length", type=int, default=430)
    p.add_argument("--leads", type=int, default=2)
    p.add_argument("--hp", nargs="*", default=[], help="the method's hyperparameters, name=value (e.g. unroll=False)")
    p.add_argument("--xla-flags", default=None, help="appended to XLA_FLAGS before jax starts")
    p.add_argument("--quick", action="store_true", help="tiny grid, one repeat: a smoke test that runs in seconds")
    p.add_argument("--out", help="JSON lines are appended here")
    p.add_argument("--render", metavar="JSONL[,JSONL]", help="write the table of these files' method rows into "
                   "docs/performance.md (between its markers) and exit")
    p.add_argument("--docs", default=str(DOC), help="the page --render writes (default docs/performance.md)")
    args = p.parse_args(argv)
    if args.render:
        from pathlib import Path

        paths = [Path(f) for f in args.render.split(",")]
        for f in paths:
            if not f.is_file():
                print(f"saliency_throughput: {f} does not exist; pass the result files to --render", file=sys.stderr)
                return 2
        from ecgjax.errors import DataError

        try:
            render(methods_table(paths), Path(args.docs))
        except DataError as e:
            print(f"saliency_throughput: {e}", file=sys.stderr)
            return 2
        print(f"wrote the method-throughput table of {args.docs}")
        return 0
    if not args.out:
        p.error("--out is required (or --render)")
    args.hp = {k: ast.literal_eval(v) for k, v in (it.split("=", 1) for it in args.hp)}
    C.set_xla_flags(args.xla_flags)
    if args.quick:
        args.models = "jones2020_lstm,ribeiro_cnn" if args.models == ",".join(DEFAULT_MODELS) else args.models
        args.batches = args.batches or "2"
        args.repeats, args.warmup = 1, 0
        args.length = 64 if args.length == 430 else args.length

    env = C.env_record(sys.argv if argv is None else ["benchmarks/saliency_throughput.py", *argv])
    batches = [int(b) for b in (args.batches or ",".join(map(str, CPU_BATCHES if env["device"] == "cpu" else GPU_BATCHES))).split(",")]
    probe = C.matmul_probe() if args.matmul_probe else None
    if probe:
        C.log(f"matmul probe: {probe:.0f} GFLOP/s")
    rows = []
    for model_name in args.models.split(","):
        for method_name in args.methods.split(","):
            for b in batches:
                base = dict(env, model=model_name, method=method_name, batch=b, conv_impl=args.conv_impl, precision=args.precision)
                rows.append(C.record_cell(lambda: run_cell(model_name, method_name, b, args, env, probe), base, args.out))
    return 1 if any("error" in r for r in rows) and args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
