"""Peak memory of integrated gradients with 512 steps stays within the memory budget, for every model.

Measured in a child process by ``benchmarks/memory_rss.py``: the batch the runner will use under the
budget is fitted and its step compiled (``runner.plan_batch``), one beat runs through the same path (a
batch-1 program: it starts the runtime), the high-water mark is restarted, then the evaluation's own peak
RSS is read (Linux ``VmHWM``). The child holds the inputs, the compiled program and the started runtime
before that (``rss_before``, the process's baseline); the evaluation may
add at most the budget, the output maps and ``SLACK``. The request is unbatched (``--chunk`` = all the
beats), so the budget is what splits the work: the assertions check that XLA's estimate of the
unbatched step exceeds the budget and that the process grew far less than that estimate.
The full case (256 beats of 430 x 2) is slow on CPU; the fast variant runs the same path on a few short beats.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import users_xla_flags

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("jones2020_lstm", "jones2020_cnn", "ribeiro_cnn")  # fastest first
SLACK = 128 * 2**20  # the padded input batch, Python objects, allocator granularity


def _peak(tmp_path, model, *, n_beats, length, budget, extra=()):
    out = tmp_path / "mem.jsonl"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "memory_rss.py"), "--model", model, "--method", "integrated_gradients",
           "--n-beats", str(n_beats), "--chunk", str(n_beats), "--length", str(length), "--entry", "attribute", "--warmup",
           "--memory-budget", budget, "--limit-gb", "64", "--out", str(out), *extra, "--hp", "steps=512"]
    env = dict(os.environ, XLA_FLAGS=users_xla_flags())  # XLA's memory counts as users' programs have them
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=4 * 3600, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["finite"] and row["beats_computed"] == n_beats
    budget_b, unbatched = row["memory_budget_bytes"], row["xla_unbatched_step_bytes"]
    assert unbatched > budget_b, row  # one unbatched step would not fit: the budget has to split the work
    assert row["batch_run"] < n_beats and row["xla_step_bytes"] <= budget_b, row
    grew = row["peak_rss_after_warmup_bytes"] - row["rss_before_bytes"]
    assert grew <= budget_b + row["host_array_bytes"] + SLACK, row
    assert grew < unbatched / 2, row
    return row


# A measurement in a child process (its program compiled as users' are): with -m slow. By default the budget's rule is
# checked on XLA's counts (tests/attribution/test_runner.py::test_memory_budget_picks_batch, tests/test_batched.py).
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ig_512_steps_within_budget_fast(tmp_path):
    """The documented one-call API, ``attr.attribute(get("integrated_gradients", steps=512), fns, x, target, key)``,
    on 32 short beats of the LSTM under a budget that fits a few of them."""
    _peak(tmp_path, "jones2020_lstm", n_beats=32, length=16, budget="4M")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("model", MODELS)
def test_ig_512_steps_on_256_beats_within_budget(model, tmp_path):
    """Hours on a loaded 2-core CPU (256 x 513 gradients; jones2020_cnn's ~12 beat-path points/s there): the rows in
    docs/performance.md ("Memory of integrated gradients") say which full-size runs were measured."""
    row = _peak(tmp_path, model, n_beats=256, length=430, budget="2G")
    print(f"{model}: peak {row['peak_rss_after_warmup_bytes'] / 2**30:.2f} GiB over {row['rss_before_bytes'] / 2**30:.2f} GiB "
          f"before, batch {row['batch_run']}, {row['wall_s']:.0f} s")
