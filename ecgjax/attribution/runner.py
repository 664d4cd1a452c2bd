"""Attribution of many beats on top of ``ecgjax.batched``: ``attribute`` and ``attribute_dataset``.

``attribute(method, fns, x, target, key)`` returns the maps of ``x: f32[N, T, L]``;
``attribute_dataset(model, x, target, method, ...)`` also predicts and
(optionally) writes one ``class_<c>.npz`` per class. Both run the same compiled
step in batches that fit the memory budget, whatever the method, its steps and N.

* **Params are arguments.** ``model`` is ``(graphdef, state)`` (from
  ``ecgjax.models.eval_split``), ``(make_fns, params)`` with a hashable
  ``make_fns(params) -> Fns``, or an ``Fns``. An ``Fns`` built by
  ``ecgjax.models.pure_fns`` is taken apart into its graphdef and state (the
  params stay arguments); a hand-made one is a compile-time constant, the
  same object compiling once. One ``jax.jit`` step per (model, method, target
  mode, batch shape): nothing recompiles across batches or calls.
* **Batches, sharding, memory, progress**: :func:`ecgjax.batched.map_batches`
  (fixed padded batches over one mesh; the batch shrinks to fit the memory
  budget, which defaults to a share of the available memory).
* **Keys.** Beat ``i`` (global index) gets ``fold_in(key, i)``, or its own key
  when per-beat keys ``key[N]`` are given, so results do not depend on the
  batch size or device count.
* **Streaming.** With ``out_dir``, maps go batch by batch into a disk-backed
  scratch array, then :func:`save_by_class` writes each class's npz from it.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax.attribution.attributions import write_class_file
from ecgjax.attribution.base import AttributionMethod, check_inputs, check_supported, row_keys
from ecgjax.batched import Mesh, compiled_bytes, default_memory_budget, fit_batch_size, make_mesh, map_batches
from ecgjax.errors import DataError
from ecgjax.progress import Bar

log = logging.getLogger(__name__)


# -- model adapters (hashable, so they can be static jit arguments) -----------------


@dataclasses.dataclass(frozen=True, eq=False)
class _FromGraphdef:
    graphdef: Any
    hooks: Any = None  # None: the model's default hooks

    def __post_init__(self):  # hashed once, not on every batch's call
        from ecgjax.models.base import Static  # lazy: models are optional at import

        object.__setattr__(self, "_static", Static((self.graphdef, self.hooks)))

    def __hash__(self):
        return hash(self._static)

    def __eq__(self, other):
        return self is other or (isinstance(other, _FromGraphdef) and self._static == other._static)

    def __call__(self, state):
        from ecgjax.models.base import pure_fns  # lazy: models are optional at import

        return pure_fns(self.graphdef, state) if self.hooks is None else pure_fns(self.graphdef, state, self.hooks)


class _Const:
    """An ``Fns`` as a static argument: equal (and hashed) by identity, so the same object compiles once."""

    def __init__(self, fns):
        self.fns = fns

    def __eq__(self, other):
        return isinstance(other, _Const) and other.fns is self.fns

    def __hash__(self):
        return id(self.fns)

    def __call__(self, params):
        return self.fns


def model_parts(model: Any) -> tuple[Callable, Any]:
    """``(make_fns, params)``, ``make_fns`` hashable, from the three accepted forms of ``model``."""
    if isinstance(model, tuple) and len(model) == 2:
        first, params = model
        if callable(first):
            return first, params
        return _FromGraphdef(first), params
    if hasattr(model, "logit_fn"):
        source = getattr(model, "source", None)  # (graphdef, state, hooks) of an Fns from pure_fns
        if source is not None and _hashable(source[2]):
            graphdef, state, hooks = source
            from ecgjax.models.base import DEFAULT_HOOKS

            return _FromGraphdef(graphdef, None if hooks is DEFAULT_HOOKS else hooks), state
        return _Const(model), None
    raise TypeError("model must be an Fns, (graphdef, state) or (make_fns, params)")


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def model_info_of(model: Any) -> Any:
    """The ``ModelInfo`` of any accepted form of ``model`` (None for a hand-made ``Fns`` without one)."""
    make, params = model_parts(model)
    return make(params).info


# -- the compiled step ---------------------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _step(make, method, mode, key_impl, params, key, x, target, ids, r):
    """maps f32[B, T, L] (f32[B, C, T, L] for mode "all"), pred i32[B], explained target i32[B] (-1 for "all").

    Beat i's key is ``fold_in(key, ids[i])`` (``ids``: u32[B] global beat
    indices) or, with ``key_impl`` (per-beat keys), the key whose data is
    ``ids[i]`` (u32[B, k]); None when ``key`` and ``key_impl`` are None.
    ``r``: i32[B] R positions, passed to methods with ``needs_r`` only.
    """
    fns = make(params)
    B = x.shape[0]
    logits = fns.logit_fn(x)
    # -1 marks NaN/inf logits (argmax would call them class 0); the host refuses them.
    pred = jnp.where(jnp.isfinite(logits).all(axis=-1), jnp.argmax(logits, axis=-1), -1).astype(jnp.int32)
    t = jnp.maximum(pred, 0) if mode == "pred" else target
    keys = (jax.random.wrap_key_data(ids, impl=key_impl) if key_impl is not None
            else None if key is None else jax.vmap(lambda i: jax.random.fold_in(key, i))(ids))
    extra = {"r": r} if method.needs_r else {}
    if mode == "all":
        maps = jax.lax.map(lambda c: method(fns, x, jnp.full((B,), c, jnp.int32), keys, **extra), jnp.arange(logits.shape[-1]))
        return jnp.moveaxis(maps, 0, 1), pred, jnp.full((B,), -1, jnp.int32)
    return method(fns, x, t, keys, **extra), pred, t


@functools.partial(jax.jit, static_argnums=(0,))
def logits_step(make, params, x):
    """f32[B, C]: the logits of beats x f32[B, T, L] (a ``map_batches`` step). ``attribute_dataset`` reads C from its
    ``eval_shape``, whose trace jax caches per model (``make``) and shapes: the sanity checks' many calls on one model
    trace it once, not once per call."""
    return make(params).logit_fn(x)


def step_bytes(model: Any, method: AttributionMethod, batch: int, shape: tuple[int, int], *, mode: str = "given",
               key: jax.Array | None = None, mesh: Mesh | None = None) -> int:
    """Bytes per device XLA reports for one attribution step of ``batch`` beats of ``shape`` (T, L)."""
    make, params = model_parts(model)
    mesh = mesh or make_mesh()
    rep, bs = mesh.replicated, mesh.batch
    sds = lambda a, sh: jax.ShapeDtypeStruct(np.shape(a), jnp.asarray(a).dtype, sharding=sh)  # noqa: E731
    args = (jax.tree.map(lambda a: sds(a, rep), params), None if key is None else sds(key, rep),
            jax.ShapeDtypeStruct((batch, *shape), jnp.float32, sharding=bs),
            jax.ShapeDtypeStruct((batch,), jnp.int32, sharding=bs), jax.ShapeDtypeStruct((batch,), jnp.uint32, sharding=bs),
            jax.ShapeDtypeStruct((batch,), jnp.int32, sharding=bs))
    return compiled_bytes(_step.lower(make, method, mode, None, *args).compile())


def plan_batch(model: Any, method: AttributionMethod, x: np.ndarray, target: Any, *, key: jax.Array | None = None,
               batch_size: int = 256, memory_budget: int | None = None) -> tuple[int, int]:
    """``(batch, bytes per device of its step)``: the batch ``attribute_dataset(model, x, target, method, key=key,
    batch_size=..., memory_budget=...)`` runs (``batch_size`` fitted to the budget as ``batched.map_batches`` fits it).

    Compiles that step (ahead of time, nothing evaluated), so the run that follows
    compiles nothing. ``target``: a class index, i32[N], ``"pred"`` or ``"all"``.
    """
    n = len(x)
    mode, tgt = _resolve_target(target, n, None)
    make, params = model_parts(model)
    method = method.for_model(make(params).info)
    key, key_impl, ids = _method_keys(method, key, n)
    budget = default_memory_budget() if memory_budget is None else int(memory_budget)
    return fit_batch_size(_step, (params, key), (x, tgt, ids, np.zeros(n, np.int32)), min(int(batch_size), max(n, 1)), budget,
                          static=(make, method, mode, key_impl))


def _refuse_non_finite(name: str, maps: np.ndarray, pred: np.ndarray, index) -> None:
    """NaN/inf logits (``pred == -1``) or maps: a ``DataError`` naming the first beat (maps read in chunks)."""
    bad = pred < 0
    for s in range(0, len(maps), 4096):
        chunk = np.asarray(maps[s : s + 4096])
        bad[s : s + 4096] |= ~np.isfinite(chunk.reshape(len(chunk), -1)).all(axis=1)
    if bad.any():
        i = int(np.argmax(bad))
        what = "logits" if pred[i] < 0 else "attribution maps"
        beat = i if index is None else int(np.asarray(index)[i])
        raise DataError(f"{name}: the model's {what} are NaN or inf for {int(bad.sum())} beats, the first at row {i} "
                        f"(beat {beat}); check the inputs and the checkpoint")


# -- class files -------------------------------------------------------------------


def save_by_class(out_dir: str | os.PathLike, maps: np.ndarray, groups: np.ndarray, n_classes: int, *, meta: dict,
                  label: np.ndarray | None = None, **columns: np.ndarray) -> dict[int, Path]:
    """Write ``out_dir/class_<c>.npz`` for every class c: the rows with ``groups == c``.

    Each file holds ``maps[rows]`` (streamed from ``maps``, which may be a disk
    memmap), every array of ``columns`` (``index``, ``target``, ``pred``...) and
    ``label`` at those rows, and ``meta`` (with ``"class": c``), each with
    ``ecgjax.attribution.attributions.write_class_file`` (atomic).

    Returns:
      {class index: path}.
    """
    files = {}
    for c in range(n_classes):
        rows = np.flatnonzero(groups == c)
        arrays = {k: v[rows] for k, v in columns.items()}
        if label is not None:
            arrays["label"] = label[rows]
        files[c] = write_class_file(Path(out_dir) / f"class_{c}.npz", maps, rows, meta={**meta, "class": c}, **arrays)
    return files


# -- the runner ----------------------------------------------------------------------


@dataclasses.dataclass
class AttributionResult:
    """What :func:`attribute_dataset` returns.

    Attributes:
      maps: f32[N, T, L] (f32[N, C, T, L] for target "all"), or None when
        written to ``out_dir``.
      target: i32[N] the class explained per beat (-1 for "all").
      pred: i32[N] the model's predicted class.
      files: {class index: npz path} when ``out_dir`` was given.
      batch_size, n_devices: what ran.
      compile_s: seconds spent compiling; beats_per_s: throughput after the
        first batch (over all batches if only one).
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


def _method_keys(method: AttributionMethod, key: jax.Array | None, n: int) -> tuple[jax.Array | None, str | None, np.ndarray]:
    """``(key, key_impl, ids)`` for :func:`_step`: one key folded with the beat indices ``ids`` u32[N],
    or per-beat typed keys key[N] carried as their data ``ids`` u32[N, k] with ``key_impl``."""
    ids = np.arange(n, dtype=np.uint32)
    if not method.needs_key:
        return None, None, ids
    if key is None:
        raise ValueError(f"method {method.name!r} needs a PRNG key")
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.wrap_key_data(key), None, ids
    if key.ndim == 0:
        return key, None, ids
    if key.shape != (n,):
        raise ValueError(f"per-beat keys must have shape ({n},), got {key.shape}")
    return None, str(jax.random.key_impl(key)), np.asarray(jax.random.key_data(key))


def _check_rows(name: str, a: np.ndarray | None, n: int) -> None:
    if a is not None and np.shape(a) != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {np.shape(a)}")


def attribute_dataset(
    model: Any,
    x: np.ndarray,
    target: Any,
    method: AttributionMethod,
    *,
    y: np.ndarray | None = None,
    key: jax.Array | None = None,
    index: np.ndarray | None = None,
    batch_size: int = 256,
    memory_budget: int | None = None,
    out_dir: str | os.PathLike | None = None,
    group_by: str = "auto",
    progress: bool | Bar = True,
    r: np.ndarray | None = None,
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
      key: one PRNG key (beat i uses ``fold_in(key, i)``) or per-beat keys key[N];
        required if ``method.needs_key``.
      index: i64[N] ids stored as the npz ``index`` (e.g. positions in a BeatSet); default ``arange(N)``.
      batch_size: beats per step at most; memory_budget: bytes a step may hold
        (default a share of the available memory); progress: show a bar, or
        advance a caller's ``Bar`` (see :func:`ecgjax.batched.map_batches`).
      out_dir: if given, write ``class_<c>.npz`` per class there
        (:func:`save_by_class`) instead of returning the maps.
      group_by: ``"label"``, ``"pred"``, ``"target"`` or ``"auto"`` (label when
        ``y`` is given, else the explained target; for "all", else pred).
      r: i32[N] each beat's R position inside its window (``BeatSet.r``);
        required by methods with ``needs_r`` (``kernel_shap``), unused otherwise.

    Returns:
      :class:`AttributionResult`.
    """
    if np.ndim(x) != 3:
        raise ValueError(f"x must be f32[N, T, L], got shape {np.shape(x)}")
    N, T, L = np.shape(x)
    _check_rows("y", y, N)
    _check_rows("index", index, N)
    mode, tgt = _resolve_target(target, N, y)
    if method.needs_r and r is None:
        raise ValueError(f"method {method.name!r} needs each beat's R position: pass r=beats.r (i32[N])")
    _check_rows("r", r, N)
    rr = np.zeros(N, np.int32) if r is None else np.asarray(r, np.int32)
    make, params = model_parts(model)
    fns = make(params)
    method = method.for_model(fns.info)  # settings left to the model, resolved (the class files record them)
    key, key_impl, ids = _method_keys(method, key, N)
    n_classes = int(logits_step.eval_shape(make, params, jax.ShapeDtypeStruct((1, T, L), jnp.float32)).shape[-1])
    if mode == "given" and N and (tgt.min() < 0 or tgt.max() >= n_classes):
        raise ValueError(f"target classes must be in [0, {n_classes}), got range [{tgt.min()}, {tgt.max()}]")
    if group_by == "auto":
        group_by = "label" if y is not None else ("pred" if mode == "all" else "target")
    if out_dir is not None and (group_by not in ("label", "pred", "target") or (group_by == "label" and y is None)):
        raise ValueError(f"group_by={group_by!r} is not available (label needs y; choose label/pred/target/auto)")
    maps_shape = (N, n_classes, T, L) if mode == "all" else (N, T, L)
    scratch_path = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        scratch_path = Path(out_dir) / f".maps_{os.getpid()}.tmp.npy"
    try:
        maps = (np.lib.format.open_memmap(scratch_path, mode="w+", dtype=np.float32, shape=maps_shape)
                if scratch_path else np.empty(maps_shape, np.float32))
        run = map_batches(_step, (params, key), (x, tgt, ids, rr), static=(make, method, mode, key_impl),
                          out=(maps, np.empty(N, np.int32), np.empty(N, np.int32)), batch_size=batch_size,
                          memory_budget=memory_budget, desc=method.name, progress=progress)
        maps, pred, tout = run.outputs
        _refuse_non_finite(method.name, maps, pred, index)
        log.info("%s: %d beats, %.1f beats/s after %.1f s compiling, batch %d on %d device(s)",
                 method.name, N, run.rows_per_s, run.compile_s, run.batch_size, run.n_devices)
        files = {}
        if out_dir is not None:
            maps.flush()
            groups = {"label": y, "pred": pred, "target": tout}[group_by]
            meta = {"method": method.name, "hparams": {f.name: repr(getattr(method, f.name)) for f in dataclasses.fields(method)},
                    "target_mode": target if isinstance(target, str) else mode, "group_by": group_by,
                    "n_classes": n_classes, "shape": list(maps_shape[1:])}
            files = save_by_class(out_dir, maps, np.asarray(groups, np.int32), n_classes, meta=meta, target=tout, pred=pred,
                                  index=np.arange(N, dtype=np.int64) if index is None else np.asarray(index, np.int64),
                                  label=None if y is None else np.asarray(y, np.int32))
    finally:
        if scratch_path is not None:
            maps = None
            scratch_path.unlink(missing_ok=True)
    return AttributionResult(None if out_dir else maps, tout, pred, files, run.batch_size, run.n_devices, run.compile_s, run.rows_per_s)


def attribute(method: AttributionMethod, fns: Any, x: Any, target: Any, key: jax.Array | None = None, r: Any = None, *,
              batch_size: int = 256, memory_budget: int | None = None, progress: bool = True) -> Any:
    """The eager entry point: maps of the beats ``x`` for the classes ``target``.

    Concrete inputs run through :func:`attribute_dataset`: fixed batches of at
    most ``batch_size`` beats whose compiled step fits ``memory_budget`` bytes
    (default a share of the available memory; ``ecgjax.batched``), one program
    per (model, method, batch shape), so a second call with the same model and
    shapes compiles nothing. Inside a traced function (``jit``, ``vmap``,
    ``grad``, ``eval_shape``) the method is called on the whole batch directly.

    Args:
      method: an ``AttributionMethod``.
      fns: pure model callables (``ecgjax.models.pure_fns``, or hand-made ``Fns``).
      x: f32[B, T, L].
      target: an int (same class for every beat) or i32[B].
      key: one PRNG key (beat i uses ``fold_in(key, i)``), per-beat keys
        key[B], or None (allowed only if ``method.needs_key`` is False).
      r: i32[B] or an int, each beat's R position (methods with ``needs_r``).
      batch_size, memory_budget, progress: as :func:`attribute_dataset`.
    Returns:
      f32[B, T, L] signed maps (a numpy array for concrete inputs).
    Raises:
      ConfigError: the method cannot explain this model (``check_supported``).
      DataError: the model's logits or the maps are NaN or inf.
    """
    source = getattr(fns, "source", None)
    traced = any(isinstance(a, jax.core.Tracer) for a in jax.tree.leaves((x, target, key, r, None if source is None else source[1])))
    xp = jnp if traced else np
    x = xp.asarray(x)
    target = xp.broadcast_to(xp.asarray(target, np.int32), (x.shape[0],)) if np.ndim(target) == 0 else xp.asarray(target)
    check_inputs(x, target)
    check_supported(method, getattr(fns, "info", None))
    if method.needs_r:
        if r is None:
            raise ValueError(f"method {method.name!r} needs each beat's R position r (i32[B])")
        r = xp.broadcast_to(xp.asarray(r, np.int32), (x.shape[0],))
    if not traced:
        return attribute_dataset(fns, x, target, method, key=key, r=r, batch_size=batch_size, memory_budget=memory_budget,
                                 progress=progress).maps
    if not method.needs_key:
        key = None
    elif key is None:
        raise ValueError(f"method {method.name!r} needs a PRNG key")
    elif not (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == (x.shape[0],)):
        key = row_keys(key, x.shape[0])
    extra = {"r": r} if method.needs_r else {}
    return method(fns, x, target.astype(jnp.int32), key, **extra)
