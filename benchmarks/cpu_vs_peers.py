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

``--table FILE...`` prints the Markdown tables of result files: the runs with
their conditions (commit, versions, load, matmul limit), then per run and task
each peer's beats/s, ecgjax's ratio to the peer issue 15 names for the task
(``TARGETS``) and to the best peer, and a verdict per target from the latest
quiet run (load at or below ``QUIET_LOAD``). ``--render DOC`` writes them, and
the list of targets not met, between their markers in DOC.

  python benchmarks/cpu_vs_peers.py --label baseline --out benchmarks/results/cpu_vs_peers.jsonl
  python benchmarks/cpu_vs_peers.py --tasks jones2020_lstm:saliency --repeats 7 --out /tmp/lstm.jsonl
  python benchmarks/cpu_vs_peers.py --table benchmarks/results/cpu_vs_peers.jsonl   # the Markdown tables
  python benchmarks/cpu_vs_peers.py --table benchmarks/results/cpu_vs_peers.jsonl --render docs/performance.md
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

from ecgjax.errors import DataError  # noqa: E402

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


def saliency_program(name: str, batch: int, hooks=None):
    """``(fn, args)``: the jitted saliency of ``name`` with the peers' weights on ``batch`` of the peers' beats, its
    model's forward passes through ``hooks`` (default: unchanged); ``fn(*args)`` gives the maps."""
    import jax
    import jax.numpy as jnp

    from ecgjax import attribution, models

    x, t = S.make_beats(batch)
    gd, st = models.eval_split(ecgjax_model(name, True))
    method = attribution.get("saliency")
    h = models.base.DEFAULT_HOOKS if hooks is None else hooks
    fn = jax.jit(lambda st, x, t: method(models.pure_fns(gd, st, h), x, t, None))
    return fn, (st, jnp.asarray(to_ecgjax(x)), jnp.asarray(t))


def ecgjax_measure(task: str, repeats: int, warmup: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from train_throughput import make_step

    name, kind = task.split(":")
    b = task_batch(task)
    if kind == "saliency":
        fn, args = saliency_program(name, b)
        t0 = time.perf_counter()
        compiled = fn.lower(*args).compile()
        compile_s = time.perf_counter() - t0

        def call():
            return compiled(*args)

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
    p.add_argument("--render", metavar="DOC", help="write the table of --table's files (default "
                   "benchmarks/results/cpu_vs_peers.jsonl) between the cpu-vs-peers markers of DOC and exit")
    args = p.parse_args(argv)
    if args.table or args.render:
        try:
            if args.render:
                render(args.table or [RESULTS], Path(args.render))
                print(f"wrote the cpu-vs-peers tables of {args.render}")
            else:
                print(table(args.table))
        except (DataError, OSError, KeyError, ValueError) as e:
            print(f"cpu_vs_peers: {type(e).__name__ + ': ' if isinstance(e, KeyError) else ''}{e}", file=sys.stderr)
            return 2
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
            r["git_commit"] = C.git_commit(short=True)
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


def rel_diff(a, b) -> float | None:
    import numpy as np

    if a is None or b is None:
        return None
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ------------------------------------------------------------ the table (docs/performance.md)
DOC = C.ROOT / "docs" / "performance.md"
RESULTS = C.ROOT / "benchmarks" / "results" / "cpu_vs_peers.jsonl"
BEGIN, END = "<!-- cpu-vs-peers:begin -->", "<!-- cpu-vs-peers:end -->"
SHORT_BEGIN, SHORT_END = "<!-- cpu-vs-peers-short:begin -->", "<!-- cpu-vs-peers-short:end -->"
# Issue 15's target per task: the peer (framework in the rows) ecgjax must reach, and its name in the verdicts.
TARGETS = {"ribeiro_cnn:saliency": ("tensorflow", "TensorFlow graph mode"),
           "jones2020_lstm:saliency": ("pytorch", "PyTorch"),
           "ribeiro_cnn:train": ("tensorflow", "Keras train_on_batch"),
           "jones2020_cnn:train": ("tensorflow", "Keras train_on_batch")}
# A run is quiet when the 1-minute load average stayed at or below this during the task: the benchmark's
# own threads on the 2-core machine, nobody else's. The verdicts read the latest quiet run only.
QUIET_LOAD = 2.5


def _shown(path) -> str:
    """``path`` as the docs quote it: relative to the repository root when inside it."""
    try:
        return str(Path(path).resolve().relative_to(C.ROOT))
    except ValueError:
        return str(path)


def read_rows(paths) -> list[dict]:
    """The rows of result files (``DataError`` naming a missing or damaged file)."""
    from ecgjax.io import read_jsonl

    return [r for p in paths for r in read_jsonl(p)]


def _groups(rows) -> dict:
    """{(timestamp, label, model, task): {framework: row}} in file order (one invocation = one timestamp)."""
    groups = {}
    for r in rows:
        groups.setdefault((r["timestamp"], r.get("label", ""), r["model"], r["task"]), {})[r["framework"]] = r
    return groups


def _rate(r) -> float | None:
    return r["beats_per_s"] if r and "beats_per_s" in r else None


def _cell(r) -> str:
    if r is None:
        return "-"
    if "beats_per_s" not in r:
        return "failed"
    return f"{r['beats_per_s']:.1f} [{r['beats_per_s_min']:.1f}, {r['beats_per_s_max']:.1f}]"


def _load(r) -> str:
    return f"{r['load_avg_start']:.1f} -> {r['load_avg_end']:.1f}"


def verdicts(rows) -> dict:
    """Per task of ``TARGETS``: the latest quiet group with ecgjax and the target peer measured, as
    {"ratio", "met", "e", "peer", "overlap"} (``None`` for ``e`` when no quiet group has them; then
    "latest" is the latest group with both, if any)."""
    out = {}
    for task, (peer, _) in TARGETS.items():
        model, kind = task.split(":")
        both = [(k, g) for k, g in _groups(rows).items() if k[2:] == (model, kind)
                and _rate(g.get("ecgjax")) and _rate(g.get(peer))]
        quiet = [(k, g) for k, g in both if max(g["ecgjax"]["load_avg_start"], g["ecgjax"]["load_avg_end"]) <= QUIET_LOAD]
        v = {"e": None, "peer": None, "latest": max(both, key=lambda kg: kg[0][0])[1] if both else None}
        if quiet:
            _, g = max(quiet, key=lambda kg: kg[0][0])
            e, p = g["ecgjax"], g[peer]
            v = {"e": e, "peer": p, "ratio": e["beats_per_s"] / p["beats_per_s"], "met": e["beats_per_s"] >= p["beats_per_s"],
                 "overlap": e["beats_per_s_min"] <= p["beats_per_s_max"] and p["beats_per_s_min"] <= e["beats_per_s_max"]}
        out[task] = v
    return out


def _verdict_line(task: str, v: dict) -> str:
    model, kind = task.split(":")
    name = TARGETS[task][1]
    if v["e"] is None:
        g = v["latest"]
        seen = (f" (latest, not quiet: {g['ecgjax']['beats_per_s'] / g[TARGETS[task][0]]['beats_per_s']:.2f}x at load "
                f"{_load(g['ecgjax'])}, {g['ecgjax']['timestamp'][:16]})") if g else ""
        return f"* {model} {kind} >= {name}: **not measured on a quiet machine**{seen}."
    e, p = v["e"], v["peer"]
    spread = "; the calls' ranges overlap" if v["overlap"] else ""
    return (f"* {model} {kind} >= {name}: **{'met' if v['met'] else 'not met'}**, {v['ratio']:.2f}x "
            f"(ecgjax {_cell(e)} vs {_cell(p)} beats/s{spread}; \"{e.get('label') or '-'}\", "
            f"{e['timestamp'][:16]}, load {_load(e)}).")


def _versions(rs, fw: str) -> str:
    vs = {", ".join(f"{k} {v}" for k, v in sorted((r.get("versions") or {}).items())) for r in rs if r["framework"] == fw}
    return "; ".join(sorted(v for v in vs if v)) or "-"


def table(paths) -> str:
    """Markdown from result files: the runs and their conditions, one line per (run, model, task) with each
    peer's beats/s, the ratio to the issue's target peer and to the best peer, then the verdicts."""
    rows = read_rows(paths)
    if not rows:
        raise DataError(f"no rows in {' '.join(map(str, paths))}")
    files = " ".join(map(_shown, paths))
    out = [f"Generated by `python benchmarks/cpu_vs_peers.py --table {files} --render docs/performance.md`; each run by "
           "the command in its rows' `command` field (below the tables). A run is one invocation: per task ecgjax, "
           "then each peer in its own process, then ecgjax again; beats/s are medians [min, max] over the timed calls "
           "(ecgjax's over both sets). TensorFlow is graph mode (`tf.function` + GradientTape) for saliency and Keras "
           "`train_on_batch` for training; PyTorch is eager. Target: the peer issue 15 names for the task "
           "(ribeiro saliency: TensorFlow graph mode; LSTM saliency: PyTorch; training: Keras `train_on_batch`). "
           "% of matmul limit: ecgjax's FLOP/s (2x forward for saliency, 3x for training) over the best 2048^3 "
           "float32 matmul jax measured before and after the task. Load: the 1-minute load average of the "
           f"{rows[0].get('host_cpus', '?')}-CPU machine at the start and end of the task (the benchmark's own threads "
           "make about 2); compare rows of similar load only.",
           "",
           "| run (label) | UTC | ecgjax commit | jax, jaxlib, flax | TensorFlow peer | PyTorch peer | load over the run | matmul limit GFLOP/s |",
           "|---|---|---|---|---|---|---|---|"]
    runs = {}
    for r in rows:
        runs.setdefault((r["timestamp"], r.get("label", "")), []).append(r)
    for (ts, label), rs in runs.items():
        loads = [x for r in rs for x in (r["load_avg_start"], r["load_avg_end"])]
        limits = [r["matmul_limit_gflops"] for r in rs]
        commits = ", ".join(dict.fromkeys(r["git_commit"] for r in rs if r["framework"] == "ecgjax" and r.get("git_commit"))) or "-"
        out.append(f"| {label or '-'} | {ts[:16]} | {commits} | {_versions(rs, 'ecgjax')} | {_versions(rs, 'tensorflow')} | "
                   f"{_versions(rs, 'pytorch')} | {min(loads):.1f}-{max(loads):.1f} | {min(limits):.0f}-{max(limits):.0f} |")
    out += ["",
            "| run (label) | model | task | batch | ecgjax beats/s [min, max] | TensorFlow beats/s | PyTorch beats/s | "
            "ecgjax / target | ecgjax / best peer | ecgjax % of matmul limit | load start -> end |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (ts, label, model, task), g in _groups(rows).items():
        e = g.get("ecgjax")
        target = TARGETS.get(f"{model}:{task}", (None, None))[0]
        peers = {f: _rate(r) for f, r in g.items() if f != "ecgjax" and _rate(r)}
        best = max(peers, key=peers.get) if peers else None
        to_target = f"{e['beats_per_s'] / peers[target]:.2f} ({target})" if _rate(e) and target in peers else "-"
        to_best = f"{e['beats_per_s'] / peers[best]:.2f} ({best})" if _rate(e) and best else "-"
        share = f"{100 * e['fraction_of_matmul_limit']:.0f}%" if _rate(e) else "-"
        out.append(f"| {label or '-'} ({ts[:16]}) | {model} | {task} | {next(iter(g.values()))['batch']} | {_cell(e)} | "
                   f"{_cell(g.get('tensorflow'))} | {_cell(g.get('pytorch'))} | {to_target} | {to_best} | {share} | "
                   f"{_load(next(iter(g.values())))} |")
    last = max(r["timestamp"] for r in rows)
    checks = {}
    for r in rows:
        if r["timestamp"] == last and r["framework"] != "tensorflow" and r.get("check_max_rel_diff_vs_tensorflow") is not None:
            checks[r["framework"]] = max(checks.get(r["framework"], 0.0), r["check_max_rel_diff_vs_tensorflow"])
    if checks:
        out += ["", f"Same function in every framework: in the latest run ({last[:16]}) the logits on the 4 check beats "
                "differ from TensorFlow's by at most " + ", ".join(f"{v:.1e} ({f})" for f, v in checks.items())
                + " relative (`check_max_rel_diff_vs_tensorflow`, saliency rows)."]
    out += ["", f"Against the targets (the latest run of each task whose load stayed at or below {QUIET_LOAD}):", ""]
    out += [_verdict_line(t, v) for t, v in verdicts(rows).items()]
    out += ["", "Commands:", "", "```bash", *dict.fromkeys(r["command"] for r in rows), "```"]
    return "\n".join(out)


def short(paths) -> str:
    """Markdown list: the targets not met (or not measured quietly), from the same verdicts."""
    lines = [_verdict_line(t, v) for t, v in verdicts(read_rows(paths)).items() if not v.get("met")]
    return "\n".join(lines) if lines else "* (every target met in the latest quiet run)"


def render(paths, doc=DOC) -> None:
    """Write :func:`table` and :func:`short` of ``paths`` between their markers in ``doc`` (one atomic write;
    ``DataError`` when a marker pair is missing)."""
    from ecgjax.io import atomic_write_text, replace_section

    text = replace_section(Path(doc).read_text(), f"{BEGIN}\n{table(paths)}\n{END}", BEGIN, END, where=str(doc))
    text = replace_section(text, f"{SHORT_BEGIN}\n{short(paths)}\n{SHORT_END}", SHORT_BEGIN, SHORT_END, where=str(doc))
    atomic_write_text(doc, text)


if __name__ == "__main__":
    sys.exit(main())
