"""Detect a collapsed model during training: it stops telling beats apart.

What collapse looks like (measured on the faithful hold-out LSTM, see
docs/results.md): the model learns, then one update kills a ReLU layer (every
unit <= 0 for every beat, so no gradient reaches the layers below) or makes a
hidden state nearly the same for every beat; the logits become constant, one
class is predicted for every beat, and the loss sits at a constant.

Three rules, checked on a fixed probe batch of validation beats every
``train.log_every`` steps (``probe_fn``: one forward pass that captures every
sub-module's output with ``nnx.capture``) and on every evaluation's logits:

* ``dead_layer``: a hidden layer's units are all <= 0 on every probe beat (a
  ReLU after it outputs zeros: the layer is dead);
* ``constant_output``: the log-probabilities (every class's) vary across the
  probe beats by less than ``SPREAD_TOL`` nats, or by ``DROP`` times less
  than the most they varied before, after having varied by more than
  ``LEARNED`` (so a model that has not started learning is not called
  collapsed); the detail names the hidden layer whose spread fell the most;
* ``one_class``: one class predicted for every beat of an evaluation while
  the loss is flat (changed by < ``FLAT_TOL`` since the previous evaluation) or
  the outputs are constant.

``Monitor`` keeps the history (restored from ``metrics.jsonl`` on resume),
returns the records the loop writes, and sums up for ``results.json``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ecgjax.models.base import Static

log = logging.getLogger("ecgjax.train")

SPREAD_TOL = 1e-2  # nats: log-probabilities this flat across beats mean the model tells no beats apart
DROP = 20.0  # a spread this many times below the run's best so far is a collapse
LEARNED = 0.1  # nats: the spread a model must have reached before a flat output counts as a collapse
FLAT_TOL = 1e-3  # relative change of the evaluation loss that counts as flat
PROBE_BEATS = 256


def probe_indices(y: np.ndarray, idx: np.ndarray, n: int = PROBE_BEATS, seed: int = 0) -> np.ndarray:
    """i64[<=n]: a fixed, class-balanced subset of ``idx`` (rows of ``y``), every class as equally as it can."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 11])).permutation(np.asarray(idx))
    classes = np.unique(y[order])
    per = [order[y[order] == c] for c in classes]
    out, k = [], 0
    while len(out) < min(n, len(order)):
        for p in per:
            if k < len(p) and len(out) < n:
                out.append(p[k])
        k += 1
    return np.sort(np.asarray(out, np.int64))


def _name(path: tuple) -> str:
    parts = [str(p) for p in path if p != "__call__"]
    return "/".join(parts)


def layer_stats(model: nnx.Module, x: jnp.ndarray) -> dict:
    """Collapse statistics of one forward pass of ``model`` (eval mode) over ``x: f32[B, T, L]``.

    Returns a pytree of arrays: ``logp_spread`` f32[] (max over classes of the
    std across beats of the log-softmax), ``n_predicted`` i32[] (distinct
    argmax classes), and ``layers``: per sub-module output (name ``a/b`` from
    its attribute path) ``units`` (its last
    axis), ``nonpositive`` (units <= 0 for every beat and position),
    ``spread`` (mean over units and positions of the std across beats, divided
    by the output's root mean square) and ``is_output`` (it equals the logits:
    the last layer, left out of the rules).
    """
    logits, inter = nnx.capture(model, nnx.Intermediate, method_outputs=nnx.Intermediate)(x)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    pred = jnp.argmax(logits, -1)
    counts = jnp.zeros(logits.shape[-1], jnp.int32).at[pred].add(1)
    layers = {}
    for path, var in nnx.to_flat_state(inter):
        if len(path) < 2:  # the model's own methods (features, head): their sub-modules are probed
            continue
        v = var.get_value()
        v = v[0] if isinstance(v, tuple) else v
        if not isinstance(v, jax.Array) or v.ndim < 2 or v.shape[0] != x.shape[0]:
            continue
        v = v.astype(jnp.float32)
        unit_max = jnp.max(v.reshape(-1, v.shape[-1]), axis=0)
        rms = jnp.sqrt(jnp.mean(v**2))
        layers[_name(path)] = {
            "units": jnp.int32(v.shape[-1]),
            "nonpositive": jnp.sum(unit_max <= 0).astype(jnp.int32),
            "spread": jnp.mean(jnp.std(v, axis=0)) / jnp.maximum(rms, 1e-12),
            "is_output": jnp.all(v == logits) if v.shape == logits.shape else jnp.asarray(False),
        }
    return {"logp_spread": jnp.max(jnp.std(logp, axis=0)), "n_predicted": jnp.sum(counts > 0), "layers": layers}


def make_probe(graphdef) -> Callable:
    """``(params, rest, x f32[B, T, L]) -> layer_stats`` over ``nnx.merge(graphdef, params, rest)``, compiled once per
    model and shapes (a later run of the same model reuses the program)."""
    return functools.partial(_probe, Static(graphdef))


@functools.partial(jax.jit, static_argnums=0)
def _probe(static: Static, params, rest, x):
    return layer_stats(nnx.merge(static.value, params, rest), x)


@dataclasses.dataclass(frozen=True)
class Finding:
    """step: the global training step; kind: dead_layer | constant_output | one_class; where: probe | validation | test."""

    step: int
    kind: str
    where: str
    detail: str

    def record(self) -> dict:
        return {"kind": "collapse", "step": self.step, "reason": self.kind, "where": self.where, "detail": self.detail}


class Monitor:
    """The collapse history of one run.

    Args:
      records: earlier ``metrics.jsonl`` records of this run (after a resume), oldest first.
    """

    def __init__(self, records: list[dict] = ()):
        self.best_spread, self.best_step, self.best_layers = 0.0, None, {}
        self.prev_eval_loss = None
        self.findings: list[Finding] = []
        self.collapsed = False
        for r in records:
            if r.get("kind") == "probe":
                self._remember(r)
                self.collapsed = r["collapsed"]
            elif r.get("kind") == "collapse":
                self.findings.append(Finding(r["step"], r["reason"], r["where"], r["detail"]))
                self.collapsed = True
            elif r.get("kind") == "epoch" and r.get("val_loss") is not None:
                self.prev_eval_loss = r["val_loss"]

    def _remember(self, r: dict) -> None:
        if r["logp_spread"] is not None and r["logp_spread"] > self.best_spread:
            self.best_spread, self.best_step, self.best_layers = r["logp_spread"], r["step"], dict(r["spread"])

    def probe(self, step: int, stats: dict) -> list[dict]:
        """Records for ``metrics.jsonl`` from one probe (``layer_stats`` output, device or host arrays)."""
        stats = jax.device_get(stats)
        layers = {k: v for k, v in stats["layers"].items() if not bool(v["is_output"])}
        spread = float(stats["logp_spread"])
        rel = {k: float(v["spread"]) for k, v in layers.items()}
        found = []
        dead = [k for k, v in layers.items() if int(v["nonpositive"]) == int(v["units"])]
        for k in dead:
            found.append(Finding(step, "dead_layer", "probe", (
                f"all {int(layers[k]['units'])} units of layer {k!r} are <= 0 on every one of the probe beats: "
                "a ReLU after it outputs 0 for every beat and passes no gradient to the layers below")))
        if self.best_spread >= LEARNED and spread < max(SPREAD_TOL, self.best_spread / DROP):
            found.append(Finding(step, "constant_output", "probe", (
                f"the log-probabilities are nearly the same for every probe beat (spread {spread:.2g} nats; "
                f"{self.best_spread:.3g} at step {self.best_step}){self._fallen(rel)}")))
        record = {"kind": "probe", "step": step, "logp_spread": spread, "n_predicted": int(stats["n_predicted"]),
                  "dead_layers": dead, "spread": rel, "collapsed": bool(found)}
        out = [record, *self._transition(found, step)]
        self._remember(record)
        return out

    def _fallen(self, rel: dict) -> str:
        drops = [(rel[k] / self.best_layers[k], k) for k in rel if self.best_layers.get(k, 0) > 0]
        if not drops:
            return ""
        ratio, k = min(drops)
        return f"; the hidden layer whose spread across beats fell most: {k!r} ({self.best_layers[k]:.3g} -> {rel[k]:.3g})"

    def evaluation(self, step: int, logits: np.ndarray, loss: float, where: str = "validation") -> list[dict]:
        """Records from one evaluation's logits f32[N, C] and mean loss (``where``: validation | test)."""
        logits = np.asarray(logits, np.float64)
        pred = logits.argmax(-1)
        classes = np.unique(pred)
        found = []
        if len(logits) > 1 and len(classes) == 1:
            z = logits - logits.max(-1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
            spread = float(logp.std(axis=0).max())
            prev = self.prev_eval_loss if where == "validation" else None
            flat = prev is not None and abs(loss - prev) <= FLAT_TOL * max(1.0, abs(loss))
            if flat or spread < SPREAD_TOL:
                why = f"loss {loss:.4f}, previous evaluation {prev:.4f}" if flat else f"log-probability spread {spread:.2g} nats"
                found.append(Finding(step, "one_class", where,
                                     f"class index {int(classes[0])} predicted for all {len(pred)} {where} beats ({why})"))
        if where == "validation":
            self.prev_eval_loss = loss
        return self._transition(found, step)

    def _transition(self, found: list[Finding], step: int) -> list[dict]:
        """Collapse records to write (and log): the findings of a check that turns a healthy run collapsed."""
        out = []
        if found and not self.collapsed:
            for f in found:
                log.warning("model collapse detected at step %d (%s, %s): %s", f.step, f.kind, f.where, f.detail)
                self.findings.append(f)
                out.append(f.record())
        elif self.collapsed and not found:
            log.warning("step %d: the model tells beats apart again (no collapse rule holds)", step)
        self.collapsed = bool(found)
        return out

    def summary(self) -> dict:
        """``results.json``'s ``collapse``: whether, when and how the model collapsed, and if it still is."""
        first = self.findings[0] if self.findings else None
        return {
            "detected": first is not None,
            "step": first.step if first else None,
            "kind": first.kind if first else None,
            "detail": first.detail if first else None,
            "findings": [dataclasses.asdict(f) for f in self.findings],
            "collapsed_at_end": self.collapsed,
        }
