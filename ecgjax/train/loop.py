"""``train_and_evaluate(cfg, workdir)``: one linear, sectioned training run.

Sections: workdir & config, data, model & optimizer, resume, training epochs
(train steps, collapse probes, periodic checkpoints, validation, plateau, best
checkpoint, early stopping), test evaluation (metrics, predictions, results).

Workdir layout::

    config.json       the resolved config (a different config is refused)
    metrics.jsonl     one record per logged step, collapse probe (``collapse``) and epoch
    checkpoints/<s>/  periodic + epoch-end checkpoints (resume)
    elapsed.json      wall seconds spent up to each saved step (so a resumed run's wall time is whole)
    best/<s>/         lowest validation loss
    predictions.npz   test indices, y_true, y_pred, logits (no pickle)
    results.json      final metrics with CIs, config, versions, device, timings

Re-running with the same workdir resumes from the latest checkpoint and gives
bit-identical results on the same device; a finished workdir returns its
results without training.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ecgjax import batched
from ecgjax import config as config_lib
from ecgjax import models
from ecgjax.config import Config
from ecgjax.errors import ConfigError, DataError
from ecgjax.train import data as data_lib
from ecgjax.train import collapse, losses, metrics
from ecgjax.train import steps as steps_lib
from ecgjax.train.checkpoint import Checkpoints
from ecgjax.io import atomic_savez, atomic_write_text, environment_info, read_json, workdir_lock
from ecgjax.progress import Bar
from ecgjax.train.writers import JsonlWriter, LogWriter, MultiWriter, dumps

log = logging.getLogger("ecgjax.train")

_COUNTERS = {"step": 0, "epoch": 0, "pos": 0, "best_epoch": -1, "bad_epochs": 0, "stopped": 0}


# ---------------------------------------------------------------------------
# helpers shared with ``ecgjax.train.run``


def check_workdir(cfg: Config, workdir: Path) -> None:
    """Write ``config.json``, or refuse a workdir that holds a different config."""
    path = Path(workdir) / "config.json"
    if path.exists():
        try:
            old = config_lib.from_json(path.read_text())
        except (ConfigError, OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path} is not a readable ecgjax config ({e}); use a new workdir") from e
        d = config_lib.diff(old, cfg)
        if d:
            lines = "\n".join(f"  {k}: workdir has {a!r}, new config has {b!r}" for k, a, b in d)
            raise ConfigError(f"workdir {workdir} holds a run with another config (not overwritten):\n{lines}")
        return
    atomic_write_text(path, config_lib.to_json(cfg))


def build(cfg: Config, n_classes: int, in_shape, fs: float, mesh: batched.Mesh, train_labels: np.ndarray | None = None,
          *, abstract: bool = False):
    """Model, steps and the initial training state (replicated on ``mesh``); ``in_shape`` and ``fs`` from the beats.

    ``train_labels`` (i[K], the training order's labels) set the loss's class weights when
    ``cfg.train.class_weight_power`` > 0 (``losses.class_weights``; the validation loss is weighted alike).
    ``abstract``: the state as ShapeDtypeStructs (replicated shardings) instead of arrays, nothing initialised or
    compiled: the template a checkpoint is restored into (``load_run``).
    """
    weights = None
    if cfg.train.class_weight_power and train_labels is not None:
        weights = losses.class_weights(train_labels, n_classes, cfg.train.class_weight_power)
    objective = steps_lib.Objective.of(cfg.train, weights)

    def init():
        model = models.build(cfg.model.name, n_classes=n_classes, in_shape=tuple(in_shape), fs=fs,
                             rngs=nnx.Rngs(cfg.train.seed), **cfg.model.kwargs)
        return steps_lib.init_state(model, objective)

    if abstract:
        defs = {}

        def state_only():  # the graph definitions are static: kept from the trace, the state's shapes returned
            defs["graphdef"], defs["eval_graphdef"], st = init()
            return st

        shapes = jax.eval_shape(state_only)
        graphdef, eval_graphdef = defs["graphdef"], defs["eval_graphdef"]
        state = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=mesh.replicated), shapes)
    else:
        graphdef, eval_graphdef, state = init()
        state = jax.device_put(state, mesh.replicated)
    steps = steps_lib.Steps(graphdef, eval_graphdef, objective)
    return graphdef, eval_graphdef, steps, state


def pack(state: dict, counters: dict, best_val: float, mesh: batched.Mesh) -> dict:
    """The checkpointed pytree: training state + loop counters (as replicated arrays)."""
    meta = {k: jnp.asarray(v, jnp.int32) for k, v in counters.items()}
    meta["best_val"] = jnp.asarray(best_val, jnp.float32)
    return {"state": state, "meta": jax.device_put(meta, mesh.replicated)}


def unpack(tree: dict) -> tuple[dict, dict, float]:
    meta = tree["meta"]
    counters = {k: int(meta[k]) for k in _COUNTERS}
    return tree["state"], counters, float(meta["best_val"])


class Elapsed:
    """Wall seconds across resumes: ``elapsed.json`` maps each saved step to the time spent up to it."""

    def __init__(self, workdir: Path, resumed_from: int | None, t0: float):
        self.path = Path(workdir) / "elapsed.json"
        saved = read_json(self.path, "wall-time file") if self.path.exists() else {}
        if not isinstance(saved, dict):
            raise DataError(f"wall-time file {self.path} is damaged (not a JSON object); delete it to resume (the wall time then restarts)")
        self.saved = {k: v for k, v in saved.items() if resumed_from is not None and int(k) <= resumed_from}
        self.before = max(self.saved.values(), default=0.0)  # a kill between save and mark loses that bit only
        self.t0 = t0

    def __call__(self) -> float:
        return self.before + time.time() - self.t0

    def mark(self, step: int) -> None:
        self.saved[str(step)] = self()
        atomic_write_text(self.path, json.dumps(self.saved))


def _require_finite_outputs(logits: np.ndarray, loss: float, what: str, workdir: Path) -> None:
    """Refuse NaN/inf logits (argmax would count them as class 0) or loss: the training diverged.

    logits: f32[M, C].
    """
    bad = ~np.isfinite(np.asarray(logits)).all(axis=-1)
    if bad.any() or not math.isfinite(float(loss)):
        raise DataError(f"{workdir}: the model outputs NaN or inf in the {what} ({int(bad.sum())} of {len(bad)} beats; "
                        f"loss {float(loss)}): the training diverged; lower train.lr or check the data, in a new workdir")


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """i64[n]: the seeded permutation of the training rows for ``epoch`` (``fold_in``)."""
    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 1), epoch)
    return np.asarray(jax.random.permutation(key, n)).astype(np.int64)


# ---------------------------------------------------------------------------


def train_and_evaluate(
    cfg: Config, workdir: str | Path, *, data_dir=None, cache=None, on_step: Callable[[int], None] | None = None,
) -> dict:
    """Train ``cfg`` in ``workdir`` (resuming if it holds a checkpoint), evaluate on test.

    Args:
      cfg: the experiment.
      workdir: run folder (created; see the module docstring).
      data_dir, cache: passed to ``ecgjax.data.load_beats``.
      on_step: called with the global step after every training step (progress hooks, tests).

    Returns:
      The ``results.json`` dict.
    """
    t_start = time.time()
    tc = cfg.train

    # ---- config & data (nothing is written until both are checked) ------------
    workdir = Path(workdir)
    cfg = config_lib.validate(cfg)
    models.check_kwargs(cfg.model.name, cfg.model.kwargs)
    if (workdir / "config.json").exists():
        check_workdir(cfg, workdir)  # refuse another config before reading any data
        if (workdir / "results.json").exists():
            log.info("%s is complete; returning its results", workdir)
            return read_json(workdir / "results.json", "results file")
    prep = data_lib.prepare(cfg.data, seed=tc.seed, data_dir=data_dir, cache=cache)
    order = prep.train_order
    mesh = batched.make_mesh()
    if tc.batch_size % mesh.size or tc.eval_batch_size % mesh.size:
        raise ConfigError(f"train.batch_size={tc.batch_size} and eval_batch_size={tc.eval_batch_size} must be divisible by the {mesh.size} devices")
    steps_per_epoch = len(order) // tc.batch_size
    if steps_per_epoch == 0:
        raise ConfigError(f"train.batch_size={tc.batch_size} is larger than the {len(order)} training beats")

    # ---- workdir: one process at a time -------------------------------------------
    with workdir_lock(workdir):
        check_workdir(cfg, workdir)
        if (workdir / "results.json").exists():
            return read_json(workdir / "results.json", "results file")
        return _train(cfg, workdir, prep, mesh, steps_per_epoch, t_start, on_step)


def _train(cfg: Config, workdir: Path, prep: data_lib.Prepared, mesh: batched.Mesh, steps_per_epoch: int,
           t_start: float, on_step: Callable[[int], None] | None = None) -> dict:
    """The training epochs and the test evaluation of ``train_and_evaluate`` (workdir locked, config written)."""
    tc = cfg.train
    beats, split, order = prep.beats, prep.split, prep.train_order
    n_classes, in_shape = len(beats.classes), beats.x.shape[1:]
    log.info("data: %d beats %s, train %d (balanced %s -> %d), val %d, test %d; %d steps/epoch on %d device(s)",
             len(beats), tuple(in_shape), len(split.train), cfg.data.balance, len(order), len(split.val), len(split.test), steps_per_epoch, mesh.size)

    # ---- model & optimizer ----------------------------------------------------
    graphdef, eval_graphdef, steps, state = build(cfg, n_classes, in_shape, beats.fs, mesh, beats.y[order])
    probe = collapse.make_probe(eval_graphdef)
    probe_x = jax.device_put(beats.x[collapse.probe_indices(beats.y, split.val)], mesh.replicated)
    counters, best_val = dict(_COUNTERS), math.inf
    template = pack(state, counters, best_val, mesh)
    writer = JsonlWriter(workdir / "metrics.jsonl")
    out = MultiWriter(writer, LogWriter())

    with Checkpoints(workdir, tc.checkpoint_every) as ckpts:
        # ---- resume --------------------------------------------------------------
        resumed_from = ckpts.latest_step()
        if resumed_from is not None:
            state, counters, best_val = unpack(ckpts.load_latest(template))
            writer.truncate_after(counters["step"])
            log.info("resumed at step %d (epoch %d, batch %d)", counters["step"], counters["epoch"], counters["pos"])
        else:
            writer.truncate_after(-1)
        del template
        elapsed = Elapsed(workdir, resumed_from, t_start)
        monitor = collapse.Monitor(writer.read())

        # ---- training epochs -------------------------------------------------------
        step, compiling = counters["step"], True
        for epoch in range(counters["epoch"], tc.epochs):
            if counters["stopped"]:
                break
            perm = epoch_order(tc.seed, epoch, len(order))
            t_epoch, t_timed, timed_beats = time.perf_counter(), None, 0
            loss = None
            with Bar(f"training epoch {epoch + 1}/{tc.epochs}", (steps_per_epoch - counters["pos"]) * tc.batch_size) as bar:
                if compiling:  # this process's first step compiles the train step
                    bar.compiling()
                    compiling = False
                for b in range(counters["pos"], steps_per_epoch):
                    idx = order[perm[b * tc.batch_size : (b + 1) * tc.batch_size]]
                    x = jax.device_put(beats.x[idx], mesh.batch)
                    y = jax.device_put(beats.y[idx].astype(np.int32), mesh.batch)
                    state, loss = steps.train(state, x, y)
                    step += 1
                    if t_timed is None:  # time from the 2nd step on: the 1st may include compilation
                        jax.block_until_ready(loss)
                        t_timed = time.perf_counter()
                    else:
                        timed_beats += tc.batch_size
                    bar.advance(tc.batch_size)
                    if step % tc.log_every == 0:
                        out.write({"kind": "step", "step": step, "epoch": epoch, "loss": float(loss)})
                        for r in monitor.probe(step, probe(state["params"], state["rest"], probe_x)):
                            writer.write(r)
                    if on_step is not None:
                        on_step(step)
                    if b + 1 < steps_per_epoch and ckpts.should_save(step):
                        c = {**counters, "step": step, "epoch": epoch, "pos": b + 1}
                        ckpts.save(step, pack(state, c, best_val, mesh))
                        elapsed.mark(step)
                if loss is not None:
                    jax.block_until_ready(loss)
            t_train = time.perf_counter()
            beats_per_s = timed_beats / (t_train - t_timed) if timed_beats else float("nan")

            acc = jax.device_get(state["acc"])
            state = {**state, "acc": jax.device_put(steps_lib.zero_acc(), mesh.replicated)}
            val_logits, val_loss = steps_lib.predict(
                steps, state["params"], state["rest"], beats.x[split.val], beats.y[split.val].astype(np.int32),
                batch_size=tc.eval_batch_size, mesh=mesh, desc="validation",
            )
            _require_finite_outputs(val_logits, val_loss, f"validation after epoch {epoch}", workdir)
            val_rep = metrics.report(beats.y[split.val], val_logits.argmax(-1), beats.classes)
            for r in monitor.evaluation(step, val_logits, val_loss):
                writer.write(r)
            state = {**state, "plateau": steps.plateau(state["plateau"], jnp.float32(val_loss))}
            lr = tc.lr * float(state["plateau"].scale)
            v32 = float(np.float32(val_loss))
            improved = v32 < best_val
            counters = {**counters, "step": step, "epoch": epoch + 1, "pos": 0}
            if improved:
                best_val = v32
                counters.update(best_epoch=epoch, bad_epochs=0)
            else:
                counters["bad_epochs"] += 1
                if tc.early_stopping_patience and counters["bad_epochs"] >= tc.early_stopping_patience:
                    counters["stopped"] = 1
            out.write({
                "kind": "epoch", "step": step, "epoch": epoch,
                "train_loss": float(acc["loss_sum"] / max(acc["n"], 1)), "train_acc": float(acc["correct"] / max(acc["n"], 1)),
                "val_loss": float(val_loss), "val_acc": val_rep["accuracy"], "val_macro_f1": val_rep["macro"]["present"]["f1"],
                "lr_next": lr, "best_epoch": counters["best_epoch"], "beats_per_s": beats_per_s,
                "epoch_time_s": time.perf_counter() - t_epoch, "train_time_s": t_train - t_epoch,
            })
            if improved:
                ckpts.save_best(step, pack(state, counters, best_val, mesh))
            ckpts.save(step, pack(state, counters, best_val, mesh), force=True)
            elapsed.mark(step)
            if counters["stopped"]:
                log.info("early stopping after epoch %d (best epoch %d)", epoch, counters["best_epoch"])

        # ---- test evaluation --------------------------------------------------------
        if tc.eval_checkpoint == "best":
            eval_state, _, _ = unpack(ckpts.load_best(pack(state, counters, best_val, mesh)))
        else:
            eval_state = state

    test = split.test
    logits, test_loss = steps_lib.predict(
        steps, eval_state["params"], eval_state["rest"], beats.x[test], beats.y[test].astype(np.int32),
        batch_size=tc.eval_batch_size, mesh=mesh, desc="test",
    )
    _require_finite_outputs(logits, test_loss, "test evaluation", workdir)
    y_pred = logits.argmax(-1).astype(np.int32)
    for r in monitor.evaluation(counters["step"], logits, test_loss, where="test"):
        writer.write(r)
    rep = metrics.report(
        beats.y[test], y_pred, beats.classes, record=beats.record[test],
        n_bootstrap=cfg.eval.bootstrap_samples, seed=cfg.eval.bootstrap_seed, level=cfg.eval.ci_level,
    )
    atomic_savez(workdir / "predictions.npz", index=test.astype(np.int64), y_true=beats.y[test].astype(np.int32),
                 y_pred=y_pred, logits=logits.astype(np.float32), record=beats.record[test].astype("U16"))
    results = {
        "name": cfg.name,
        "test": {"loss": test_loss, **rep},
        "classes": list(beats.classes),
        "evaluated_checkpoint": tc.eval_checkpoint,
        "best_epoch": counters["best_epoch"], "best_val_loss": best_val,
        "epochs_run": counters["epoch"], "steps": counters["step"], "stopped_early": bool(counters["stopped"]),
        "seed": tc.seed, "split": {"name": split.name, "patient_wise": split.patient_wise,
                                   **{k: int(len(v)) for k, v in split.parts().items()}, "train_balanced": int(len(order))},
        "resumed_from_step": resumed_from,
        "collapse": monitor.summary(),
        "wall_time_s": elapsed(), "wall_time_this_process_s": time.time() - t_start,
        "config": config_lib.to_dict(cfg),
        **environment_info(),
    }
    atomic_write_text(workdir / "results.json", dumps(results, indent=2, sort_keys=True))
    evaluated_epoch = counters["best_epoch"] if tc.eval_checkpoint == "best" else counters["epoch"] - 1
    log.info("test results (%s checkpoint, epoch %d):\n%s", tc.eval_checkpoint, evaluated_epoch, metrics.format_table(rep))
    return json.loads(dumps(results))
