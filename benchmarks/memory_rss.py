"""Peak host memory (max RSS) of an attribution method over a data set, through the library's runner.

A child process holds the full input f32[N, 430, 2] on the host (N = 104,000
beats: ~0.36 GB, about the size of the MIT-BIH beat set), runs
``ecgjax.attribution.attribute_dataset`` (fixed padded batches of ``--chunk``
beats, one compile, the batch shrunk to the memory budget if needed, the maps
copied back to a host array f32[N, 430, 2]) and reports ``resource.getrusage``
max RSS; the parent appends one JSON line to ``--out``. With ``--max-chunks``
only the first batches are computed (the input is still full size and touched).
``--entry attribute`` goes through ``attr.attribute(method, fns, x, target, key)`` instead (the same
batched path, at most ``--chunk`` beats a batch). The row also holds the batch the budget allowed, XLA's
bytes for its step and for one unbatched step of all N beats (``runner.plan_batch``, ``runner.step_bytes``).

  python benchmarks/memory_rss.py --model ribeiro_cnn --n-beats 104000 --chunk 256 --max-chunks 6 \\
      --out benchmarks/results/cpu_memory.jsonl
  python benchmarks/memory_rss.py --model jones2020_cnn --method integrated_gradients --hp steps=512 \\
      --n-beats 256 --chunk 256 --entry attribute --warmup --memory-budget 2G --limit-gb 64 \\
      --out benchmarks/results/cpu_memory.jsonl                                  # IG 512 steps x 256 beats
  python benchmarks/memory_rss.py --table benchmarks/results/cpu_memory.jsonl    # the IG 512-step rows, Markdown
  python benchmarks/memory_rss.py --render benchmarks/results/cpu_memory.jsonl   # ... into docs/performance.md
"""

from __future__ import annotations

import argparse
import ast
import json
import resource
import subprocess
import sys

import _common as C


def child(args) -> dict:
    import os
    import time

    import jax
    import numpy as np

    from ecgjax import attribution, models
    from ecgjax.attribution import runner
    from ecgjax.batched import parse_memory
    from saliency_throughput import build_model

    t, l = args.length, args.leads
    rng = np.random.default_rng(0)
    x_host = np.empty((args.n_beats, t, l), np.float32)
    for i in range(0, args.n_beats, 8192):  # synthetic data of the real shape, filled in pieces
        x_host[i : i + 8192] = rng.standard_normal((min(8192, args.n_beats - i), t, l), dtype=np.float32)
    target = (np.arange(args.n_beats) % 8).astype(np.int32)
    model, impl = build_model(args.model, args.conv_impl, in_shape=(t, l))
    method = attribution.get(args.method, **args.hp)
    budget = parse_memory(args.memory_budget)
    fns = models.pure_fns(*models.eval_split(model))
    n = args.n_beats
    # the batch the run will use (--chunk fitted to the budget; its step compiled here), XLA's bytes for it and for one unbatched step
    batch, batch_bytes = runner.plan_batch(fns, method, x_host, target, key=jax.random.key(0), batch_size=args.chunk, memory_budget=budget)
    resolved = method.for_model(fns.info)
    unbatched_bytes = runner.step_bytes(fns, resolved, n, (t, l), key=jax.random.key(0) if resolved.needs_key else None)
    n_chunks = -(-n // batch)
    todo = min(n_chunks, args.max_chunks) if args.max_chunks else n_chunks
    done = min(todo * batch, n)
    # all beats: the library fits the batch itself from --chunk; only the first batches: ask for the planned batch
    request = args.chunk if done == n else batch

    def run(n):
        if args.entry == "attribute":  # the documented one-call API: attr.attribute(method, fns, x, target, key)
            return attribution.attribute(method, fns, x_host[:n], target[:n], jax.random.key(0), batch_size=request,
                                         memory_budget=budget, progress=False), None
        res = attribution.attribute_dataset(models.eval_split(model), x_host[:n], target[:n], method, key=jax.random.key(0),
                                            batch_size=request, memory_budget=budget, progress=False)
        return res.maps, res.batch_size

    if args.warmup:  # the step is compiled (plan_batch); one beat through the same path starts the runtime (its thread
        # pool, allocator arenas) with a batch-1 program; then restart the high-water mark: the peak is the evaluation's own
        runner.attribute_dataset(fns, x_host[:1], target[:1], method, key=jax.random.key(0), batch_size=1, memory_budget=budget,
                                 progress=False)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    rss_before = _rss_now()
    t0 = time.perf_counter()
    maps, ran = run(done)
    secs = time.perf_counter() - t0
    peak_since = _vm_hwm() if args.warmup else None
    assert ran in (None, batch), (ran, batch)
    return {
        "model": args.model, "method": args.method, "hparams": {k: repr(v) for k, v in args.hp.items()}, "conv_impl": impl,
        "n_beats": args.n_beats, "beats_computed": done, "chunk": args.chunk, "batch_run": batch, "entry": args.entry,
        "batches_computed": todo, "batches_total": n_chunks, "in_shape": [t, l], "memory_budget": args.memory_budget,
        "memory_budget_bytes": budget, "xla_step_bytes": batch_bytes, "xla_unbatched_step_bytes": unbatched_bytes,
        "host_array_bytes": int(x_host.nbytes + maps.nbytes), "rss_before_bytes": rss_before,
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "cpus_allowed": len(os.sched_getaffinity(0)), "warmup": "compile + one beat" if args.warmup else None,
        "peak_rss_after_warmup_bytes": peak_since, "finite": bool(np.isfinite(maps).all()), "beats_per_s": done / secs, "wall_s": secs,
    }


def _rss_now() -> int:
    import os

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _vm_hwm() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))


def _hp(items):
    return {k: ast.literal_eval(v) for k, v in (it.split("=", 1) for it in items or [])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="ribeiro_cnn")
    p.add_argument("--method", default="saliency")
    p.add_argument("--hp", nargs="*", default=[], help="method hyperparameters, name=value")
    p.add_argument("--entry", default="attribute_dataset", choices=("attribute_dataset", "attribute"))
    p.add_argument("--warmup", action="store_true", help="measure the peak of the evaluation alone: after compiling its step and running one beat (Linux)")
    p.add_argument("--memory-budget", default=None, help="bytes the runner may use (4G, 30%%); default a share of the available memory")
    p.add_argument("--n-beats", type=int, default=104_000)
    p.add_argument("--chunk", type=int, default=256)
    p.add_argument("--max-chunks", type=int, default=0, help="compute only the first batches (of the batch the budget allows); 0 = all")
    p.add_argument("--conv-impl", default="auto")
    p.add_argument("--length", type=int, default=430)
    p.add_argument("--leads", type=int, default=2)
    p.add_argument("--limit-gb", type=float, default=4.0)
    p.add_argument("--quick", action="store_true", help="1,000 beats of the LSTM, chunks of 250")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--out", default=None)
    p.add_argument("--table", metavar="JSONL", help="print the Markdown table of the IG 512-step rows of this file and exit")
    p.add_argument("--render", metavar="JSONL", help="write that table into docs/performance.md (between its markers) and exit")
    args = p.parse_args(argv)
    if args.table or args.render:
        text = table(args.table or args.render)
        if args.render:
            render(text)
        else:
            print(text)
        return 0
    if args.quick:
        args.model, args.n_beats, args.chunk, args.length = "jones2020_lstm", 1000, 250, 64
    if args.child:
        args.hp = _hp(args.hp)
        print(json.dumps(child(args)))
        return 0
    if not args.out:
        p.error("--out is required")
    cmd = [sys.executable, __file__, "--child", "--model", args.model, "--n-beats", str(args.n_beats),
           "--chunk", str(args.chunk), "--max-chunks", str(args.max_chunks), "--conv-impl", args.conv_impl,
           "--length", str(args.length), "--leads", str(args.leads), "--method", args.method, "--entry", args.entry, *(["--warmup"] if args.warmup else []), "--hp", *args.hp]
    if args.memory_budget:
        cmd += ["--memory-budget", args.memory_budget]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-5000:])
        return proc.returncode
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row.update(C.env_record(sys.argv if argv is None else ["benchmarks/memory_rss.py", *argv]))
    row["under_limit"] = row["peak_rss_bytes"] < args.limit_gb * 2**30
    C.append_jsonl(args.out, [row])
    gib = lambda b: f"{b / 2**30:.2f} GiB" if b is not None else "-"  # noqa: E731
    C.log(f"{row['model']} {row['method']} {row['hparams']}: peak RSS {gib(row['peak_rss_bytes'])} for {row['n_beats']} beats "
          f"({row['beats_computed']} computed; host arrays {gib(row['host_array_bytes'])}); "
          f"batch {row['batch_run']} ({gib(row['xla_step_bytes'])} per step, unbatched {gib(row['xla_unbatched_step_bytes'])}) "
          f"under a budget of {gib(row['memory_budget_bytes'])}; after warmup {gib(row['peak_rss_after_warmup_bytes'])} "
          f"over {gib(row['rss_before_bytes'])} before; {row['wall_s']:.0f} s; limit {args.limit_gb} GB: {'OK' if row['under_limit'] else 'OVER'}")
    return 0 if row["under_limit"] else 1


DOC = C.ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- memory-ig512:begin -->", "<!-- memory-ig512:end -->"


def table(path) -> str:
    """Markdown: one line per integrated-gradients row with 512 steps (the peak-memory test's measurements)."""
    from pathlib import Path

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["method"] == "integrated_gradients" and r["hparams"].get("steps") == "512"
            and r.get("warmup") == "compile + one beat"]
    gib = lambda b: f"{b / 2**30:.2f}"  # noqa: E731
    out = [f"Generated by `python benchmarks/memory_rss.py --render {path}`; each row by the command in its `command` field "
           "(below the table). RSS before = the process after loading, compiling the step and one beat through it (its baseline); "
           "growth = peak RSS during the evaluation (`VmHWM` after a reset) minus that; allowed = budget + output maps + "
           "128 MiB (the test's slack). Unbatched = XLA's bytes for one step of all the beats at once.",
           "",
           "| model | beats computed / asked | budget GiB | batch | XLA step GiB | unbatched GiB | RSS before GiB | growth GiB "
           "| allowed GiB | growth / unbatched | wall s | beats/s | CPUs, load | jax, device | commit, UTC |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        grew = r["peak_rss_after_warmup_bytes"] - r["rss_before_bytes"]
        allowed = r["memory_budget_bytes"] + r["host_array_bytes"] + 128 * 2**20
        out.append(f"| {r['model']} | {r['beats_computed']} / {r['n_beats']} of {r['in_shape'][0]} x {r['in_shape'][1]} | "
                   f"{gib(r['memory_budget_bytes'])} | {r['batch_run']} | {gib(r['xla_step_bytes'])} | "
                   f"{gib(r['xla_unbatched_step_bytes'])} | {gib(r['rss_before_bytes'])} | **{gib(grew)}** | {gib(allowed)} | "
                   f"{grew / r['xla_unbatched_step_bytes']:.2f} | {r['wall_s']:.0f} | {r['beats_per_s']:.2f} | "
                   f"{r.get('cpus_allowed', '-')}, {r['load_avg_1m']:.1f} | {r['jax']}, {r['device_kind']}"
                   f"{', `XLA_FLAGS=' + r['xla_flags'] + '`' if r['xla_flags'] else ''} | "
                   f"{(r['git_commit'] or '-')[:8]}, {r['timestamp'][:16]} |")
    out += ["", "Commands:", "", "```bash", *dict.fromkeys(r["command"] for r in rows), "```"]
    return "\n".join(out)


def render(text: str) -> None:
    from ecgjax.errors import DataError
    from ecgjax.io import atomic_write_text, replace_section

    doc = DOC.read_text()
    try:
        atomic_write_text(DOC, replace_section(doc, BEGIN + "\n" + text + "\n" + END, BEGIN, END, where=str(DOC)))
    except DataError as e:
        raise SystemExit(f"memory_rss: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
