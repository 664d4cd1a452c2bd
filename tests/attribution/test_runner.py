"""The whole-dataset runner: equals a direct call, compiles once, streams per-class npz."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from ecgjax import attribution as attr
from ecgjax.attribution import runner
from ecgjax.batched import MemoryBudgetError

N = 13


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, 48, 2)).astype(np.float32)
    y = rng.integers(0, 4, N).astype(np.int32)
    return x, y


def test_runner_npz_equals_direct_call(tiny_models, data, tmp_path, caplog):
    make, p = tiny_models["cnn"]
    x, y = data
    m = attr.get("saliency")
    before = runner._step._cache_size()
    with caplog.at_level(logging.INFO, logger="ecgjax.attribution.runner"):
        res = attr.attribute_dataset((make, p), x, "label", m, y=y, batch_size=4, out_dir=tmp_path)
    assert runner._step._cache_size() - before == 1  # 4 batches, last one padded: one compile
    assert any("beats/s" in r.getMessage() for r in caplog.records)
    assert res.maps is None  # written, not held
    direct = np.asarray(m(make(p), x, y, None))  # the method on all beats at once
    np.testing.assert_array_equal(res.pred, np.argmax(make(p).logit_fn(x), -1))
    assert sorted(res.files) == [0, 1, 2, 3]
    seen = []
    for c, path in res.files.items():
        z = attr.load_class_npz(path)
        idx = np.flatnonzero(y == c)
        np.testing.assert_array_equal(z["index"], idx)
        np.testing.assert_array_equal(z["label"], c)
        np.testing.assert_allclose(z["maps"], direct[idx], rtol=1e-5, atol=1e-6)
        assert z["meta"]["method"] == "saliency" and z["meta"]["class"] == c
        seen += list(idx)
    assert sorted(seen) == list(range(N))
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp") or f.startswith(".maps")]
    # same call again: no recompilation
    attr.attribute_dataset((make, p), x, "label", m, y=y, batch_size=4)
    assert runner._step._cache_size() - before == 1


def test_runner_pred_target_and_keys_independent_of_batching(tiny_models, data):
    make, p = tiny_models["cnn"]
    x, _ = data
    m = attr.get("smoothgrad", n=3, chunk_size=3)
    a = attr.attribute_dataset((make, p), x, "pred", m, batch_size=4, key=jax.random.key(5))
    b = attr.attribute_dataset((make, p), x, "pred", m, batch_size=16, key=jax.random.key(5))
    np.testing.assert_array_equal(a.target, a.pred)
    np.testing.assert_allclose(a.maps, b.maps, rtol=1e-5, atol=1e-6)
    direct = m(make(p), x, a.pred, attr.row_keys(jax.random.key(5), N))  # fold_in(key, i) per beat
    np.testing.assert_allclose(a.maps, direct, rtol=1e-5, atol=1e-6)


def test_runner_all_classes_and_fns_input(tiny_models, data, tmp_path):
    make, p = tiny_models["linear"]
    x, y = data
    res = attr.attribute_dataset(make(p), x, "all", attr.get("saliency"), batch_size=8)
    assert res.maps.shape == (N, 4, 48, 2)
    np.testing.assert_allclose(res.maps[3, 2], np.asarray(p["W"])[:, :, 2], rtol=1e-6)
    files = attr.attribute_dataset(make(p), x, "all", attr.get("saliency"), batch_size=8, out_dir=tmp_path).files
    z = attr.load_class_npz(files[1])
    assert z["maps"].shape[1:] == (4, 48, 2) and z["meta"]["group_by"] == "pred"
    np.testing.assert_allclose(z["maps"], res.maps[z["index"]], rtol=1e-6)


def test_runner_failure_leaves_no_scratch(tiny_models, data, tmp_path):
    make, p = tiny_models["cnn"]
    x, _ = data
    with pytest.raises(ValueError, match="group_by"):
        attr.attribute_dataset((make, p), x, 0, attr.get("saliency"), batch_size=8, out_dir=tmp_path, group_by="label")
    assert list(tmp_path.iterdir()) == []


def test_runner_errors(tiny_models, data):
    make, p = tiny_models["cnn"]
    x, y = data
    m = attr.get("saliency")
    with pytest.raises(ValueError, match="needs y"):
        attr.attribute_dataset((make, p), x, "label", m)
    with pytest.raises(ValueError, match="target must be"):
        attr.attribute_dataset((make, p), x, "predicted", m)
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        attr.attribute_dataset((make, p), x, 7, m)
    with pytest.raises(ValueError, match="shape"):
        attr.attribute_dataset((make, p), x, y[:3], m)
    with pytest.raises(ValueError, match="PRNG key"):
        attr.attribute_dataset((make, p), x, 0, attr.get("random"))
    with pytest.raises(ValueError, match="x must be"):
        attr.attribute_dataset((make, p), x[0], 0, m)


def test_memory_budget_picks_batch(tiny_models, caplog):
    make, p = tiny_models["cnn"]
    m = attr.get("integrated_gradients", steps=4, chunk_size=4)
    x = np.random.default_rng(0).normal(size=(300, 48, 2)).astype(np.float32)
    small = attr.attribute_dataset((make, p), x, 1, m, batch_size=256, memory_budget=2 * 2**20)
    big = attr.attribute_dataset((make, p), x, 1, m, batch_size=256, memory_budget=64 * 2**20)
    assert 1 <= small.batch_size < big.batch_size == 256
    assert runner.step_bytes((make, p), m, small.batch_size, (48, 2)) <= 2 * 2**20
    np.testing.assert_allclose(small.maps, big.maps, rtol=1e-5, atol=1e-6)
    with pytest.raises(MemoryBudgetError, match="memory budget"):
        attr.attribute_dataset((make, p), x, 1, m, memory_budget=1000)
    # plan_batch names that batch ahead of the run and compiles its step: the run then compiles nothing
    m2 = attr.get("integrated_gradients", steps=5, chunk_size=4)
    planned, nbytes = runner.plan_batch((make, p), m2, x, 1, batch_size=256, memory_budget=2 * 2**20)
    assert 1 <= planned < 256 and 0 < nbytes <= 2 * 2**20
    with caplog.at_level(logging.DEBUG, logger="jax"), jax.log_compiles(True):
        assert attr.attribute_dataset((make, p), x, 1, m2, batch_size=256, memory_budget=2 * 2**20).batch_size == planned
    assert not [r for r in caplog.records if "XLA compilation of jit(_step)" in r.getMessage()]


SUBPROCESS = textwrap.dedent(
    """
    import os, sys, json
    sys.path.insert(0, "tests/attribution")
    import jax, numpy as np
    from conftest import cnn_init, cnn_make
    from ecgjax import attribution as attr
    assert jax.local_device_count() == 4, jax.devices()
    p = cnn_init(jax.random.key(0))
    x = np.random.default_rng(2).normal(size=(11, 48, 2)).astype(np.float32)
    res = attr.attribute_dataset((cnn_make, p), x, 1, attr.get("saliency"), batch_size=6)
    direct = np.asarray(attr.get("saliency")(cnn_make(p), x, np.ones(11, np.int32), None))  # one call, one device
    print(json.dumps({"n_devices": res.n_devices, "batch": res.batch_size,
                      "err": float(np.max(np.abs(res.maps - direct)))}))
    """
)


@pytest.mark.heavy
def test_runner_shards_over_devices():
    env = dict(os.environ, XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", SUBPROCESS], capture_output=True, text=True, env=env, timeout=300,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["n_devices"] == 4 and r["batch"] == 8  # rounded up to a multiple of 4
    assert r["err"] < 1e-5


def test_ig_chunking_bounds_memory(tiny_models):
    """XLA's own accounting: IG with 64 steps in chunks of 4 needs far less than in one chunk of 65 points."""
    make, p = tiny_models["cnn"]
    small = runner.step_bytes((make, p), attr.get("integrated_gradients", steps=64, chunk_size=4, unroll=False), 64, (48, 2))
    big = runner.step_bytes((make, p), attr.get("integrated_gradients", steps=64, chunk_size=65, unroll=False), 64, (48, 2))
    assert small * 4 < big


def test_ig_unrolled_equals_rolled_and_trades_memory(tiny_models):
    """unroll=True gives the same maps; XLA then keeps every chunk's buffers (why it is CPU-only by default)."""
    make, p = tiny_models["cnn"]
    x = np.random.default_rng(0).normal(size=(8, 48, 2)).astype(np.float32)
    rolled = attr.get("integrated_gradients", steps=16, chunk_size=4, unroll=False)
    unrolled = attr.get("integrated_gradients", steps=16, chunk_size=4, unroll=True)
    a = attr.attribute_dataset((make, p), x, 1, rolled).maps
    b = attr.attribute_dataset((make, p), x, 1, unrolled).maps
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    m_rolled = runner.step_bytes((make, p), rolled, 64, (48, 2))
    m_unrolled = runner.step_bytes((make, p), unrolled, 64, (48, 2))
    assert m_unrolled > m_rolled


def test_scan_unroll_default_is_cpu_only_and_bounded(monkeypatch):
    from ecgjax.attribution.base import MAX_UNROLLED_CHUNKS, scan_unroll

    assert scan_unroll(True, 100) and not scan_unroll(False, 2)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert not scan_unroll(None, 2)
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert scan_unroll(None, MAX_UNROLLED_CHUNKS) and not scan_unroll(None, MAX_UNROLLED_CHUNKS + 1)


def test_index_ids_are_stored_and_checked(tiny_models, tmp_path):
    make, p = tiny_models["cnn"]
    x = np.random.default_rng(1).normal(size=(6, 48, 2)).astype(np.float32)
    ids = np.array([40, 41, 7, 9, 100, 3])
    res = attr.attribute_dataset((make, p), x, 0, attr.get("saliency"), y=np.array([0, 1, 0, 1, 0, 1]), out_dir=tmp_path, index=ids)
    stored = np.concatenate([attr.load_class_npz(f)["index"] for f in res.files.values()])
    assert sorted(stored.tolist()) == sorted(ids.tolist())
    with pytest.raises(ValueError, match="index must have shape"):
        attr.attribute_dataset((make, p), x, 0, attr.get("saliency"), index=ids[:3])
