"""Collapse detection: a dead-ReLU collapse reproduced on a tiny run, and each rule on its own."""

import json
import logging
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import models
from ecgjax.train import collapse, train_and_evaluate

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config, with_train  # noqa: E402


def test_a_dead_relu_collapse_is_reproduced_and_detected_with_its_step(tmp_path, caplog):
    """Adam at lr 0.3 kills the tiny LSTM's Dense(32) ReLU layer within 8 steps; the run says so."""
    cfg = with_train(tiny_config(), optimizer="adam", lr=0.3, plateau_min_lr=1e-3, epochs=2)
    with caplog.at_level(logging.WARNING, logger="ecgjax.train"):
        res = train_and_evaluate(cfg, tmp_path / "run")
    c = res["collapse"]
    assert c["detected"] and c["kind"] == "dead_layer" and c["collapsed_at_end"]
    assert c["step"] == 8  # probes every log_every=4 steps: alive at step 4, dead at step 8
    assert "'dense'" in c["detail"] and "32 units" in c["detail"]
    assert f"model collapse detected at step {c['step']}" in caplog.text
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    probes = [r for r in rows if r["kind"] == "probe"]
    assert probes[0]["dead_layers"] == [] and all(p["dead_layers"] == ["dense"] for p in probes[1:])
    assert all(p["logp_spread"] < 1e-5 for p in probes[1:])  # the logits no longer depend on the beat
    assert [r["step"] for r in rows if r["kind"] == "collapse"] == [8]  # reported once, not at every probe
    assert json.loads((tmp_path / "run" / "results.json").read_text())["collapse"] == c


def test_layer_stats_counts_dead_units_and_skips_the_logits():
    model = models.build("jones2020_lstm", n_classes=3, in_shape=(16, 2), fs=360.0, rngs=nnx.Rngs(0), hidden=4)
    x = np.random.default_rng(0).standard_normal((20, 16, 2)).astype(np.float32)
    # layer_stats compiled as the training loop compiles it (make_probe: one program; op by op every primitive
    # compiles on its own); the bias edits below change values, not the graph, so it compiles once
    eval_graphdef = nnx.split(models.eval_view(model), nnx.Param, ...)[0]
    probe = collapse.make_probe(eval_graphdef)

    def layer_stats(m):
        graphdef, params, rest = nnx.split(models.eval_view(m), nnx.Param, ...)
        assert graphdef == eval_graphdef
        return probe(params, rest, x)

    s = layer_stats(model)
    assert set(s["layers"]) == {"lstm", "dense", "out"}
    assert bool(s["layers"]["out"]["is_output"]) and not bool(s["layers"]["dense"]["is_output"])
    assert int(s["layers"]["dense"]["nonpositive"]) < 32
    # 12 of the 32 Dense units pushed far below zero: exactly those 12 are dead
    bias = np.array(model.dense.bias[...])
    bias[:12] = -1e3
    model.dense.bias[...] = jnp.asarray(bias)
    s = layer_stats(model)
    assert int(s["layers"]["dense"]["nonpositive"]) == 12 and int(s["layers"]["dense"]["units"]) == 32
    leads_concatenated = np.transpose(x, (0, 2, 1)).reshape(20, 32, 1)
    h = np.asarray(nnx.jit(lambda lstm, v: lstm(v, return_sequence=False))(model.lstm, leads_concatenated))
    np.testing.assert_allclose(float(s["layers"]["lstm"]["spread"]), h.std(0).mean() / np.sqrt((h**2).mean()), rtol=1e-4)
    model.dense.bias[...] = jnp.asarray(np.full(32, -1e3, np.float32))
    s = layer_stats(model)
    assert int(s["layers"]["dense"]["nonpositive"]) == 32 and float(s["logp_spread"]) < 1e-5
    assert int(s["n_predicted"]) == 1


def _stats(spread, layers=None):
    layers = layers or {"lstm": (64, 0, 0.5)}
    return {"logp_spread": spread, "n_predicted": 3,
            "layers": {k: {"units": u, "nonpositive": d, "spread": r, "is_output": False} for k, (u, d, r) in layers.items()}}


def test_constant_output_counts_only_after_the_model_has_learned():
    m = collapse.Monitor()
    assert [r["kind"] for r in m.probe(10, _stats(1e-3))] == ["probe"]  # flat from the start: not yet learned
    assert [r["kind"] for r in m.probe(20, _stats(0.8, {"lstm": (64, 0, 0.5)}))] == ["probe"]
    out = m.probe(30, _stats(2e-3, {"lstm": (64, 0, 0.07)}))
    assert [r["kind"] for r in out] == ["probe", "collapse"]
    assert out[1]["reason"] == "constant_output" and out[1]["step"] == 30
    assert "0.8 at step 20" in out[1]["detail"] and "'lstm' (0.5 -> 0.07)" in out[1]["detail"]
    assert [r["kind"] for r in m.probe(40, _stats(1e-3))] == ["probe"]  # still collapsed: not reported again
    assert m.summary()["step"] == 30 and m.summary()["collapsed_at_end"]
    m.probe(50, _stats(0.9))
    assert not m.summary()["collapsed_at_end"] and m.summary()["step"] == 30


def test_a_twentyfold_drop_of_the_spread_is_a_collapse():
    """As the faithful LSTM's seed 1 at step 500: 1.6 nats -> 0.043 nats (threshold 1.6 / 20 = 0.08)."""
    m = collapse.Monitor()
    m.probe(475, _stats(1.6))
    assert [r["kind"] for r in m.probe(490, _stats(0.2))] == ["probe"]  # an 8x dip is not a collapse
    out = m.probe(500, _stats(0.043))
    assert out[-1]["kind"] == "collapse" and out[-1]["reason"] == "constant_output"


def test_one_class_with_flat_loss_on_evaluation():
    m = collapse.Monitor()
    varied = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 0.0], [0.0, 3.0, 1.0]])  # class 1 everywhere, logits vary
    assert m.evaluation(100, varied, loss=1.2) == []  # no previous loss to call it flat
    out = m.evaluation(200, varied, loss=1.2004)
    assert [r["reason"] for r in out] == ["one_class"] and "class index 1 predicted for all 3 validation beats" in out[0]["detail"]
    m2 = collapse.Monitor()
    assert m2.evaluation(100, np.tile([0.0, 1.0, 0.0], (5, 1)), loss=1.2)[0]["reason"] == "one_class"  # constant logits
    assert collapse.Monitor().evaluation(100, np.array([[0.0, 1.0], [1.0, 0.0]]), loss=1.0) == []


def test_monitor_history_survives_a_resume():
    m = collapse.Monitor()
    rows = m.probe(10, _stats(0.8)) + m.probe(20, _stats(1e-3)) + [{"kind": "epoch", "step": 25, "val_loss": 1.5}]
    again = collapse.Monitor(rows)
    assert again.summary() == m.summary() and again.prev_eval_loss == 1.5
    assert [r["kind"] for r in again.probe(30, _stats(1e-3))] == ["probe"]  # the same collapse, not a new one
    fresh = collapse.Monitor(rows[:1])
    assert [r["reason"] for r in fresh.probe(20, _stats(1e-3)) if r["kind"] == "collapse"] == ["constant_output"]


@pytest.mark.parametrize("n", [5, 256])
def test_probe_indices_are_class_balanced_and_fixed(n):
    y = np.array([0] * 100 + [1] * 10 + [2] * 3)
    idx = np.arange(len(y))
    a = collapse.probe_indices(y, idx, n=n)
    assert np.array_equal(a, collapse.probe_indices(y, idx, n=n)) and len(set(a.tolist())) == len(a)
    counts = np.bincount(y[a], minlength=3)
    assert len(a) == min(n, len(y)) and (counts[2] == 3 if n == 256 else counts.max() - counts.min() <= 1)
