"""Where one ribeiro_cnn saliency batch spends its time on this device: XLA op durations by kind (issue 15).

The compiled saliency of ``cpu_vs_peers.py`` (the peers' weights, B beats) is traced with ``jax.profiler.trace``
for ``--calls`` calls after a warm-up; every executed op's duration is summed per call, then by kind (the op's
name without its numeric suffix: ``fft``, ``ynn_fusion`` for YNNPACK matmuls, ``transpose_copy_fusion``, ...).
One JSON line (device, versions, command, the kinds in ms per call) is appended to ``--out``;
``--table`` prints the Markdown table of a results file's latest line.

  python benchmarks/profile_saliency.py --batch 256 --out benchmarks/results/cpu_saliency_profile.jsonl
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import tempfile
from pathlib import Path

import _common as C


def profile(batch: int, calls: int) -> dict[str, float]:
    """{op kind: ms per call} of the compiled saliency."""
    import jax

    import cpu_vs_peers as CV

    fn, args = CV.saliency_program("ribeiro_cnn", batch)
    fn = fn.lower(*args).compile()
    jax.block_until_ready(fn(*args))
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d):
            for _ in range(calls):
                jax.block_until_ready(fn(*args))
        events = json.load(gzip.open(next(Path(d).rglob("*.trace.json.gz"))))["traceEvents"]
    kinds = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") == "X" and "dur" in e and not name.startswith("$") and "Thunk" not in name and "PjRt" not in name:
            kinds[re.sub(r"[.\d]+$", "", name)] += e["dur"] / 1e3 / calls
    return dict(kinds.most_common())


def table(path) -> str:
    row = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()][-1]
    total = sum(row["ms_per_call"].values())
    lines = [f"ribeiro_cnn saliency, B={row['batch']}, {row['device_kind']}, jax {row['jax']}, commit {row['git_commit'][:7]}, "
             f"{row['timestamp']}, load {row['load_avg_1m']:.1f}: {total:.0f} ms of op time per call", "",
             "| op kind | ms per call | share of op time |", "|---|---|---|"]
    for kind, ms in sorted(row["ms_per_call"].items(), key=lambda kv: -kv[1]):
        if ms >= 0.01 * total:
            lines.append(f"| {kind} | {ms:.0f} | {100 * ms / total:.0f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--calls", type=int, default=2)
    ap.add_argument("--out")
    ap.add_argument("--table", metavar="JSONL", help="print the Markdown table of this file's latest line and exit")
    args = ap.parse_args(argv)
    if args.table:
        print(table(args.table))
        return 0
    if not args.out:
        ap.error("--out is required")
    row = dict(C.env_record(argv), model="ribeiro_cnn", method="saliency", batch=args.batch, calls=args.calls)
    row["ms_per_call"] = profile(args.batch, args.calls)
    C.append_jsonl(args.out, [row])
    print(table(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
