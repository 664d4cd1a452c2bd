"""Wall time of the default test suite from a fresh clone, run as README says (``make test``), as JSON lines.

    python benchmarks/suite_time.py [--commit HEAD] [--repeat 2] [--target test|test-heavy] [--note "..."] \
        [--out benchmarks/results/cpu_test_suite.jsonl]

Clones this checkout at ``--commit`` into a temporary folder (tracked files only, as CI's fresh clone does),
links this checkout's ``.venv`` into it (so nothing is installed and ``make test``'s bootstrap is a check), and
runs ``make test`` there ``--repeat`` times back to back, ``ECGJAX_DATA_DIR`` passed through (``--target test-heavy``:
``make test-heavy``, the tests marked heavy, which CI runs after the default suite; the row's ``make_target``). One row per run:
wall seconds, the CPU seconds of everything it started (user, sys), pytest's summary line (passed, failed,
skipped, its own seconds), its start time, the 1-minute load average before and after, and the environment
record (its ``timestamp``: when the script started). The CPU
seconds tell a slower host from slower tests: the same tests take more CPU seconds on a host that other
machines contend for. So does ``probe_s``: the seconds of one fixed workload like the suite's (``PROBE``: tracing,
lowering and compiling 12 small jax programs as the tests do, and running them), timed just before each run
in a fresh interpreter of the same ``.venv``, and ``probe_pair_s``: the same in two interpreters at once (their mean),
as the suite's two workers load both cores: the host's speed drifts (rows of one commit in
``results/cpu_test_suite.jsonl``), so compare rows by ``wall_s / probe_pair_s`` as well. The ``jax_*`` keys
count the compiling the test processes did (``tests/conftest.py``'s ``JAX_EVENTS``: the XLA compilations, the programs
asked of the persistent cache and its hits, and the seconds of compiling (with loading from that cache), tracing and lowering; the subprocesses tests
start are not counted): the counts do not move with the host. ``jax_programs`` names the programs that took most
compiling and ``test_files`` the files that took longest (with their jax seconds): compare them between two commits'
rows to find what grew. Exit 1 when a run fails a test, 2 on bad input.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, append_jsonl, env_record

SUMMARY = re.compile(r"=+ (.*) in ([0-9.]+)s")

# The host-speed probe: the suite's kind of work (trace, lower and compile small programs with the tests' XLA flags,
# then run them), fixed, in one process. Its seconds move with the host's speed, not with the code under test.
PROBE = """
import os, time
os.environ["XLA_FLAGS"] = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
import jax, jax.numpy as jnp
jax.config.update("jax_enable_compilation_cache", False)  # compiled every time, whatever the environment says
t0 = time.perf_counter()
for k in range(12):
    def f(w, x, k=k):
        for _ in range(3 + k % 3):
            x = jnp.tanh(jax.lax.conv_general_dilated(x, w, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")))
        return (x ** 2).sum()
    g = jax.jit(jax.grad(f))
    w, x = jnp.ones((5, 8, 8)) * 0.1, jnp.ones((16, 200 + k, 8))
    for _ in range(20):
        g(w, x).block_until_ready()
print(time.perf_counter() - t0)
"""


def probe(python: Path, processes: int = 1) -> float:
    """Seconds of ``PROBE`` in ``processes`` fresh interpreters ``python`` started together (their mean): one, a core's
    worth of the suite's kind of work; two, that work on both cores at once, as ``make test``'s two workers run it
    (the host's two cores slow each other down by an amount that drifts too)."""
    procs = [subprocess.Popen([str(python), "-c", PROBE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    outs = [p.communicate() for p in procs]
    for p, (_, err) in zip(procs, outs):
        if p.returncode:
            raise subprocess.CalledProcessError(p.returncode, p.args, stderr=err)
    return round(sum(float(out.split()[-1]) for out, _ in outs) / processes, 2)


def pytest_summary(output: str) -> dict:
    """``{"passed": n, "failed": n, "skipped": n, ..., "pytest_s": s}`` from pytest's last summary line, or {}."""
    lines = [m for m in map(SUMMARY.search, output.splitlines()) if m]
    if not lines:
        return {}
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", lines[-1].group(1))}
    return {**counts, "pytest_s": float(lines[-1].group(2))}


def jax_events(folder: Path, top: int = 20) -> dict:
    """The test processes' jax compile totals (``tests/conftest.py``'s ``JAX_EVENTS``, one file per process) summed:
    ``{"jax_xla_compiles": n, "jax_compile_requests": n, "jax_cache_hits": n, "jax_backend_compile_s": s, "jax_trace_s": s,
    "jax_lower_s": s}``, with the ``top`` programs by compile seconds, ``"jax_programs": [[name, backend compiles,
    seconds], ...]``, and the ``top`` test files by wall seconds, ``"test_files": [[file, wall s, jax s], ...]``."""
    import json

    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    scalar = sorted({k for r in rows for k, v in r.items() if not isinstance(v, dict)})
    total = {k: sum(r.get(k, 0) for r in rows) for k in scalar}
    if "backend_compiles" in total:  # jax records a backend compile for a program loaded from the persistent cache too
        total["xla_compiles"] = total.pop("backend_compiles") - total.get("cache_hits", 0)
    out = {f"jax_{k}": round(v, 1) if k.endswith("_s") else int(v) for k, v in sorted(total.items())}  # counts as integers
    programs, files = {}, {}
    for r in rows:
        for table, key in ((programs, "programs"), (files, "files")):
            for name, pair in r.get(key, {}).items():
                summed = table.setdefault(name, [0, 0])
                summed[0] += pair[0]
                summed[1] += pair[1]
    if programs:
        out["jax_programs"] = [[k, n, round(s, 1)] for k, (n, s) in sorted(programs.items(), key=lambda kv: -kv[1][1])[:top]]
    if files:
        out["test_files"] = [[k, round(w, 1), round(j, 1)] for k, (w, j) in sorted(files.items(), key=lambda kv: -kv[1][0])[:top]]
    return out


def run_once(clone: Path, target: str = "test") -> dict:
    """One ``make <target>`` in ``clone``: the probe's seconds just before, wall and CPU seconds, pytest's summary, load
    before and after, exit code, and the test processes' jax compile totals (``jax_events``)."""
    probe_s, probe_pair_s = probe(clone / ".venv" / "bin" / "python"), probe(clone / ".venv" / "bin" / "python", 2)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with tempfile.TemporaryDirectory(prefix="ecgjax-suite-events-") as events:
        load0, t0 = os.getloadavg()[0], time.perf_counter()
        proc = subprocess.run(["make", target], cwd=clone, capture_output=True, text=True,
                              env={**os.environ, "ECGJAX_TEST_JAX_EVENTS": events})
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        compiled = jax_events(Path(events))
    return {"started": started, "probe_s": probe_s, "probe_pair_s": probe_pair_s, **compiled, "wall_s": round(wall, 1), "user_s": round(after.ru_utime - before.ru_utime, 1),
            "sys_s": round(after.ru_stime - before.ru_stime, 1), "load_avg_1m_before": load0,
            "load_avg_1m_after": os.getloadavg()[0], "returncode": proc.returncode, **pytest_summary(proc.stdout)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commit", default="HEAD")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--target", choices=("test", "test-heavy"), default="test",
                    help="the make target timed: the default suite, or the tests marked heavy (CI runs both)")
    ap.add_argument("--note", default="")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cpu_test_suite.jsonl"))
    args = ap.parse_args(argv)
    venv = ROOT / ".venv"
    if not (venv / "bin" / "python").exists():
        print(f"suite_time: no {venv}/bin/python; run `make test` once here first (it creates .venv)", file=sys.stderr)
        return 2
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{args.commit}^{{commit}}"], cwd=ROOT, capture_output=True, text=True)
    if sha.returncode != 0 or args.repeat < 1:
        print(f"suite_time: {args.commit!r} is not a commit of {ROOT}" if sha.returncode else
              f"suite_time: --repeat must be >= 1, got {args.repeat}", file=sys.stderr)
        return 2
    sha = sha.stdout.strip()
    env = env_record()
    failed = False
    with tempfile.TemporaryDirectory(prefix="ecgjax-suite-") as tmp:
        clone = Path(tmp) / "ecgjax"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", sha], cwd=clone, check=True)
        (clone / ".venv").symlink_to(venv)
        for i in range(args.repeat):
            row = {"benchmark": "test_suite_time", **env, "tested_commit": sha, "make_target": args.target, "run": i + 1,
                   "note": args.note, "data_dir": os.environ.get("ECGJAX_DATA_DIR"), **run_once(clone, args.target)}
            append_jsonl(args.out, [row])
            failed |= row["returncode"] != 0
            print(f"{sha[:7]} run {i + 1}: {row['wall_s']} s wall, {row['user_s']} s user, "
                  f"{row.get('passed', '?')} passed, {row.get('failed', 0)} failed, load {row['load_avg_1m_before']:.2f}, "
                  f"probe {row['probe_s']} s (pair {row['probe_pair_s']} s), {row.get('jax_xla_compiles', '?')} XLA compilations", flush=True)
            for name, n, secs in row.get("jax_programs", [])[:5]:
                print(f"  {name}: {n} compiles, {secs} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
