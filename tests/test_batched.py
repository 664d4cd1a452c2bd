"""ecgjax.batched: pad/shard/unpad equals one direct call, the memory budget holds, and every stage that
evaluates many beats compiles once (a second call with the same model and shapes compiles nothing)."""

from __future__ import annotations

import dataclasses
import functools
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import attribution as attr
from ecgjax import batched, models
from ecgjax.attribution import runner, sanity
from ecgjax.progress import Bar
from tests.conftest import CompileCounter, compiles

T, L, C = 64, 2, 5


@pytest.fixture(scope="module")
def cnn():
    return models.build("jones2020_cnn", n_classes=C, in_shape=(T, L), rngs=nnx.Rngs(0), fs=360.0)


@pytest.fixture(scope="module")
def beats():
    rng = np.random.default_rng(0)
    return rng.normal(size=(21, T, L)).astype(np.float32), (np.arange(21) % C).astype(np.int32)


@functools.partial(jax.jit, static_argnums=0)
def _affine(scale, w, x, y):
    return x @ w * scale + y[:, None], jnp.sum(x, axis=1)


def test_map_batches_equals_direct_call_and_pads_nothing_into_outputs():
    rng = np.random.default_rng(1)
    x, y, w = rng.normal(size=(13, 4)).astype(np.float32), rng.normal(size=13).astype(np.float32), rng.normal(size=(4, 3)).astype(np.float32)
    res = batched.map_batches(_affine, (w,), (x, y), static=(2.0,), batch_size=4, progress=False)
    a, b = res.outputs
    np.testing.assert_allclose(a, x @ w * 2.0 + y[:, None], rtol=1e-6)
    np.testing.assert_allclose(b, x.sum(1), rtol=1e-6)
    assert res.batch_size == 4 and a.shape == (13, 3)
    empty = batched.map_batches(_affine, (w,), (x[:0], y[:0]), static=(2.0,), progress=False).outputs
    assert empty[0].shape == (0, 3) and empty[1].shape == (0,)


def test_memory_budget_shrinks_the_batch_and_refuses_what_cannot_fit():
    rng = np.random.default_rng(2)
    x, y, w = rng.normal(size=(512, 256)).astype(np.float32), np.zeros(512, np.float32), rng.normal(size=(256, 256)).astype(np.float32)
    full = batched.map_batches(_affine, (w,), (x, y), static=(1.0,), batch_size=512, progress=False)
    small = batched.map_batches(_affine, (w,), (x, y), static=(1.0,), batch_size=512, memory_budget=full.step_bytes // 2, progress=False)
    assert small.batch_size < 512 and small.step_bytes * batched.STEP_MEMORY_MARGIN <= full.step_bytes // 2
    np.testing.assert_allclose(small.outputs[0], full.outputs[0], rtol=1e-5)
    with pytest.raises(batched.MemoryBudgetError, match="memory budget"):
        batched.map_batches(_affine, (w,), (x, y), static=(1.0,), memory_budget=1000, progress=False)


def test_parse_memory():
    assert batched.parse_memory("4G") == 4 * 2**30 and batched.parse_memory("512MiB") == 512 * 2**20
    assert batched.parse_memory(None) is None and batched.parse_memory(1234) == 1234
    assert (batched._gib(3 * 2**30), batched._gib(5 * 2**20), batched._gib(2048)) == ("3.00 GiB", "5.00 MiB", "2.0 KiB")
    assert 0 < batched.parse_memory("10%") < batched.available_memory()
    for bad in ("0", "lots", "120%", "-1G"):
        with pytest.raises(batched.ConfigError, match="memory budget"):
            batched.parse_memory(bad)


def test_progress_logs_rate_and_eta_and_names_the_compiling_call(caplog):
    with caplog.at_level(logging.INFO, logger="ecgjax.progress"), Bar("saliency", 100, every_s=0) as bar:
        bar.compiling()
        bar.advance(10)  # the first (compiling) batch: the rate starts after it
        bar.advance(40)
        bar.advance(50)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "compiling saliency (first call) ..."
    assert any("100/100 beats" in m and "beats/s" in m and "ETA" in m for m in lines), lines
    assert not any("0.0 beats/s" in m for m in lines)


def test_map_batches_says_compiling_only_when_it_compiles(caplog):
    step = jax.jit(lambda w, x: x @ w)  # a step no other test has compiled
    rng = np.random.default_rng(3)
    w, x = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(10, 4)).astype(np.float32)

    def said_compiling(n, batch_size=4) -> bool:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="ecgjax.progress"):
            with CompileCounter() as c:
                batched.map_batches(step, (w,), (x[:n],), batch_size=batch_size, desc="validation")
        said = any(r.getMessage() == "compiling validation (first call) ..." for r in caplog.records)
        assert said == (c.n > 0), (n, batch_size, c.n)  # the message is there exactly when XLA compiled
        return said

    assert said_compiling(10)  # the first call per shape
    assert not said_compiling(10) and not said_compiling(7)  # the same padded batch: nothing to compile
    assert said_compiling(10, batch_size=8)  # another batch shape compiles again
    assert not said_compiling(10, batch_size=8)


def test_a_later_call_reads_the_step_memory_it_recorded(monkeypatch):
    """The step's memory count is measured (lowered, compiled) once per step and shapes; a later call with the
    same batch reads it (re-lowering a large step costs ~0.1 s per call), another batch measures again."""
    step = jax.jit(lambda w, x: jnp.tanh(x @ w))  # a step no other test has compiled
    rng = np.random.default_rng(4)
    w, x = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(10, 4)).astype(np.float32)
    first = batched.map_batches(step, (w,), (x,), batch_size=4, progress=False)
    measured = []
    real = batched.compiled_bytes
    monkeypatch.setattr(batched, "compiled_bytes", lambda c: measured.append(c) or real(c))
    again = batched.map_batches(step, (w,), (x[:7],), batch_size=4, progress=False)
    assert measured == [] and again.step_bytes == first.step_bytes > 0
    np.testing.assert_array_equal(again.outputs, first.outputs[:7])
    batched.map_batches(step, (w,), (x,), batch_size=8, progress=False)
    assert len(measured) == 1


# -- compile once ----------------------------------------------------------------------


def test_runner_and_attribute_compile_once(cnn, beats):
    x, y = beats
    gs = models.eval_split(cnn)
    sal = attr.get("saliency")
    assert compiles(lambda: attr.attribute_dataset(gs, x, y, sal, batch_size=8).maps) > 0
    assert compiles(lambda: attr.attribute_dataset(models.eval_split(cnn), x, y, sal, batch_size=8).maps) == 0
    fns = models.pure_fns(*gs)
    # attribute() runs the runner's step in batches: the model's params are arguments, so another Fns of the
    # same model, or the runner called with it, reuses the program
    assert compiles(lambda: attr.attribute(sal, fns, x, y, batch_size=8)) == 0
    assert compiles(lambda: attr.attribute(sal, models.pure_fns(*models.eval_split(cnn)), x, y, batch_size=8)) == 0
    assert compiles(lambda: attr.attribute_dataset(fns, x, y, sal, batch_size=8).maps) == 0
    assert compiles(lambda: attr.attribute(sal, fns, x[:13], 1, batch_size=8)) == 0  # another N and target, the same batch
    # a hand-made Fns is a compile-time constant: the same object compiles once
    hand = dataclasses.replace(fns, source=None)
    assert compiles(lambda: attr.attribute(sal, hand, x, y)) > 0
    assert compiles(lambda: attr.attribute(sal, hand, x, y)) == 0


def test_attribute_batches_within_the_memory_budget_and_equals_one_direct_call(cnn, beats, caplog):
    x, y = beats
    fns = models.pure_fns(*models.eval_split(cnn))
    sal = attr.get("saliency")
    gd, st = models.eval_split(cnn)  # the method on all 21 beats at once, one compiled program (parameters as arguments)
    direct = np.asarray(jax.jit(lambda state, v, t: sal(models.pure_fns(gd, state), v, t, None))(st, x, y))
    budget = int(runner.step_bytes(fns, sal, 4, (T, L)) * batched.STEP_MEMORY_MARGIN)  # what a batch of 4 needs, with the margin
    with caplog.at_level(logging.INFO, logger="ecgjax.batched"):
        maps = attr.attribute(sal, fns, x, y, memory_budget=budget)
    (line,) = [r.getMessage() for r in caplog.records if "-> batch" in r.getMessage()]
    assert 1 <= int(line.split("-> batch ")[1].split()[0]) <= 4, line
    np.testing.assert_allclose(maps, direct, rtol=1e-4, atol=1e-6)
    with pytest.raises(batched.MemoryBudgetError, match="memory budget"):
        attr.attribute(sal, fns, x, y, memory_budget=1000)


def test_training_evaluation_compiles_once(cnn, beats):
    from ecgjax.config import TrainConfig
    from ecgjax.train import steps as steps_lib

    x, y = beats
    objective = steps_lib.Objective.of(TrainConfig())
    g, eg, st = steps_lib.init_state(cnn, objective)
    steps = steps_lib.Steps(g, eg, objective)
    mesh = batched.make_mesh()
    run = lambda n: steps_lib.predict(steps, st["params"], st["rest"], x[:n], y[:n], batch_size=8, mesh=mesh)[0]  # noqa: E731
    assert compiles(lambda: run(21)) > 0
    assert compiles(lambda: run(21)) == 0
    assert compiles(lambda: run(13)) == 0  # another N, the same padded batch


def test_sanity_checks_compile_once(cnn, beats):
    x, y = beats
    gs = models.eval_split(cnn)
    fresh = models.build("jones2020_cnn", n_classes=C, in_shape=(T, L), rngs=nnx.Rngs(1), fs=360.0)
    sal = attr.get("saliency")
    cascade = lambda: sanity.cascade_for_model(cnn, fresh, sal, x, y, batch_size=8).spearman_signed  # noqa: E731
    r, lo, hi = np.full(21, T // 2), np.zeros(21, int), np.full(21, T)
    faith = lambda: sanity.deletion_insertion(gs, x, y, {"s": x}, r, lo, hi, 360.0, seg_s=0.05, n_per_side=1, batch_size=8).steps  # noqa: E731
    assert compiles(cascade) > 0
    assert compiles(cascade) == 0
    assert compiles(faith) > 0
    assert compiles(faith) == 0
