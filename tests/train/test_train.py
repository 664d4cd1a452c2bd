"""End to end on a tiny synthetic run: outputs, determinism, SIGKILL + resume exactness,
4 devices vs 1, refusing another config, corrupt checkpoints, load_run, the CLI."""

import hashlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from ecgjax import config as C
from ecgjax import models, progress
from ecgjax.errors import ConfigError
from ecgjax.train import load_run, train_and_evaluate
from ecgjax.train import data as data_lib
from ecgjax.train import steps as steps_lib
from ecgjax.train.checkpoint import CheckpointError

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config, with_train  # noqa: E402

from tests.conftest import CompileCounter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HELPER = Path(__file__).with_name("helpers.py")
TIMING = ("beats_per_s", "epoch_time_s", "train_time_s")
KILL_DELAY_S = 0.1  # the killed run sleeps this long after each step, so the kill lands mid-run


def _epochs(wd: Path) -> list[dict]:
    rows = [json.loads(line) for line in (wd / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows if r["kind"] == "epoch"]


def _preds(wd: Path) -> dict:
    with np.load(wd / "predictions.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _subprocess(cfg, wd: Path, delay: float):
    cfg_path = wd.parent / f"{wd.name}.json"
    cfg_path.write_text(C.to_json(cfg))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, str(HELPER), str(cfg_path), str(wd), str(delay)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def progress_lines() -> list[str]:
    """The progress lines (``ecgjax.progress``) the reference run logged, one per step."""
    return []


@pytest.fixture(scope="module")
def reference(tmp_path_factory, progress_lines):
    wd = tmp_path_factory.mktemp("ref") / "run"
    cfg = tiny_config()
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: progress_lines.append(record.getMessage())
    logger = logging.getLogger("ecgjax.progress")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(progress, "EVERY_S", 0.0)  # a line per step instead of one per 10 s
            res = train_and_evaluate(cfg, wd)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return cfg, wd, res


def test_training_epochs_show_progress_with_rate_and_eta(reference, progress_lines):
    cfg, wd, res = reference
    assert progress_lines[0] == "compiling training epoch 1/3 (first call) ..."
    per_epoch = res["split"]["train_balanced"] // cfg.train.batch_size * cfg.train.batch_size
    for e in (1, 2, 3):
        mine = [m for m in progress_lines if m.startswith(f"training epoch {e}/3: ")]
        assert mine and mine[-1].startswith(f"training epoch {e}/3: {per_epoch}/{per_epoch} beats, "), mine[-1:]
        assert all("elapsed" in m and "ETA" in m for m in mine)
        assert any(re.search(r", [0-9,.]+ beats/s,", m) for m in mine), mine  # a measured rate, not "?"
    assert not any("compiling training epoch 2" in m for m in progress_lines)  # compiled once
    assert any(m.startswith("validation: ") for m in progress_lines)
    # three validation passes of one shape: only the first compiles, and only it says so
    assert [m for m in progress_lines if m.startswith("compiling validation")] == ["compiling validation (first call) ..."]


def test_outputs_are_complete_and_consistent(reference):
    cfg, wd, res = reference
    for f in ("config.json", "metrics.jsonl", "results.json", "predictions.npz"):
        assert (wd / f).is_file()
    assert C.from_json((wd / "config.json").read_text()) == cfg
    epochs = _epochs(wd)
    assert [e["epoch"] for e in epochs] == [0, 1, 2] and res["epochs_run"] == 3
    assert all(np.isfinite(e["train_loss"]) and np.isfinite(e["val_loss"]) for e in epochs)
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]  # it learns
    assert res["collapse"]["detected"] is False and res["collapse"]["collapsed_at_end"] is False
    p = _preds(wd)
    assert set(p) >= {"index", "y_true", "y_pred", "logits"}
    np.testing.assert_array_equal(p["y_pred"], p["logits"].argmax(-1))
    assert res["test"]["accuracy"] == pytest.approx(float(np.mean(p["y_true"] == p["y_pred"])))
    assert res["test"]["n"] == len(p["index"]) == res["split"]["test"]
    assert res["test"]["ci"]["accuracy"][0] <= res["test"]["accuracy"] <= res["test"]["ci"]["accuracy"][1]
    assert res["device"]["count"] >= 1 and res["versions"]["jax"] == jax.__version__
    assert res["best_epoch"] == int(np.argmin([e["val_loss"] for e in epochs]))
    assert (wd / "best" / str(epochs[res["best_epoch"]]["step"])).is_dir()
    # a finished workdir returns its results without training again
    stamp = (wd / "metrics.jsonl").stat().st_mtime_ns
    assert train_and_evaluate(cfg, wd)["test"] == res["test"]
    assert (wd / "metrics.jsonl").stat().st_mtime_ns == stamp


def test_balancing_uses_the_training_part_only():
    prep = data_lib.prepare(tiny_config().data, seed=3)
    assert set(prep.train_order.tolist()) <= set(prep.split.train.tolist())
    counts = np.bincount(prep.beats.y[prep.train_order])
    assert len(set(counts.tolist())) == 1  # upsampled to equal class sizes
    assert not set(prep.split.train.tolist()) & (set(prep.split.val.tolist()) | set(prep.split.test.tolist()))


def test_same_seed_same_metrics_other_seed_differs(reference, tmp_path):
    """... and a second run of the recipe in the process, of the same seed or another, compiles nothing."""
    cfg, wd, res = reference
    with CompileCounter() as c:
        again = train_and_evaluate(cfg, tmp_path / "again")
    assert c.n == 0
    assert again["test"] == res["test"]
    assert _epochs(tmp_path / "again") == _epochs(wd)
    np.testing.assert_array_equal(_preds(tmp_path / "again")["logits"], _preds(wd)["logits"])
    other = with_train(cfg, seed=4, epochs=1)
    with CompileCounter() as c:
        train_and_evaluate(other, tmp_path / "other")
    assert c.n == 0
    assert _epochs(tmp_path / "other")[0]["train_loss"] != _epochs(wd)[0]["train_loss"]


@pytest.mark.heavy
def test_sigkill_then_resume_is_exact(reference, tmp_path):
    cfg, wd, res = reference
    run = tmp_path / "killed"
    proc = _subprocess(cfg, run, delay=KILL_DELAY_S)
    first = run / "checkpoints" / "10"  # a mid-epoch checkpoint (steps per epoch is not a multiple of 5)
    deadline = time.time() + 120
    while not (first / "commit_success.txt").exists() and not (first / "_CHECKPOINT_METADATA").exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "results.json").exists()
    resumed = train_and_evaluate(cfg, run)
    assert resumed["resumed_from_step"] is not None and resumed["resumed_from_step"] >= 10
    # wall time spans both processes: the killed one slept KILL_DELAY_S on each of its >= 10 steps
    assert resumed["wall_time_s"] >= resumed["wall_time_this_process_s"] + 10 * KILL_DELAY_S
    marks = {int(k): v for k, v in json.loads((run / "elapsed.json").read_text()).items()}
    assert max(marks) == resumed["steps"] and list(dict(sorted(marks.items())).values()) == sorted(marks.values())
    assert resumed["test"] == res["test"]
    assert _epochs(run) == _epochs(wd)
    np.testing.assert_array_equal(_preds(run)["logits"], _preds(wd)["logits"])


FOUR_DEVICES = """
import sys; sys.path.insert(0, sys.argv[1]); from helpers import tiny_config, with_train
from ecgjax.config import from_json
from ecgjax.errors import ConfigError
from ecgjax.train import train_and_evaluate
try:
    train_and_evaluate(with_train(tiny_config(), batch_size=18), sys.argv[2])
except ConfigError as e:
    print('REFUSED', e)
train_and_evaluate(from_json(open(sys.argv[3]).read()), sys.argv[4])
"""


@pytest.mark.heavy
def test_four_devices_give_the_one_device_loss_and_refuse_an_indivisible_batch(reference, tmp_path):
    """One process with 4 host devices: a batch of 18 is refused before anything is written; one epoch of the
    reference config gives the one-device losses."""
    cfg, wd, res = reference
    cfg_path = tmp_path / "four.json"
    cfg_path.write_text(C.to_json(with_train(cfg, epochs=1)))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4",
           "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", FOUR_DEVICES, str(HELPER.parent), str(tmp_path / "w"), str(cfg_path), str(tmp_path / "four")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "REFUSED" in out.stdout and "batch_size=18" in out.stdout and "4 devices" in out.stdout, out.stdout + out.stderr
    assert not (tmp_path / "w" / "checkpoints").exists()
    four = json.loads((tmp_path / "four" / "results.json").read_text())
    assert four["device"]["count"] == 4
    e4, e1 = _epochs(tmp_path / "four")[0], _epochs(wd)[0]
    assert e4["train_loss"] == pytest.approx(e1["train_loss"], abs=1e-5)
    assert e4["val_loss"] == pytest.approx(e1["val_loss"], abs=1e-5)


def test_early_stopping_on_validation_and_last_checkpoint(tmp_path):
    # jones2020_lstm has no BatchNorm or dropout: at lr 1e-12 the float32 parameters cannot move,
    # so the validation loss never improves after epoch 0 and patience 1 stops after epoch 1
    cfg = with_train(tiny_config(), lr=1e-12, plateau_min_lr=1e-12, epochs=5, early_stopping_patience=1,
                     eval_checkpoint="last")
    res = train_and_evaluate(cfg, tmp_path / "es")
    assert res["stopped_early"] and res["epochs_run"] == 2 and res["best_epoch"] == 0
    e = _epochs(tmp_path / "es")
    assert len(e) == 2 and e[0]["val_loss"] == e[1]["val_loss"]
    assert res["evaluated_checkpoint"] == "last" and load_run(tmp_path / "es").checkpoint == "last"
    assert load_run(tmp_path / "es", checkpoint="latest").checkpoint == "last"  # the old word, deprecated


def test_workdir_with_another_config_is_refused(reference):
    cfg, wd, _ = reference
    before = (wd / "config.json").read_bytes()
    with pytest.raises(ConfigError) as e:
        train_and_evaluate(C.apply_overrides(cfg, ["train.lr=0.5", "train.epochs=7"]), wd)
    msg = str(e.value)
    assert "train.lr" in msg and "0.5" in msg and "train.epochs" in msg and "not overwritten" in msg
    assert (wd / "config.json").read_bytes() == before


def _hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_corrupt_checkpoint_is_named_and_nothing_is_overwritten(reference, tmp_path):
    cfg, wd, _ = reference
    run = tmp_path / "corrupt"
    shutil.copytree(wd, run)
    (run / "results.json").unlink()
    latest = max(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())
    for f in (run / "checkpoints" / str(latest) / "state").rglob("*"):
        if f.is_file() and f.name not in ("commit_success.txt",):
            f.write_bytes(b"garbage")
    before = _hashes(run)
    with pytest.raises(CheckpointError, match=str(run / "checkpoints" / str(latest))):
        train_and_evaluate(cfg, run)
    assert _hashes(run) == before


def test_load_run_restores_the_evaluated_model(reference):
    cfg, wd, res = reference
    run = load_run(wd)
    assert run.config == cfg and run.checkpoint == "best" and run.results["test"] == res["test"]
    np.testing.assert_array_equal(run.predictions["index"], run.split.test)
    gd, st = models.eval_split(run.model)
    logits = jax.jit(lambda s, x: models.pure_fns(gd, s).logit_fn(x))(st, run.beats.x[run.split.test])
    np.testing.assert_allclose(np.asarray(logits), run.predictions["logits"], rtol=1e-5, atol=1e-5)


def test_abstract_build_is_the_concrete_template_and_compiles_nothing(reference):
    """load_run's checkpoint template (``loop.build(..., abstract=True)``): the concrete build's graph definitions and
    state tree, every leaf's shape, dtype and (replicated) sharding, with nothing initialised or compiled."""
    from ecgjax import batched
    from ecgjax.train import loop
    from tests.conftest import CompileCounter

    cfg, _, _ = reference
    mesh = batched.make_mesh()
    args = (cfg, 4, (48, 2), 360.0, mesh)
    with CompileCounter() as c:
        gd_a, egd_a, _, abstract = loop.build(*args, abstract=True)
    assert c.n == 0
    gd, egd, _, state = loop.build(*args)
    assert gd_a == gd and egd_a == egd
    assert jax.tree.structure(abstract) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(abstract), jax.tree.leaves(state), strict=True):
        assert isinstance(a, jax.ShapeDtypeStruct) and (a.shape, a.dtype) == (b.shape, b.dtype)
        assert a.sharding.is_equivalent_to(b.sharding, len(a.shape))


def test_plateau_reduces_lr_after_patience_and_floors():
    tc = C.TrainConfig(lr=1e-3, plateau_factor=0.1, plateau_patience=2, plateau_min_lr=1e-5)
    pl = steps_lib.make_plateau(tc)
    s = pl.init(jax.numpy.zeros(()))
    scales = []
    for v in [1.0, 0.5, 0.5, 0.5, 0.4999, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]:
        _, s = pl.update(updates=jax.numpy.zeros(()), state=s, value=jax.numpy.asarray(v))
        scales.append(float(s.scale))
    # improvement by less than min_delta (1e-4) does not count; two bad epochs -> x0.1; floor at 1e-5/1e-3
    np.testing.assert_allclose(scales, [1, 1, 1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01], rtol=1e-6)


def test_cli_train(reference, tmp_path, capsys):
    from ecgjax.cli import main

    cfg, wd, _ = reference
    f = tmp_path / "tiny.py"
    f.write_text(f"from ecgjax.config import from_json\n\ndef get_config(arg=None):\n    return from_json({C.to_json(cfg)!r})\n")
    assert main(["train", "--config", str(f), "--workdir", str(wd)]) == 0  # finished: returns its results
    assert main(["train", "--config", str(f), "--workdir", str(wd), "--set", "train.lr=0.5"]) == 2
    assert "train.lr" in capsys.readouterr().err
    assert main(["train", "--config", str(f), "--workdir", str(tmp_path / "x"), "--set", "train.lrr=0.5"]) == 2
    assert "did you mean" in capsys.readouterr().err


def test_relative_workdir(reference, tmp_path, monkeypatch):
    """A workdir given relative to the current folder (as `make run` does) trains, checkpoints and reloads (one
    epoch of the reference config: the reference's programs, so nothing compiles again)."""
    cfg, ref_wd, ref = reference
    monkeypatch.chdir(tmp_path)
    res = train_and_evaluate(with_train(cfg, epochs=1), Path("rel") / "run")
    assert _epochs(Path("rel") / "run") == _epochs(ref_wd)[:1]  # the reference's first epoch, to the bit
    assert list((tmp_path / "rel" / "run" / "checkpoints").iterdir())
    assert load_run(Path("rel") / "run").results["test"] == res["test"]
