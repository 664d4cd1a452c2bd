"""Training throughput: beats/s of one optimizer step (Adam, cross-entropy), per model and batch.

The step is a plain ``jax.jit`` over the split NNX state (``nnx.split`` once,
``nnx.merge`` inside, the state donated), so no Python graph walk per step
(flax's performance guide). The model is in training mode (dropout on,
BatchNorm on batch statistics). One JSON line per cell is appended to ``--out``
with the same fields as saliency_throughput.py (``method`` = "train_step";
FLOP/s from ~3x the forward cost).

  python benchmarks/train_throughput.py --quick --out /tmp/q.jsonl
  python benchmarks/train_throughput.py --models ribeiro_cnn --batches 128 --repeats 7 \\
      --out benchmarks/results/cpu_train.jsonl
"""

from __future__ import annotations

import argparse
import sys

import _common as C
from saliency_throughput import DEFAULT_MODELS, build_model, forward_flops_per_beat


def make_step(graphdef):
    import jax
    import optax
    from flax import nnx

    def step(state, x, y):
        model, opt = nnx.merge(graphdef, state)

        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(x), y).mean()

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return nnx.state((model, opt)), loss

    return jax.jit(step, donate_argnums=0)


def run_cell(model_name, batch, args, env, probe):
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from ecgjax import models

    model, impl = build_model(model_name, args.conv_impl, in_shape=(args.length, args.leads))
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    graphdef, state = nnx.split((model, opt))
    x = jax.random.normal(jax.random.key(1), (batch, args.length, args.leads), jnp.float32)
    y = jnp.arange(batch, dtype=jnp.int32) % 8
    step = make_step(graphdef)
    row = dict(env, model=model_name, method="train_step", optimizer="adam", batch=batch, conv_impl=impl,
               precision=args.precision, dtype="float32", in_shape=[args.length, args.leads])
    with jax.default_matmul_precision(C.matmul_precision(args.precision)):
        t0 = C.time.perf_counter()
        compiled = step.lower(state, x, y).compile()
        row["compile_s"] = C.time.perf_counter() - t0
        egd, est = models.eval_split(model)
        fwd = forward_flops_per_beat(egd, est, x[: min(batch, 8)])
    prog = C.cost_flops(compiled)
    holder = {"state": state}

    def call():
        holder["state"], loss = compiled(holder["state"], x, y)
        return loss

    loss0 = float(call())
    for _ in range(args.warmup):
        jax.block_until_ready(call())
    secs = C.time_calls(call, args.repeats)
    loss1 = float(call())
    assert jnp.isfinite(loss0) and jnp.isfinite(loss1), "training loss is not finite"
    row.update(C.summarize(batch, secs))
    row.update(loss_first=loss0, loss_last=loss1)
    nominal = C.NOMINAL_FWD_FLOPS.get(model_name) if (args.length, args.leads) == (430, 2) else None
    row.update(fwd_flops_per_beat_xla=fwd, fwd_flops_per_beat_nominal=nominal,
               program_flops_per_beat_xla=prog / batch if prog else None, matmul_probe_gflops=probe)
    fwd_used = nominal or fwd
    if fwd_used:
        row["achieved_tflops"] = row["beats_per_s"] * 3 * fwd_used / 1e12  # training ~ 3x forward
        peak = C.peak_tflops(env["device_kind"], args.precision, args.peak_tflops)
        row["peak_tflops"] = peak
        row["share_of_peak"] = row["achieved_tflops"] / peak if peak else None
        if probe:
            row["share_of_matmul_probe"] = row["achieved_tflops"] * 1e3 / probe
    return row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(DEFAULT_MODELS))
    p.add_argument("--batches", default="128", help="comma list (default 128, the reference)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--conv-impl", default="auto", choices=["auto", "xla", "phase", "patches", "fft"])  # ecgjax.models.layers.CONV_IMPLS
    p.add_argument("--precision", default="float32", choices=["float32", "tf32"])
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--matmul-probe", action="store_true")
    p.add_argument("--length", type=int, default=430)
    p.add_argument("--leads", type=int, default=2)
    p.add_argument("--xla-flags", default=None)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    C.set_xla_flags(args.xla_flags)
    if args.quick:
        args.models = "jones2020_lstm,ribeiro_cnn" if args.models == ",".join(DEFAULT_MODELS) else args.models
        args.batches, args.repeats, args.warmup = "4", 1, 0
        args.length = 64 if args.length == 430 else args.length

    env = C.env_record(sys.argv if argv is None else ["benchmarks/train_throughput.py", *argv])
    probe = C.matmul_probe() if args.matmul_probe else None
    rows = []
    for model_name in args.models.split(","):
        for b in (int(v) for v in args.batches.split(",")):
            base = dict(env, model=model_name, method="train_step", batch=b, conv_impl=args.conv_impl, precision=args.precision)
            rows.append(C.record_cell(lambda: run_cell(model_name, b, args, env, probe), base, args.out))
    return 1 if any("error" in r for r in rows) and args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
