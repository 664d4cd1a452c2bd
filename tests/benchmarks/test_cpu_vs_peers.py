"""benchmarks/cpu_vs_peers.py: the peers' weights load into ecgjax exactly, a missing peer is a note, the table reads the rows."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "benchmarks" / "peers")]
import cpu_vs_peers as B  # noqa: E402
import spec as S  # noqa: E402


def test_beats_map_to_ecgjax_leads():
    from ecgjax.models.base import concat_leads

    x, _ = S.make_beats(3)
    np.testing.assert_array_equal(np.asarray(concat_leads(B.to_ecgjax(x))), x)


def _lstm_reference(w, x):
    """Keras LSTM(64) -> Dense(32, ReLU) -> Dense(8) in float64 numpy; x f64[B, T, 1]."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    u = S.LSTM_UNITS
    h = c = np.zeros((x.shape[0], u))
    for t in range(x.shape[1]):
        g = x[:, t] @ w["kernel"] + h @ w["recurrent"] + w["bias"]
        c = sig(g[:, u:2 * u]) * c + sig(g[:, :u]) * np.tanh(g[:, 2 * u:3 * u])
        h = sig(g[:, 3 * u:]) * np.tanh(c)
    return np.maximum(h @ w["d1_w"] + w["d1_b"], 0) @ w["d2_w"] + w["d2_b"]


def test_peer_lstm_weights_give_the_keras_function():
    from ecgjax import models

    w = {k: v.astype(np.float64) for k, v in S.make_lstm_weights().items()}
    x, _ = S.make_beats(**S.CHECK_BEATS)
    gd, st = models.eval_split(B.ecgjax_model("jones2020_lstm", True))
    got = np.asarray(models.pure_fns(gd, st).logit_fn(B.to_ecgjax(x)))
    np.testing.assert_allclose(got, _lstm_reference(w, x.astype(np.float64)), rtol=0, atol=1e-4 * np.abs(got).max())


def test_table_reads_rows(tmp_path):
    common = dict(timestamp="2026-01-01T00:00:00+00:00", label="x", model="ribeiro_cnn", task="saliency", batch=256,
                  load_avg_start=1.0, load_avg_end=2.0, matmul_limit_gflops=400.0)
    rows = [dict(common, framework="ecgjax", beats_per_s=300.0, beats_per_s_min=290.0, beats_per_s_max=310.0, ratio_to_best_peer=1.2,
                 fraction_of_matmul_limit=0.75),
            dict(common, framework="tensorflow", beats_per_s=250.0, beats_per_s_min=240.0, beats_per_s_max=260.0),
            dict(common, framework="pytorch", beats_per_s=100.0, beats_per_s_min=90.0, beats_per_s_max=110.0)]
    p = tmp_path / "r.jsonl"
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    line = B.table([p]).splitlines()[-1]
    assert "| 300.0 [290.0, 310.0] | tensorflow | 250.0 | 1.20 | 75% | 400 | 1.0 -> 2.0 |" in line


@pytest.mark.slow  # one LSTM compile and 6 calls of 64 beats
def test_missing_peer_is_a_note(tmp_path):
    out = tmp_path / "o.jsonl"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cpu_vs_peers.py"), "--tasks", "jones2020_lstm:saliency",
                           "--frameworks", "ecgjax,tensorflow", "--tf-python", str(tmp_path / "none" / "python"), "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["framework"] == "ecgjax" and row["beats_per_s"] > 0 and row["ratio_to_best_peer"] is None
    assert "not found" in row["peer_notes"]["tensorflow"] and row["repeats"] == 10 and len(row["seconds_after_peers"]) == 5
