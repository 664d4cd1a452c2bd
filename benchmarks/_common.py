"""Shared helpers for the benchmark scripts: environment record, timing, JSON lines, peaks.

Imported by the scripts in this folder (run as ``python benchmarks/<name>.py``);
it puts the checkout's root first on ``sys.path`` so that the ``ecgjax`` being
measured is the one next to this file, not an installed copy.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def append_jsonl(path, rows) -> None:
    """``ecgjax.io.append_jsonl``, imported when called (the scripts set XLA_FLAGS before anything imports jax)."""
    from ecgjax.io import append_jsonl as append

    append(path, rows)


def set_xla_flags(flags: str | None) -> None:
    """Append ``flags`` to XLA_FLAGS; must run before jax initialises its backend."""
    if flags:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flags).strip()


# Dense (non-sparse) peak TFLOP/s from the vendors' data sheets, keyed by a
# substring of ``jax.devices()[0].device_kind``. float32 = FP32 CUDA cores;
# tf32 = tensor cores with TF32 inputs. CPU peaks depend on the host: pass
# --peak-tflops, or read the in-process matmul probe (``matmul_gflops``).
PEAK_TFLOPS = {
    "H200": {"float32": 67.0, "tf32": 494.7},
    "H100 PCIe": {"float32": 51.2, "tf32": 378.0},
    "H100": {"float32": 67.0, "tf32": 494.7},  # SXM
    "A100": {"float32": 19.5, "tf32": 156.0},
    "L4": {"float32": 30.3, "tf32": 60.0},
}

# Nominal forward cost per beat (2 FLOP per multiply-add; convolutions, LSTM
# and dense layers; elementwise ops not counted), from performance.md and
# checked against XLA's cost analysis by tests/benchmarks.
NOMINAL_FWD_FLOPS = {"ribeiro_cnn": 753e6, "jones2020_lstm": 28.6e6}


def peak_tflops(device_kind: str, precision: str, override: float | None) -> float | None:
    if override:
        return float(override)
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key.lower() in device_kind.lower():
            return PEAK_TFLOPS[key]["tf32" if precision == "tf32" else "float32"]
    return None


def matmul_precision(precision: str) -> str:
    """--precision value -> ``jax.default_matmul_precision`` argument."""
    return {"float32": "float32", "tf32": "tensorfloat32"}[precision]


def env_record(argv=None) -> dict:
    import flax
    import jax
    import jaxlib

    dev = jax.devices()[0]
    return {
        "device": jax.default_backend(),
        "device_kind": dev.device_kind,
        "n_devices": jax.device_count(),
        "host_cpus": os.cpu_count(),
        "host": platform.node(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "command": shlex.join([Path(sys.executable).name] + list(sys.argv if argv is None else argv)),  # quoted: runs as written
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "git_commit": git_commit(),
    }


def git_commit(short: bool = False) -> str | None:
    """The checkout's commit (``git rev-parse HEAD``; ``short``: 7 hex digits), with "+dirty" for uncommitted changes
    to tracked files outside ``benchmarks/results/`` (which runs append their own rows to), else
    ``$ECGJAX_GIT_COMMIT`` (set by benchmarks/gpu_session.sh where the tree travels without .git), else None."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10)
        if head.returncode == 0:
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)benchmarks/results"],
                                   cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
            sha = head.stdout.strip()
            return (sha[:7] if short else sha) + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return os.environ.get("ECGJAX_GIT_COMMIT") or None


def time_calls(fn, repeats: int) -> list[float]:
    """Wall seconds of ``repeats`` calls of ``fn()`` (each blocked until ready)."""
    import jax

    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        out.append(time.perf_counter() - t0)
    return out


def summarize(items_per_call: int, seconds: list[float]) -> dict:
    rates = [items_per_call / s for s in seconds]
    return {
        "beats_per_s": statistics.median(rates),
        "beats_per_s_min": min(rates),
        "beats_per_s_max": max(rates),
        "seconds_per_call_median": statistics.median(seconds),
        "repeats": len(seconds),
    }


def matmul_probe(n: int = 2048, repeats: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n x n matmul right now (a same-process yardstick on shared CPUs)."""
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(a))
    return 2 * n**3 / min(time_calls(lambda: f(a), repeats)) / 1e9


def cost_flops(compiled) -> float | None:
    """FLOPs of a compiled program from XLA's cost analysis, or None where unavailable."""
    try:
        ca = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - backend without cost analysis
        return None
    if isinstance(ca, (list, tuple)):
        ca = ca[0] if ca else None
    if not ca:
        return None
    f = ca.get("flops")
    return float(f) if f is not None and f > 0 else None


def record_cell(run, base: dict, out) -> dict:
    """One grid cell: ``run()`` returns its row; an exception (e.g. out of memory on a
    big batch) becomes the row's ``error`` and the grid goes on. Appends the row to
    ``out``, logs it, and clears jax's caches before the next cell."""
    import jax

    try:
        row = run()
    except Exception as e:  # noqa: BLE001 - record and go on
        row = dict(base, error=f"{type(e).__name__}: {str(e)[:300]}")
        log(f"{base['model']} {base['method']} B={base['batch']}: FAILED {row['error']}")
    else:
        log(f"{row['model']:15s} {row['method']:10s} B={row['batch']:6d} {row['beats_per_s']:9.1f} beats/s "
            f"[{row['beats_per_s_min']:.1f}, {row['beats_per_s_max']:.1f}] compile {row['compile_s']:.1f}s "
            f"impl={row['conv_impl']}")
    append_jsonl(out, [row])
    jax.clear_caches()
    return row


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def import_in_tree(name: str):
    """Import ``name`` only if it lives in this checkout (an editable install elsewhere can
    otherwise supply submodules this tree does not have); None when absent."""
    import importlib

    try:
        mod = importlib.import_module(name)
    except ImportError:
        return None
    f = getattr(mod, "__file__", None) or ""
    return mod if Path(f).resolve().is_relative_to(ROOT) else None
