"""benchmarks/cpu_vs_peers.py: the peers' weights load into ecgjax exactly, a missing peer is a note, the table reads the
rows (each peer, the ratio to the issue's target peer, the verdicts from the latest quiet run), docs/performance.md holds
the rendered table."""

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


def _row(ts, label, model, task, fw, rate, lo, hi, load=(1.8, 1.9), **kw):
    return dict(timestamp=ts, label=label, model=model, task=task, framework=fw, batch=64 if "lstm" in model else 256,
                beats_per_s=rate, beats_per_s_min=lo, beats_per_s_max=hi, load_avg_start=load[0], load_avg_end=load[1],
                matmul_limit_gflops=300.0, host_cpus=2, command=f"python benchmarks/cpu_vs_peers.py --label {label}",
                versions={"jax": "0.12.1"} if fw == "ecgjax" else {fw: "9"}, **kw)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


QUIET, LOADED = "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"  # the loaded run is the later one


def _rows():
    e = dict(fraction_of_matmul_limit=0.5, git_commit="abc1234")
    return [
        # quiet: LSTM beats TF by less than PyTorch; the target is PyTorch
        _row(QUIET, "q", "jones2020_lstm", "saliency", "ecgjax", 300.0, 290.0, 310.0, **e),
        _row(QUIET, "q", "jones2020_lstm", "saliency", "tensorflow", 400.0, 390.0, 410.0),
        _row(QUIET, "q", "jones2020_lstm", "saliency", "pytorch", 250.0, 240.0, 260.0),
        # quiet: ribeiro saliency below TF (the target), above PyTorch
        _row(QUIET, "q", "ribeiro_cnn", "saliency", "ecgjax", 150.0, 140.0, 155.0, **e),
        _row(QUIET, "q", "ribeiro_cnn", "saliency", "tensorflow", 200.0, 195.0, 205.0),
        _row(QUIET, "q", "ribeiro_cnn", "saliency", "pytorch", 100.0, 95.0, 105.0),
        # loaded and later: ribeiro saliency above TF, which must not change the verdict
        _row(LOADED, "l", "ribeiro_cnn", "saliency", "ecgjax", 30.0, 20.0, 40.0, load=(12.0, 14.0), **e),
        _row(LOADED, "l", "ribeiro_cnn", "saliency", "tensorflow", 20.0, 18.0, 22.0, load=(12.0, 14.0)),
        _row(LOADED, "l", "ribeiro_cnn", "saliency", "pytorch", 2.0, 1.0, 3.0, load=(12.0, 14.0)),
        # loaded only: ribeiro training
        _row(LOADED, "l", "ribeiro_cnn", "train", "ecgjax", 9.0, 8.0, 10.0, load=(12.0, 14.0), **e),
        _row(LOADED, "l", "ribeiro_cnn", "train", "tensorflow", 12.0, 11.0, 13.0, load=(12.0, 14.0)),
    ]


def test_table_reads_rows(tmp_path):
    text = B.table([_write(tmp_path / "r.jsonl", _rows())])
    lines = text.splitlines()
    # each peer in its own column; the ratio to the target (PyTorch for the LSTM: 300/250) beside the best peer's (TF: 300/400)
    assert ("| q (2026-01-01T00:00) | jones2020_lstm | saliency | 64 | 300.0 [290.0, 310.0] | 400.0 [390.0, 410.0] | "
            "250.0 [240.0, 260.0] | 1.20 (pytorch) | 0.75 (tensorflow) | 50% | 1.8 -> 1.9 |") in lines
    assert ("| q (2026-01-01T00:00) | ribeiro_cnn | saliency | 256 | 150.0 [140.0, 155.0] | 200.0 [195.0, 205.0] | "
            "100.0 [95.0, 105.0] | 0.75 (tensorflow) | 0.75 (tensorflow) | 50% | 1.8 -> 1.9 |") in lines
    assert "| l (2026-01-02T00:00) | ribeiro_cnn | train | 256 | 9.0 [8.0, 10.0] | 12.0 [11.0, 13.0] | - | 0.75 (tensorflow) |" in text
    # the runs: their load range over all tasks, the commit, the versions
    assert "| l | 2026-01-02T00:00 | abc1234 | jax 0.12.1 | tensorflow 9 | pytorch 9 | 12.0-14.0 | 300-300 |" in lines
    # the verdicts: from the latest quiet run, per the target peer
    v = B.verdicts(B.read_rows([tmp_path / "r.jsonl"]))
    assert v["jones2020_lstm:saliency"]["met"] and v["jones2020_lstm:saliency"]["ratio"] == 300.0 / 250.0
    assert not v["ribeiro_cnn:saliency"]["met"] and v["ribeiro_cnn:saliency"]["ratio"] == 150.0 / 200.0
    assert v["ribeiro_cnn:train"]["e"] is None and v["jones2020_cnn:train"]["latest"] is None
    assert "* jones2020_lstm saliency >= PyTorch: **met**, 1.20x (ecgjax 300.0 [290.0, 310.0] vs 250.0 [240.0, 260.0] beats/s;" in text
    assert "* ribeiro_cnn saliency >= TensorFlow graph mode: **not met**, 0.75x (" in text
    assert "* ribeiro_cnn train >= Keras train_on_batch: **not measured on a quiet machine** (latest, not quiet: 0.75x at load 12.0 -> 14.0" in text
    assert "* jones2020_cnn train >= Keras train_on_batch: **not measured on a quiet machine**." in text
    short = B.short([tmp_path / "r.jsonl"])
    assert "ribeiro_cnn saliency" in short and "ribeiro_cnn train" in short and "jones2020_lstm" not in short


def test_render_writes_between_markers_and_bad_input_exits_2(tmp_path, capsys):
    rows = _write(tmp_path / "r.jsonl", _rows())
    doc = tmp_path / "doc.md"
    doc.write_text(f"top\n{B.BEGIN}\nold\n{B.END}\nmiddle\n{B.SHORT_BEGIN}\nold\n{B.SHORT_END}\nend\n")
    assert B.main(["--table", str(rows), "--render", str(doc)]) == 0
    assert doc.read_text() == (f"top\n{B.BEGIN}\n{B.table([rows])}\n{B.END}\nmiddle\n"
                               f"{B.SHORT_BEGIN}\n{B.short([rows])}\n{B.SHORT_END}\nend\n")
    capsys.readouterr()
    doc.write_text("no markers\n")
    assert B.main(["--table", str(rows), "--render", str(doc)]) == 2
    assert doc.read_text() == "no markers\n" and "cpu-vs-peers:begin" in capsys.readouterr().err
    assert B.main(["--table", str(tmp_path / "missing.jsonl")]) == 2
    assert "missing" in capsys.readouterr().err


def test_row_command_runs_as_written():
    import shlex

    import _common as C

    argv = ["benchmarks/cpu_vs_peers.py", "--label", "quiet re-measure (session 9)", "--out", "o.jsonl"]
    assert shlex.split(C.env_record(argv)["command"])[1:] == argv


def test_repo_doc_is_the_rendered_result_file():
    text = (ROOT / "docs/performance.md").read_text()
    assert text.split(B.BEGIN)[1].split(B.END)[0] == "\n" + B.table([B.RESULTS]) + "\n"
    assert text.split(B.SHORT_BEGIN)[1].split(B.SHORT_END)[0] == "\n" + B.short([B.RESULTS]) + "\n"


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
