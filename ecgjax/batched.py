"""Batched, sharded evaluation: the one place that pads, shards, unpads and streams to the host.

Every stage that runs a jitted function over many beats (training's validation
and test passes, the attribution runner, ``attribute``, the sanity checks, the
benchmarks) calls :func:`map_batches`::

    out = map_batches(step, (params,), (x, y), batch_size=256)
    logits = out.outputs[0]        # f32[N, C] on the host

* **One mesh.** :func:`make_mesh` is a 1-D mesh ``("batch",)`` over the local
  devices; training uses it too. Rows are split over it, constants replicated.
* **Fixed shapes, compile once.** Every batch has the same shape: the last one
  is padded with zero rows, which are dropped from the outputs (rows are
  independent in eval mode, so padding changes nothing). ``step`` is a
  module-level or long-lived ``jax.jit`` whose static arguments are hashable
  values, so a second call with the same model and shapes compiles nothing.
* **Memory budget.** Before running, the step is compiled ahead of time and
  XLA's memory statistics of that program (arguments + outputs + temporaries)
  are compared with the budget; the batch shrinks until it fits with a margin
  for what the process holds beyond XLA's count (``STEP_MEMORY_MARGIN``; see
  :func:`fit_batch_size`). The budget defaults to a share of the memory
  available now (:func:`default_memory_budget`).
* **Streaming.** Inputs are read one batch at a time (numpy or a disk memmap);
  outputs are copied batch by batch into host arrays (``out=`` can be a memmap).
  The next batch is dispatched before the previous one is copied back.
* **Progress.** A rich bar with rate and ETA (``ecgjax.progress``); a call that
  compiles (the first per step and shapes) is shown as such, a later one is not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ecgjax.errors import ConfigError
from ecgjax.progress import Bar

log = logging.getLogger(__name__)

#: share of the memory available when a call starts that evaluation may use by default
DEFAULT_MEMORY_SHARE = 0.5
# The fit keeps MARGIN x XLA's statistics of a step within the budget: the process's resident memory grows by
# more than the compiled program's arguments + outputs + temporaries (buffers the allocator keeps after a free,
# the runtime's own). The measured gap is in benchmarks/results/cpu_memory.jsonl (jones2020_lstm, IG 512 steps:
# rows with the 2G budget before this margin, and after it).
STEP_MEMORY_MARGIN = 1.25


class MemoryBudgetError(ConfigError):
    """Even the smallest batch needs more memory than the budget allows."""


@dataclasses.dataclass(frozen=True)
class Mesh:
    """The 1-D mesh over the local devices and its two shardings."""

    mesh: jax.sharding.Mesh
    batch: jax.sharding.NamedSharding  # leading axis split over "batch"
    replicated: jax.sharding.NamedSharding

    @property
    def size(self) -> int:
        return self.mesh.size


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """The mesh every stage shards over: all local devices (or ``devices``) on one axis ``"batch"``."""
    devs = np.array(list(devices if devices is not None else jax.local_devices()))
    mesh = jax.sharding.Mesh(devs, ("batch",))
    P = jax.sharding.PartitionSpec
    return Mesh(mesh, jax.sharding.NamedSharding(mesh, P("batch")), jax.sharding.NamedSharding(mesh, P()))


# -- memory ----------------------------------------------------------------------------


def available_memory() -> int:
    """Bytes free now where the step's buffers live: the devices' free memory, or the host's available RAM on CPU."""
    total = 0
    for d in jax.local_devices():
        stats = d.memory_stats() if d.platform != "cpu" else None
        if not stats or "bytes_limit" not in stats:
            import psutil

            return int(psutil.virtual_memory().available)
        total += int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    return total


def default_memory_budget() -> int:
    """``DEFAULT_MEMORY_SHARE`` of :func:`available_memory`."""
    return int(DEFAULT_MEMORY_SHARE * available_memory())


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_memory(text: str | int | None) -> int | None:
    """``"4G"``, ``"512M"``, ``"1.5GiB"``, ``"30%"`` (of the memory available now) or bytes -> bytes; None stays None."""
    if text is None or isinstance(text, int):
        return text
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(%|[KMGT]?)(?:I?B)?", str(text).strip().upper())
    if not m or float(m.group(1)) <= 0 or (m.group(2) == "%" and float(m.group(1)) > 100):
        raise ConfigError(f"memory budget {text!r}: give bytes with a unit (4G, 512M) or a share of the available memory (30%)")
    v = float(m.group(1))
    return int(v / 100 * available_memory()) if m.group(2) == "%" else int(v * _UNITS[m.group(2)])


def _gib(b: float) -> str:
    """Bytes as GiB, or MiB / KiB when smaller (so a small budget never reads "0.00 GiB")."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if b >= size:
            return f"{b / size:.2f} {unit}"
    return f"{b / 2**10:.1f} KiB"


def compiled_bytes(compiled) -> int:
    """Bytes one compiled step holds on each device (arguments + outputs + temporaries, less aliased), 0 if unknown."""
    m = compiled.memory_analysis()
    if m is None:
        return 0
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)


# -- the evaluator ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Evaluated:
    """What :func:`map_batches` returns.

    Attributes:
      outputs: the step's outputs for all N rows, host arrays ``[N, ...]`` (the ``out`` given, filled).
      batch_size: rows per step (a multiple of ``n_devices``).
      n_devices: devices of the mesh.
      compile_s: seconds of compiling (0 when the program was already compiled).
      step_bytes: memory of one step per device, from XLA (0 if the backend does not say).
      rows_per_s: throughput after the first batch (over all batches if there was only one).
    """

    outputs: Any
    batch_size: int
    n_devices: int
    compile_s: float
    step_bytes: int
    rows_per_s: float


def _round_up(b: int, d: int) -> int:
    return -(-b // d) * d


#: per jitted step, the programs compiled so far and XLA's count of their step's bytes per device:
#: {(static, constants' shapes, rows' shapes, batch, devices): bytes}
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Program:
    """A jitted step bound to its static arguments, its constants (placed) and the row specs."""

    def __init__(self, step, static, consts, rows, mesh: Mesh):
        self.step, self.static, self.mesh = step, tuple(static), mesh
        self.consts = jax.device_put(tuple(consts), mesh.replicated)
        self.row_specs = [(np.shape(a)[1:], np.asarray(a[:0]).dtype) for a in rows]
        leaves, tree = jax.tree.flatten(self.consts)
        self._shapes = (tree, tuple((np.shape(a), str(getattr(a, "dtype", type(a))), getattr(a, "weak_type", False)) for a in leaves),
                        tuple(self.row_specs), tuple(d.id for d in mesh.mesh.devices.flat))

    def _key(self, batch: int):
        return (self.static, self._shapes, batch)

    def _known(self, batch: int) -> int | None:
        try:
            return _COMPILED.get(self.step, {}).get(self._key(batch))
        except TypeError:  # a step that cannot be weakly referenced, or an unhashable static argument
            return None

    def compiled(self, batch: int) -> bool:
        """Whether this step was already compiled for ``batch`` rows in this process (a call compiles nothing)."""
        return self._known(batch) is not None

    def step_bytes(self, batch: int) -> int:
        """XLA's count of one device's bytes for a step of ``batch`` rows (``compiled_bytes``).

        Lowered and compiled the first time per step and shapes in this process only: a later call reads the
        count it recorded (lowering again costs tens of ms per call, and jax would return the same program).
        """
        known = self._known(batch)
        if known is not None:
            return known
        rows = [jax.ShapeDtypeStruct((batch, *s), dt, sharding=self.mesh.batch) for s, dt in self.row_specs]
        m = compiled_bytes(self.step.lower(*self.static, *self.consts, *rows).compile())
        with contextlib.suppress(TypeError):
            _COMPILED.setdefault(self.step, {})[self._key(batch)] = m
        return m

    def __call__(self, *rows):
        return self.step(*self.static, *self.consts, *rows)


def _fit(prog: _Program, batch_size: int, budget: int | None) -> tuple[int, int, float]:
    d = prog.mesh.size
    t0 = time.perf_counter()
    room = None if budget is None else budget / (d * STEP_MEMORY_MARGIN)  # what XLA's count of one device's step may reach
    b = _round_up(max(1, int(batch_size)), d)
    tried = {b: prog.step_bytes(b)}
    while room is not None and tried[b] and tried[b] > room and b > d:
        half = max(d, (b // 2) - (b // 2) % d)
        if half not in tried:
            tried[half] = prog.step_bytes(half)
        s = (tried[b] - tried[half]) / max(b - half, 1)
        guess = int((room - (tried[half] - s * half)) // s) if s > 0 else half
        b = max(d, min(half, guess - guess % d))
        if b not in tried:
            tried[b] = prog.step_bytes(b)
    m = tried[b]
    if room is not None and m > room:
        raise MemoryBudgetError(f"one step of {b} row(s) needs {_gib(m * d)} ({_gib(m * d * STEP_MEMORY_MARGIN)} with the "
                                f"runtime's margin), more than the memory budget of {_gib(budget)}: "
                                "raise the budget (--memory-budget) or make the method cheaper (e.g. a smaller chunk_size)")
    if len(tried) > 1:
        log.info("memory budget %s -> batch %d (%s per step)", _gib(budget), b, _gib(m * d))
    return b, m, time.perf_counter() - t0


def fit_batch_size(step: Callable, consts: Sequence[Any], rows: Sequence[np.ndarray], batch_size: int, budget: int | None,
                   *, static: Sequence[Any] = (), mesh: Mesh | None = None) -> tuple[int, int]:
    """The largest batch, at most ``batch_size``, whose compiled step fits ``budget`` bytes in all.

    Rule: compile at ``b = batch_size`` (rounded up to a multiple of the d
    devices) and read XLA's memory statistics ``m(b)`` (per device). While
    ``d m(b) MARGIN > budget`` (``STEP_MEMORY_MARGIN``): compile at ``b/2`` too, fit
    ``m(b) = m0 + s b``, take ``b = (budget/(d MARGIN) - m0) / s`` rounded down to a multiple of d, and check that
    program in turn. The program that fits is the one that runs (jax caches it),
    so when the first fits nothing extra is compiled.

    Args: as :func:`map_batches` (``rows`` only give the row shapes and dtypes).
    Returns:
      (batch, bytes per device of its step).
    Raises:
      MemoryBudgetError: when one row per device does not fit.
    """
    b, m, _ = _fit(_Program(step, static, consts, rows, mesh or make_mesh()), batch_size, budget)
    return b, m


def map_batches(
    step: Callable,
    consts: Sequence[Any],
    rows: Sequence[np.ndarray],
    *,
    static: Sequence[Any] = (),
    batch_size: int = 256,
    memory_budget: int | None = None,
    mesh: Mesh | None = None,
    out: Any = None,
    desc: str = "evaluating",
    unit: str = "beats",
    progress: bool | Bar = True,
) -> Evaluated:
    """Run ``step(*static, *consts, *row_batch) -> per-row outputs`` over all rows, in fixed, padded, sharded batches.

    Args:
      step: a ``jax.jit`` function (static arguments first, hashable) returning a
        pytree of arrays ``[B, ...]`` whose row i depends only on row i of the inputs.
      consts: arguments replicated on every device (parameters, a PRNG key; None allowed).
      rows: host arrays ``[N, ...]`` with the same N (numpy or memmap), split into batches.
      static: ``step``'s leading static arguments.
      batch_size: rows per step at most (rounded up to a multiple of the devices;
        never more than N so rounded).
      memory_budget: bytes the step may hold in all (``None``: :func:`default_memory_budget`);
        the batch shrinks until it fits (:func:`fit_batch_size`).
      mesh: default :func:`make_mesh`.
      out: a pytree of host arrays ``[N, ...]`` matching the outputs, to fill
        (e.g. disk memmaps); default new numpy arrays.
      desc, unit, progress: the progress bar (``progress`` False: none; a ``Bar``:
        advance that one, for a stage made of several calls).
    Returns:
      :class:`Evaluated`.
    """
    mesh = mesh or make_mesh()
    n = len(rows[0])
    if any(len(r) != n for r in rows):
        raise ValueError(f"inputs have different lengths: {[len(r) for r in rows]}")
    d = mesh.size
    budget = default_memory_budget() if memory_budget is None else int(memory_budget)
    prog = _Program(step, static, consts, rows, mesh)
    own = not isinstance(progress, Bar)
    with (Bar(desc, n, unit=unit, enabled=bool(progress)) if own else contextlib.nullcontext(progress)) as bar:
        first = min(int(batch_size), max(n, 1))
        if not prog.compiled(_round_up(max(1, first), d)):
            bar.compiling()  # only the first call per shape compiles (jax caches the program)
        B, step_bytes, compile_s = _fit(prog, first, budget)

        def launch(s: int):
            e = min(s + B, n)
            batch = []
            for r in rows:
                a = np.asarray(r[s:e])
                if e - s < B:
                    a = np.concatenate([a, np.zeros((B - (e - s), *a.shape[1:]), a.dtype)])
                batch.append(jax.device_put(a, mesh.batch))
            return s, e, prog(*batch)

        def collect(item) -> None:
            nonlocal out
            s, e, res = item
            res = jax.device_get(res)
            if out is None:
                out = jax.tree.map(lambda a: np.empty((n, *a.shape[1:]), a.dtype), res)
            jax.tree.map(lambda o, a: o.__setitem__(slice(s, e), a[: e - s]), out, res)
            bar.advance(e - s)

        t0 = time.perf_counter()
        t_first = None
        pending = None
        for s in range(0, n, B):
            item = launch(s)  # dispatch is asynchronous: overlaps with copying the previous batch back
            if pending is not None:
                collect(pending)
            pending = item
            if t_first is None:
                collect(pending)
                pending, t_first = None, time.perf_counter()
        if pending is not None:
            collect(pending)
        t_end = time.perf_counter()
    rest = n - min(B, n)
    rate = rest / (t_end - t_first) if rest > 0 else n / max(t_end - t0, 1e-9)
    if out is None:  # no rows: outputs of the right trailing shapes, empty
        shapes = jax.eval_shape(lambda *a: step(*static, *a), *prog.consts,
                                *[jax.ShapeDtypeStruct((d, *s), dt) for s, dt in prog.row_specs])
        out = jax.tree.map(lambda a: np.empty((0, *a.shape[1:]), a.dtype), shapes)
    return Evaluated(out, B, d, compile_s, step_bytes, rate)
