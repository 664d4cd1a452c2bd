"""ecgjax against TensorFlow and PyTorch on this CPU, in one invocation, same models and weights.

Tasks (``--tasks``; default all four, the targets of docs/reference/performance.md):

* ``ribeiro_cnn:saliency``: gradient of the target logit w.r.t. the input, eval
  mode, 256 beats per call. Peers: TF graph mode (``tf.function`` +
  GradientTape) and PyTorch ``autograd.grad``.
* ``jones2020_lstm:saliency``: the same for the LSTM, 64 beats per call.
* ``ribeiro_cnn:train``, ``jones2020_cnn:train``: one Adam step on cross-entropy,
  train mode, batch 128. Peers: Keras ``train_on_batch`` (and PyTorch for ribeiro).

ecgjax runs in this process (the library's ``saliency`` method; the training
step of ``train_throughput.py``); each peer runs in a subprocess with its own
virtual environment (``--tf-python``/``$ECGJAX_TF_PYTHON``,
``--torch-python``/``$ECGJAX_TORCH_PYTHON``; a missing interpreter is skipped
with a note). The peers' seeded weights (``benchmarks/peers/spec.py``) are
loaded into ecgjax too, and every framework's logits on 4 fixed beats are
compared (``check_max_rel_diff``). Each measurement: warm-up call(s), then the
median of ``--repeats`` (>= 5) timed calls with min and max. The tasks run one
after another, ecgjax, its peers, then ecgjax again (its median is over both
sets of calls, which bracket the peers in time, so a falling or rising load
does not favour one side), so a ratio compares neighbours in time.

One JSON line per (model, task, framework) is appended to ``--out``:
``beats_per_s`` (median, min, max), ``ratio_to_best_peer``,
``fraction_of_matmul_limit`` (FLOP/s achieved, counted as 2x forward for
saliency and 3x for training, over the best 2048^3 float32 matmul measured by
jax in this invocation), device, versions, command, the conv impl, the load
average at the start and end of the measurement. The machine may be shared:
``--wait-load 2.5`` waits (up to ``--wait-max-s``) for a quieter moment first
and the load is recorded either way.

  python benchmarks/cpu_vs_peers.py --label baseline --out benchmarks/results/cpu_vs_peers.jsonl
  python benchmarks/cpu_vs_peers.py --tasks jones2020_lstm:saliency --repeats 7 --out /tmp/lstm.jsonl
  python benchmarks/cpu_vs_peers.py --table benchmarks/results/cpu_vs_peers.jsonl   # the Markdown table
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as C

PEERS_DIR = Path(__file__).resolve().parent / "peers"
sys.path.insert(0, str(PEERS_DIR))
import spec as S  # noqa: E402

TASKS = ("ribeiro_cnn:saliency", "jones2020_lstm:saliency", "ribeiro_cnn:train", "jones2020_cnn:train")
BATCH = {"ribeiro_cnn:saliency": 256, "jones2020_lstm:saliency": 64, "train": 128}
PEERS = {"tensorflow": ("tf", "peer_tf.py", {"ribeiro_cnn:saliency", "jones2020_lstm:saliency", "ribeiro_cnn:train", "jones2020_cnn:train"}),
         "pytorch": ("torch", "peer_torch.py", {"ribeiro_cnn:saliency", "jones2020_lstm:saliency", "ribeiro_cnn:train"})}
DEFAULT_PYTHON = {"tf": "/work/peers/.venv-tf/bin/python", "torch": "/work/peers/.venv-torch/bin/python"}
# Forward FLOP per beat (2 per multiply-add, convolutions, LSTM and dense layers):
# ribeiro and the LSTM from performance.md; jones2020_cnn summed over its 11
# convolutions and the dense layer (XLA's cost analysis gives 708.1 MFLOP too).
FWD_FLOPS = {"ribeiro_cnn": 753e6, "jones2020_lstm": 28.6e6, "jones2020_cnn": 708e6}
FLOP_FACTOR = {"saliency": 2, "train": 3}


def task_batch(task: str) -> int:
    return BATCH.get(task, BATCH["train"] if task.endswith(":train") else 256)


def load1() -> float:
    return os.getloadavg()[0]


def wait_for_quiet(threshold: float | None, max_s: float) -> dict:
    """Poll the 1-minute load average until it is below ``threshold`` (or ``max_s`` passed)."""
    t0 = time.time()
    while threshold is not None and load1() >= threshold and time.time() - t0 < max_s:
        time.sleep(15)
    return {"waited_s": round(time.time() - t0), "wait_load_threshold": threshold}


# ------------------------------------------------------------------ ecgjax
def ecgjax_model(name: str, peer_weights: bool):
    """The ecgjax model for a task, with the peers' weights where they exist."""
    import jax.numpy as jnp
    from flax import nnx

    from ecgjax import models
    from ecgjax.timebase import MITBIH_FS

    m = models.build(name, n_classes=S.N_CLASSES, in_shape=(S.SEQ_LEN // 2, 2), fs=MITBIH_FS, rngs=nnx.Rngs(0))
    if not peer_weights or name == "jones2020_cnn":
        return m

    def put(p, a):
        p[...] = jnp.asarray(a).reshape(p[...].shape)

    def put_bn(bn, d):
        put(bn.mean, d["mean"])
        put(bn.var, d["var"])
        if "gamma" in d:
            put(bn.scale, d["gamma"])
            put(bn.bias, d["beta"])

    if name == "ribeiro_cnn":
        w = S.make_cnn_weights()
        put(m.stem.kernel, w["conv0"])
        put_bn(m.bn0, w["bn0"])
        for u, b in zip(m.units, w["blocks"]):
            put(u.skip_conv.kernel, b["skip"])
            put(u.conv1.kernel, b["conv1"])
            put(u.conv2.kernel, b["conv2"])
            put_bn(u.bn1, b["bn1"])
            put_bn(u.bn_out, b["bn2"])
        put(m.dense.kernel, w["dense_w"])
        put(m.dense.bias, w["dense_b"])
    else:
        w = S.make_lstm_weights()
        put(m.lstm.w_in, w["kernel"])
        put(m.lstm.w_rec, w["recurrent"])
        put(m.lstm.bias, w["bias"])
        put(m.dense.kernel, w["d1_w"])
        put(m.dense.bias, w["d1_b"])
        put(m.out.kernel, w["d2_w"])
        put(m.out.bias, w["d2_b"])
    return m


def to_ecgjax(x):
    """Peer beats f32[B, 860, 1] (lead 1 then lead 2) -> ecgjax's f32[B, 430, 2]."""
    import numpy as np

    return np.ascontiguousarray(x[:, :, 0].reshape(x.shape[0], 2, -1).transpose(0, 2, 1))


def ecgjax_check() -> dict:
    """ecgjax's logits on the fixed check beats, per model."""
    import numpy as np

    from ecgjax import models

    xc, _ = S.make_beats(**S.CHECK_BEATS)
    out = {}
    for name in ("ribeiro_cnn", "jones2020_lstm"):
        gd, st = models.eval_split(ecgjax_model(name, True))
        out[name] = np.asarray(models.pure_fns(gd, st).logit_fn(to_ecgjax(xc)))
    return out


def ecgjax_measure(task: str, repeats: int, warmup: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from ecgjax import attribution, models
    from train_throughput import make_step

    name, kind = task.split(":")
    b = task_batch(task)
    if kind == "saliency":
        x, t = S.make_beats(b)
        x, t = jnp.asarray(to_ecgjax(x)), jnp.asarray(t)
        gd, st = models.eval_split(ecgjax_model(name, True))
        method = attribution.get("saliency")
        fn = jax.jit(lambda st, x, t: method(models.pure_fns(gd, st), x, t, None))
        t0 = time.perf_counter()
        compiled = fn.lower(st, x, t).compile()
        compile_s = time.perf_counter() - t0

        def call():
            return compiled(st, x, t)

        label = "ecgjax saliency (one VJP, one-hot cotangent)"
    else:
        x, y = S.make_beats(b, seed=5)
        x, y = jnp.asarray(to_ecgjax(x)), jnp.asarray(y)
        model = ecgjax_model(name, False)
        gd, st = nnx.split((model, nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)))
        t0 = time.perf_counter()
        compiled = make_step(gd).lower(st, x, y).compile()
        compile_s = time.perf_counter() - t0
        holder = {"state": st}

        def call():
            holder["state"], loss = compiled(holder["state"], x, y)
            return loss

        label = "ecgjax train step (jit, Adam, CE, state donated)"
    first0 = time.perf_counter()
    for _ in range(max(warmup, 1)):
        jax.block_until_ready(call())
    first = time.perf_counter() - first0
    secs = C.time_calls(call, repeats)
    return {"framework": "ecgjax", "method": label, "batch": b, "seconds": secs, "compile_s": compile_s, "first_call_s": first,
            "again": lambda: C.time_calls(call, repeats)}


# ------------------------------------------------------------------- peers
def run_peer(py: str, script: str, tasks: list[str], repeats: int, warmup: int) -> tuple[list[dict], str | None]:
    """Rows a peer script printed, or ([], why it was skipped)."""
    if not Path(py).exists():
        return [], f"interpreter {py} not found (create the venv, see benchmarks/README.md)"
    batches = ",".join(f"{t}={task_batch(t)}" for t in TASKS if t.endswith(":saliency"))
    cmd = [py, str(PEERS_DIR / script), "--tasks", ",".join(tasks), "--repeats", str(repeats), "--warmup", str(warmup),
           "--batches", batches, "--train-batch", str(BATCH["train"])]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=PEERS_DIR)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        return rows, f"exit {proc.returncode}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ''}"
    return rows, None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--frameworks", default="ecgjax,tensorflow,pytorch")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--tf-python", default=os.environ.get("ECGJAX_TF_PYTHON", DEFAULT_PYTHON["tf"]))
    p.add_argument("--torch-python", default=os.environ.get("ECGJAX_TORCH_PYTHON", DEFAULT_PYTHON["torch"]))
    p.add_argument("--label", default="", help="what this run measures (e.g. the change being tested); kept in every row")
    p.add_argument("--wait-load", type=float, default=None, help="wait until the 1-minute load average is below this")
    p.add_argument("--wait-max-s", type=float, default=900)
    p.add_argument("--xla-flags", default=None, help="appended to XLA_FLAGS before jax starts")
    p.add_argument("--out", help="JSON lines are appended here")
    p.add_argument("--table", nargs="+", metavar="JSONL", help="print the Markdown table of these result files and exit")
    args = p.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if not args.out:
        p.error("--out is required")
    if args.repeats < 5:
        p.error("--repeats must be >= 5 (the median of at least 5 calls)")
    C.set_xla_flags(args.xla_flags)
    waited = wait_for_quiet(args.wait_load, args.wait_max_s)
    env = C.env_record(sys.argv if argv is None else ["benchmarks/cpu_vs_peers.py", *argv])
    env.pop("load_avg_1m")
    frameworks = args.frameworks.split(",")
    load_start = load1()
    notes, checks = {}, {}
    if "ecgjax" in frameworks:
        checks["ecgjax"] = ecgjax_check()
    for fw, (key, script, _) in PEERS.items():
        if fw in frameworks:
            rows, why = run_peer(getattr(args, f"{key}_python"), script, ["check"], 5, 0)
            if why:
                notes[fw] = why
                C.log(f"{fw}: skipped: {why}")
            checks[fw] = {r["model"]: r["logits"] for r in rows}
    n_rows = 0
    for task in args.tasks.split(","):
        name, kind = task.split(":")
        results = []
        l0 = load1()
        probe0 = C.matmul_probe()
        if "ecgjax" in frameworks:
            r = ecgjax_measure(task, args.repeats, args.warmup)
            r["versions"] = {k: env[k] for k in ("jax", "jaxlib", "flax")}
            r["git_commit"] = git_commit()
            results.append(r)
        for fw, (key, script, supported) in PEERS.items():
            if fw in frameworks and fw not in notes and task in supported:
                rows, why = run_peer(getattr(args, f"{key}_python"), script, [task], args.repeats, args.warmup)
                if why:
                    C.log(f"{fw} {task}: failed: {why}")
                results += [dict(r, error=why) if why else r for r in rows] or [{"framework": fw, "error": why, "batch": task_batch(task)}]
        for r in results:  # ecgjax is timed again after its peers: the two bracket them in time
            if "again" in r:
                r["seconds_before_peers"], r["seconds_after_peers"] = r["seconds"], r.pop("again")()
                r["seconds"] = r["seconds_before_peers"] + r["seconds_after_peers"]
        l1 = load1()
        probes = [probe0, C.matmul_probe()]
        rates = {r["framework"]: statistics.median(r["batch"] / s for s in r["seconds"]) for r in results if "seconds" in r}
        peers = {f: v for f, v in rates.items() if f != "ecgjax"}
        best = max(peers, key=peers.get) if peers else None
        for r in results:
            row = {**env, **waited, "label": args.label, "model": name, "task": kind, "load_avg_start": l0, "load_avg_end": l1,
                   "load_avg_run_start": load_start, "peer_notes": notes, "fwd_flops_per_beat": FWD_FLOPS[name],
                   "flop_factor": FLOP_FACTOR[kind], "matmul_probes_gflops": probes, "matmul_limit_gflops": max(probes), **r}
            if "seconds" in r:
                row.update(C.summarize(r["batch"], r["seconds"]))
                row["best_peer"] = best
                row["ratio_to_best_peer"] = row["beats_per_s"] / peers[best] if best else None
                row["achieved_gflops"] = row["beats_per_s"] * FLOP_FACTOR[kind] * FWD_FLOPS[name] / 1e9
                row["fraction_of_matmul_limit"] = row["achieved_gflops"] / row["matmul_limit_gflops"]
            if kind == "saliency" and r["framework"] in checks and name in checks[r["framework"]] and "tensorflow" in checks:
                row["check_max_rel_diff_vs_tensorflow"] = rel_diff(checks[r["framework"]][name], checks["tensorflow"].get(name))
            C.append_jsonl(args.out, [row])
            n_rows += 1
            if "beats_per_s" in row:
                C.log(f"{task:24s} {row['framework']:10s} B={row['batch']:4d} {row['beats_per_s']:8.1f} beats/s "
                      f"[{row['beats_per_s_min']:.1f}, {row['beats_per_s_max']:.1f}] ratio {row['ratio_to_best_peer'] or 0:.2f} "
                      f"load {l0:.1f}->{l1:.1f} matmul {max(probes):.0f} GFLOP/s check {row.get('check_max_rel_diff_vs_tensorflow')}")
    C.log(f"{n_rows} rows -> {args.out}; load at the end {load1():.2f}")
    return 0


def git_commit() -> str | None:
    """The checkout's commit (with ``+dirty`` for uncommitted changes outside ``benchmarks/results/``, which a run
    appends its own rows to), so a row names the code it measured."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=C.ROOT, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results"],
                               capture_output=True, text=True, cwd=C.ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def rel_diff(a, b) -> float | None:
    import numpy as np

    if a is None or b is None:
        return None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def table(paths) -> str:
    """Markdown: one line per (label, model, task), ecgjax against its best peer, from result files."""
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    out = ["| run (label) | model | task | batch | ecgjax beats/s [min, max] | best peer | peer beats/s | ratio | ecgjax % of matmul limit | matmul limit GFLOP/s | load start -> end |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in rows:
        groups.setdefault((r["timestamp"], r.get("label", ""), r["model"], r["task"]), []).append(r)
    for (ts, label, model, task), rs in groups.items():
        e = next((r for r in rs if r["framework"] == "ecgjax" and "beats_per_s" in r), None)
        peers = [r for r in rs if r["framework"] != "ecgjax" and "beats_per_s" in r]
        best = max(peers, key=lambda r: r["beats_per_s"]) if peers else None
        cell = f"{e['beats_per_s']:.1f} [{e['beats_per_s_min']:.1f}, {e['beats_per_s_max']:.1f}]" if e else "-"
        out.append(f"| {label or '-'} ({ts[:16]}) | {model} | {task} | {rs[0]['batch']} | {cell} | "
                   f"{best['framework'] if best else '-'} | {best['beats_per_s']:.1f} | " if best else
                   f"| {label or '-'} ({ts[:16]}) | {model} | {task} | {rs[0]['batch']} | {cell} | - | - | ")
        out[-1] += (f"{e['ratio_to_best_peer']:.2f} | {100 * e['fraction_of_matmul_limit']:.0f}% | {e['matmul_limit_gflops']:.0f} | "
                    f"{e['load_avg_start']:.1f} -> {e['load_avg_end']:.1f} |" if e and best else "- | - | - | - |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
