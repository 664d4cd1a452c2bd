"""Whole-dataset attribution: compile once, fixed padded batches, sharded, streamed to disk.

``attribute_dataset(model, x, target, method, ...)`` explains every beat of
``x: f32[N, T, L]`` and (optionally) writes one ``class_<c>.npz`` per class.

Design (docs/style.md §2, §4):

* **Params are arguments.** ``model`` is ``(graphdef, state)`` (from
  ``ecgjax.models.eval_split``), ``(make_fns, params)`` with a hashable
  ``make_fns(params) -> Fns``, or an ``Fns`` (its closed-over params are then
  compile-time constants: fine for tiny models, avoid for real ones). One
  ``jax.jit`` step per (method, target mode, batch shape); the method is a
  static argument (frozen dataclass), so nothing recompiles across batches or
  repeated calls.
* **Fixed-size batches.** The last batch is padded with zero beats and the
  padding rows are dropped after the step (rows are independent, so padding
  changes nothing).
* **Sharding.** Each batch is split over all local devices with a
  ``NamedSharding`` on a 1-D mesh ``("batch",)``; params are replicated.
  The batch size is rounded up to a multiple of the device count.
* **Memory.** ``batch_size`` is given, or chosen from ``memory_budget_bytes``
  by the rule in :func:`choose_batch_size` (XLA's compiled memory statistics at
  two probe sizes, linear in the batch size).
* **Keys.** Beat ``i`` (global index) gets ``fold_in(key, i)``, so results do
  not depend on the batch size or device count.
* **Streaming.** With ``out_dir``, maps go batch by batch into a disk-backed
  scratch array; each class's npz is then written in row chunks straight into
  the zip member (no pickle), to a temporary name and ``os.replace``d.
  Host memory stays at a few batches plus one chunk, whatever N is.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ecgjax.attribution.attributions import write_class_file
from ecgjax.attribution.base import AttributionMethod, row_keys

log = logging.getLogger(__name__)

TARGET_MODES = ("label", "pred", "given", "all")


# -- model adapters (hashable, so they can be static jit arguments) -----------------


@dataclasses.dataclass(frozen=True)
class _FromGraphdef:
    graphdef: Any

    def __call__(self, state):
        from ecgjax.models.base import pure_fns  # lazy: models are optional at import

        return pure_fns(self.graphdef, state)


@dataclasses.dataclass(frozen=True, eq=False)
class _Const:
    fns: Any

    def __call__(self, params):
        return self.fns


def _adapt(model: Any) -> tuple[Callable, Any]:
    """(hashable make_fns, params) from the three accepted forms of ``model``."""
    if isinstance(model, tuple) and len(model) == 2:
        first, params = model
        if callable(first):
            return first, params
        return _FromGraphdef(first), params
    if hasattr(model, "logit_fn"):
        return _Const(model), None
    raise TypeError("model must be an Fns, (graphdef, state) or (make_fns, params)")


# -- the compiled step ---------------------------------------------------------------


def _step_impl(make, method, mode, n_classes, params, x, target, offset, key):
    fns = make(params)
    B = x.shape[0]
    pred = jnp.argmax(fns.logit_fn(x), axis=-1).astype(jnp.int32)
    t = pred if mode == "pred" else target
    keys = row_keys(key, B, offset) if method.needs_key else None
    if mode == "all":
        maps = jax.lax.map(lambda c: method(fns, x, jnp.full((B,), c, jnp.int32), keys), jnp.arange(n_classes))
        maps = jnp.moveaxis(maps, 0, 1)  # [B, C, T, L]
    else:
        maps = method(fns, x, t, keys)
    return maps, pred, t


_step = jax.jit(_step_impl, static_argnums=(0, 1, 2, 3))


def _mesh(devices=None) -> Mesh:
    devs = np.asarray(devices if devices is not None else jax.local_devices())
    return Mesh(devs, ("batch",))


def _abstract_args(params, batch, shape, dtype, key, mesh):
    bs = NamedSharding(mesh, P("batch"))
    rep = NamedSharding(mesh, P())
    ap = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), jnp.asarray(a).dtype, sharding=rep), params)
    ax = jax.ShapeDtypeStruct((batch,) + shape, dtype, sharding=bs)
    at = jax.ShapeDtypeStruct((batch,), jnp.int32, sharding=bs)
    ao = jax.ShapeDtypeStruct((), jnp.uint32, sharding=rep)
    ak = None if key is None else jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=rep)
    return ap, ax, at, ao, ak


def step_memory_bytes(model, method, mode, n_classes, batch, shape, dtype=jnp.float32, key=None, devices=None) -> int:
    """Bytes XLA reports for one compiled step at ``batch`` beats (arguments + outputs + temporaries, all devices)."""
    make, params = _adapt(model)
    mesh = _mesh(devices)
    args = _abstract_args(params, batch, shape, dtype, key, mesh)
    comp = _step.lower(make, method, mode, n_classes, *args).compile()
    m = comp.memory_analysis()
    if m is None:
        return 0
    return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes - m.alias_size_in_bytes)


def choose_batch_size(model, method, mode, n_classes, shape, budget_bytes, *, key=None, devices=None, max_batch=4096) -> int:
    """Largest batch whose step fits ``budget_bytes`` (the documented rule).

    Rule: compile the step at ``b1 = 8 d`` and ``b2 = 16 d`` beats (d = devices)
    and read XLA's memory statistics ``m(b)``; fit ``m(b) = m0 + s b`` and take
    ``b = (budget - m0) / s``, rounded down to a multiple of d, clipped to
    ``[d, max_batch]``. When the backend reports no statistics (s <= 0) fall back
    to ``s = 16 x T x L x 4`` bytes (input, output and ~14 activation copies per
    beat; conservative for the paper's models) and ``m0 = 0``.
    """
    d = len(devices) if devices is not None else jax.local_device_count()
    b1, b2 = 8 * d, 16 * d
    m1 = step_memory_bytes(model, method, mode, n_classes, b1, shape, key=key, devices=devices)
    m2 = step_memory_bytes(model, method, mode, n_classes, b2, shape, key=key, devices=devices)
    s = (m2 - m1) / (b2 - b1)
    m0 = m1 - s * b1
    if s <= 0:
        s, m0 = 16.0 * int(np.prod(shape)) * 4 * (n_classes if mode == "all" else 1), 0.0
    b = int((budget_bytes - m0) // s)
    b = max(d, min(max_batch, b - b % d))
    log.info("memory budget %.1f MiB -> batch %d (%.1f KiB/beat + %.1f MiB fixed)", budget_bytes / 2**20, b, s / 1024, m0 / 2**20)
    return b


# -- the runner ----------------------------------------------------------------------


@dataclasses.dataclass
class AttributionResult:
    """What :func:`attribute_dataset` returns.

    Attributes:
      maps: f32[N, T, L] (f32[N, C, T, L] for target "all"), or None when
        streamed to ``out_dir`` with ``keep_maps=False``.
      target: i32[N] the class explained per beat (-1 for "all").
      pred: i32[N] the model's predicted class.
      files: {class index: npz path} when ``out_dir`` was given.
      batch_size, n_devices: what ran.
      compile_s: seconds of the first (compiling) batch; beats_per_s: throughput
        over the remaining batches (all batches if only one).
    """

    maps: np.ndarray | None
    target: np.ndarray
    pred: np.ndarray
    files: dict[int, Path]
    batch_size: int
    n_devices: int
    compile_s: float
    beats_per_s: float


def _resolve_target(target, n, y):
    if isinstance(target, str):
        if target == "label":
            if y is None:
                raise ValueError("target='label' needs y (i32[N] true labels)")
            return "given", np.asarray(y, np.int32)
        if target in ("pred", "all"):
            return target, np.zeros(n, np.int32)
        raise ValueError(f"target must be 'label', 'pred', 'all', a class index or i32[N]; got {target!r}")
    t = np.asarray(target)
    if t.ndim == 0:
        return "given", np.full(n, int(t), np.int32)
    if t.shape != (n,):
        raise ValueError(f"target array must have shape ({n},), got {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"target must hold integer class indices, got dtype {t.dtype}")
    return "given", t.astype(np.int32)


def attribute_dataset(
    model: Any,
    x: np.ndarray,
    target: Any,
    method: AttributionMethod,
    *,
    y: np.ndarray | None = None,
    batch_size: int | None = None,
    memory_budget_bytes: int | None = None,
    key: jax.Array | None = None,
    out_dir: str | os.PathLike | None = None,
    group_by: str = "auto",
    keep_maps: bool | None = None,
    devices=None,
    log_every_s: float = 10.0,
    index: np.ndarray | None = None,
) -> AttributionResult:
    """Attribution maps for every beat of ``x``.

    Args:
      model: ``(graphdef, state)``, ``(make_fns, params)`` or an ``Fns``.
      x: f32[N, T, L] beats (numpy or memmap; read one batch at a time).
      target: ``"label"`` (needs ``y``), ``"pred"`` (the model's argmax,
        computed in the same step), a class index, i32[N], or ``"all"``
        (every class: maps f32[N, C, T, L]).
      method: an ``AttributionMethod`` instance (``ecgjax.attribution.get``).
      y: i32[N] true labels (for ``"label"`` and for grouping by label).
      batch_size: beats per step (at most N, rounded up to a multiple of the device count);
        or give ``memory_budget_bytes`` instead (see :func:`choose_batch_size`).
        Default 256.
      key: one PRNG key; required if ``method.needs_key`` (beat i uses
        ``fold_in(key, i)``).
      out_dir: if given, write ``class_<c>.npz`` per class there (atomically).
      group_by: ``"label"``, ``"pred"``, ``"target"`` or ``"auto"`` (label when
        ``y`` is given, else the explained target; for "all", else pred).
      keep_maps: also return the maps in memory (default: True without
        ``out_dir``, False with it).
      devices: devices to shard over (default all local devices).
      log_every_s: progress log period (``logging`` INFO, beats/s).
      index: i64[N] ids stored as the npz ``index`` (e.g. positions in a
        BeatSet); default ``arange(N)``.

    Returns:
      :class:`AttributionResult`.
    """
    x_shape = tuple(np.shape(x))
    if len(x_shape) != 3:
        raise ValueError(f"x must be f32[N, T, L], got shape {x_shape}")
    N, T, L = x_shape
    if y is not None and np.shape(y) != (N,):
        raise ValueError(f"y must have shape ({N},), got {np.shape(y)}")
    ids = np.arange(N, dtype=np.int64) if index is None else np.asarray(index, np.int64)
    if ids.shape != (N,):
        raise ValueError(f"index must have shape ({N},), got {ids.shape}")
    mode, tgt = _resolve_target(target, N, y)
    if method.needs_key and key is None:
        raise ValueError(f"method {method.name!r} needs a PRNG key")
    if key is not None and not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    if not method.needs_key:
        key = None
    make, params = _adapt(model)
    fns0 = make(params)
    n_classes = int(jax.eval_shape(fns0.logit_fn, jax.ShapeDtypeStruct((1, T, L), jnp.float32)).shape[-1])
    if mode == "given" and N and (tgt.min() < 0 or tgt.max() >= n_classes):
        raise ValueError(f"target classes must be in [0, {n_classes}), got range [{tgt.min()}, {tgt.max()}]")
    mesh = _mesh(devices)
    d = mesh.devices.size
    if batch_size is None:
        batch_size = 256 if memory_budget_bytes is None else choose_batch_size(
            (make, params), method, mode, n_classes, (T, L), memory_budget_bytes, key=key, devices=devices)
    # Never pad past the data: 68 beats in a 256-row batch would do ~4x the work.
    B = -(-min(int(batch_size), max(N, 1)) // d) * d
    bs, rep = NamedSharding(mesh, P("batch")), NamedSharding(mesh, P())
    params_d = jax.device_put(params, rep)
    key_d = None if key is None else jax.device_put(key, rep)
    out_shape = (n_classes, T, L) if mode == "all" else (T, L)
    keep = (out_dir is None) if keep_maps is None else keep_maps

    out_dir = None if out_dir is None else Path(out_dir)
    scratch = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        scratch_path = out_dir / f".maps_{os.getpid()}.tmp.npy"
        scratch = np.lib.format.open_memmap(scratch_path, mode="w+", dtype=np.float32, shape=(N,) + out_shape)
    maps_mem = np.empty((N,) + out_shape, np.float32) if keep else None
    pred = np.empty(N, np.int32)
    tout = np.empty(N, np.int32)

    def launch(s):
        e = min(s + B, N)
        xb = np.zeros((B, T, L), np.float32)
        xb[: e - s] = x[s:e]
        tb = np.zeros(B, np.int32)
        tb[: e - s] = tgt[s:e]
        res = _step(make, method, mode, n_classes, params_d, jax.device_put(xb, bs), jax.device_put(tb, bs), jnp.uint32(s), key_d)
        return s, e, res

    def collect(item):
        s, e, (m, p, t) = item
        m = np.asarray(jax.device_get(m))[: e - s]
        pred[s:e] = np.asarray(p)[: e - s]
        tout[s:e] = np.asarray(t)[: e - s] if mode != "all" else -1
        if scratch is not None:
            scratch[s:e] = m
        if maps_mem is not None:
            maps_mem[s:e] = m

    try:
        t0 = time.perf_counter()
        compile_s, t_after_first, last_log = 0.0, None, t0
        starts = list(range(0, N, B))
        pending = None
        for i, s in enumerate(starts):
            item = launch(s)  # dispatch is asynchronous: overlaps with collecting the previous batch
            if pending is not None:
                collect(pending)
            pending = item
            if i == 0:
                collect(pending)
                pending = None
                t_after_first = time.perf_counter()
                compile_s = t_after_first - t0
            now = time.perf_counter()
            if now - last_log >= log_every_s:
                done = min(s + B, N)
                rate = (done - min(B, N)) / max(now - t_after_first, 1e-9)
                log.info("%s: %d/%d beats, %.1f beats/s", method.name, done, N, rate)
                last_log = now
        if pending is not None:
            collect(pending)
        t_end = time.perf_counter()
        rest = N - min(B, N)
        beats_per_s = rest / (t_end - t_after_first) if rest > 0 else N / max(t_end - t0, 1e-9)
        log.info("%s: %d beats in %.2f s (first batch incl. compile %.2f s), %.1f beats/s, batch %d on %d device(s)",
                 method.name, N, t_end - t0, compile_s, beats_per_s, B, d)

        files: dict[int, Path] = {}
        if out_dir is not None:
            if group_by == "auto":
                group_by = "label" if y is not None else ("pred" if mode == "all" else "target")
            groups = {"label": None if y is None else np.asarray(y, np.int32), "pred": pred, "target": tout}.get(group_by, "bad")
            if isinstance(groups, str) or groups is None:
                raise ValueError(f"group_by={group_by!r} is not available (label needs y; choose label/pred/target/auto)")
            scratch.flush()
            meta = {"method": method.name, "hparams": {f.name: repr(getattr(method, f.name)) for f in dataclasses.fields(method)},
                    "target_mode": target if isinstance(target, str) else mode, "group_by": group_by,
                    "n_classes": n_classes, "shape": list(out_shape)}
            for c in range(n_classes):
                rows = np.flatnonzero(groups == c)
                arrays = {"index": ids[rows], "target": tout[rows], "pred": pred[rows]}
                if y is not None:
                    arrays["label"] = np.asarray(y, np.int32)[rows]
                files[c] = write_class_file(out_dir / f"class_{c}.npz", scratch, rows, meta={**meta, "class": c}, **arrays)
    finally:
        if scratch is not None:
            del scratch
            os.remove(scratch_path)
    return AttributionResult(maps_mem, tout, pred, files, B, d, compile_s, beats_per_s)
