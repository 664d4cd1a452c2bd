"""Peak memory of integrated gradients with 512 steps stays within the memory budget, for every model.

Measured in a child process by ``benchmarks/memory_rss.py``: the step is compiled on a first chunk,
the high-water mark is restarted, then the evaluation's own peak RSS is read (Linux ``VmHWM``).
The full case (256 beats of 430 x 2) is slow on CPU; the fast variant runs the same path on a few short beats.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("jones2020_cnn", "jones2020_lstm", "ribeiro_cnn")
SLACK = 128 * 2**20  # the padded input batch, Python objects, allocator granularity


def _peak(tmp_path, model, *, n_beats, length, budget, entry, extra=()):
    out = tmp_path / "mem.jsonl"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "memory_rss.py"), "--model", model, "--method", "integrated_gradients",
           "--n-beats", str(n_beats), "--chunk", str(min(n_beats, 64)), "--length", str(length), "--entry", entry, "--warmup",
           "--memory-budget", budget, "--limit-gb", "64", "--out", str(out), *extra, "--hp", "steps=512"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["finite"] and row["beats_computed"] == n_beats
    grew = row["peak_rss_after_warmup_bytes"] - row["rss_before_bytes"]
    assert grew <= row["memory_budget_bytes"] + row["host_array_bytes"] + SLACK, row
    return row


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("model", ["jones2020_cnn", "jones2020_lstm", pytest.param("ribeiro_cnn", marks=pytest.mark.slow)])
def test_ig_512_steps_within_budget_fast(model, tmp_path):
    """The documented one-call API, ``attr.attribute(get("integrated_gradients", steps=512), fns, x, target, key)``."""
    _peak(tmp_path, model, n_beats=2, length=64, budget="256M", entry="attribute", extra=("--conv-impl", "patches"))


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("model", MODELS)
def test_ig_512_steps_on_256_beats_within_budget(model, tmp_path):
    row = _peak(tmp_path, model, n_beats=256, length=430, budget="2G", entry="attribute")
    print(f"{model}: peak {row['peak_rss_after_warmup_bytes'] / 2**30:.2f} GiB over {row['rss_before_bytes'] / 2**30:.2f} GiB "
          f"before, batch {row['batch_run']}, {row['wall_s']:.0f} s")
