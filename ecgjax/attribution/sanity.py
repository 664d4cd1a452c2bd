"""Sanity checks for attribution maps (Adebayo et al. 2018) and segment-level faithfulness.

* :func:`cascading_randomization`: re-initialise the model's parameters top-down
  (output layer first, following ``cascade_order``) and measure how much the
  maps change (Spearman rank correlation per beat, of signed and of |.| maps).
  A method whose maps survive randomisation of the whole network explains the
  input, not the model. The random-attribution control gives the floor.
  Caveat measured on ``jones2020_lstm`` (untrained and re-initialised, 128
  steps): the Spearman correlation of |saliency| stays ~0.99 after *every*
  layer is re-initialised, because the gradient magnitude decays with the
  distance from the last time step whatever the weights. For recurrent models
  read the signed correlation (about -0.6 there) or rank within time bins.
* :func:`completeness_error`: how far a path method's attributions (integrated
  gradients) miss their completeness axiom, sum(A) = z(x) - z(baseline), per beat;
  the numerical integral's error, measured per run because it depends on the model.
* :func:`deletion_insertion`: delete (set to ``baseline``) the most-attributed
  0.1 s segments first and watch the target probability fall (deletion), or
  insert them into a baseline beat and watch it rise (insertion); areas under
  the curves summarize faithfulness. A random segment order is the control.

References: Adebayo et al. 2018, "Sanity checks for saliency maps" (NeurIPS);
Petsiuk, Das & Saenko 2018, "RISE" (BMVC) for deletion/insertion.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax.attribution.base import AttributionMethod
from ecgjax.attribution.runner import attribute_dataset, model_parts
from ecgjax.batched import map_batches
from ecgjax.progress import Bar


# -- cascading randomisation -------------------------------------------------------------


def _top_name(path) -> str | None:
    p0 = path[0]
    return getattr(p0, "key", getattr(p0, "name", getattr(p0, "idx", None)))


def replace_top_level(params: Any, fresh: Any, names: Sequence[str]) -> Any:
    """``params`` with every leaf under the top-level entries ``names`` taken from ``fresh``.

    Works for dicts and ``nnx.State`` alike and keeps the pytree structure (so
    the jitted step does not recompile).
    """
    names = set(names)
    return jax.tree_util.tree_map_with_path(lambda p, a, b: b if _top_name(p) in names else a, params, fresh)


def spearman_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row pair: f64[N] for a, b: f[N, ...] (average ranks for ties)."""
    from scipy.stats import rankdata

    A = rankdata(np.asarray(a).reshape(len(a), -1), axis=1)
    B = rankdata(np.asarray(b).reshape(len(b), -1), axis=1)
    A = A - A.mean(1, keepdims=True)
    B = B - B.mean(1, keepdims=True)
    den = np.sqrt((A * A).sum(1) * (B * B).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (A * B).sum(1) / den, np.nan)


def _median_rows(v: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN; NaN (without numpy's All-NaN warning) where a row has no value."""
    v = np.asarray(v, float)
    out = np.full(v.shape[:-1], np.nan)
    ok = np.isfinite(v).any(-1)
    out[ok] = np.nanmedian(v[ok], axis=-1)
    return out


@dataclasses.dataclass(frozen=True)
class CascadeResult:
    """Attributes:
    layers: the randomised prefix after each step (step k re-initialised ``layers[:k+1]``).
    spearman_signed, spearman_abs: f64[K, N] per step and beat.
    random_signed, random_abs: f64[N] the control: original maps vs the random-attribution method.
    method: name.
    """

    layers: tuple[str, ...]
    spearman_signed: np.ndarray
    spearman_abs: np.ndarray
    random_signed: np.ndarray
    random_abs: np.ndarray
    method: str

    def summary(self) -> dict:
        """Medians over beats (NaN where the correlation is undefined for every beat) and
        ``n_defined``: beats whose correlation is defined at each step (0: constant maps)."""
        return {"method": self.method, "layers": list(self.layers),
                "median_spearman_signed": _median_rows(self.spearman_signed).tolist(),
                "median_spearman_abs": _median_rows(self.spearman_abs).tolist(),
                "n_defined": np.isfinite(self.spearman_abs).sum(-1).tolist(),
                "random_control_signed": float(_median_rows(self.random_signed)),
                "random_control_abs": float(_median_rows(self.random_abs))}

    def save(self, out_dir: str | os.PathLike) -> None:
        """``cascade_<method>.json`` (summary) and ``.npz`` (per-beat values), atomically."""
        from ecgjax.io import atomic_savez, atomic_write_json

        atomic_write_json(os.path.join(out_dir, f"cascade_{self.method}.json"), self.summary())
        atomic_savez(os.path.join(out_dir, f"cascade_{self.method}.npz"), layers=np.asarray(self.layers),
                     spearman_signed=self.spearman_signed, spearman_abs=self.spearman_abs,
                     random_signed=self.random_signed, random_abs=self.random_abs)


def cascading_randomization(
    model: Any,
    fresh_params: Any,
    order: Sequence[str],
    method: AttributionMethod,
    x: np.ndarray,
    target: Any,
    *,
    key: jax.Array | None = None,
    batch_size: int = 64,
    memory_budget: int | None = None,
) -> CascadeResult:
    """Cascading model-parameter randomisation test.

    Args:
      model: ``(graphdef, state)`` or ``(make_fns, params)`` (the trained model).
      fresh_params: params/state of the same structure from a fresh initialisation
        (e.g. ``eval_split(build(name, ..., fs=fs, rngs=nnx.Rngs(seed + 1)))[1]``).
      order: top-level parameter names from the output back to the input
        (``model.cascade_order``); names absent from the params are skipped silently
        only if they hold no parameters (e.g. dropout).
      method: the attribution method under test.
      x: f32[N, T, L] beats; target: as in :func:`attribute_dataset` (an int, i32[N]
        or "pred"; "pred" means the *trained* model's prediction, fixed across steps).
      key: PRNG key (for keyed methods and the random control; default key 0).
      batch_size, memory_budget: as :func:`attribute_dataset`.
    Returns:
      :class:`CascadeResult`.
    """
    from ecgjax.attribution.registry import get

    make, params = model_parts(model)
    key = jax.random.key(0) if key is None else key
    kw = dict(batch_size=batch_size, memory_budget=memory_budget)
    with Bar(f"cascading randomisation of {method.name}", len(x) * (len(order) + 2)) as bar:
        base = attribute_dataset((make, params), x, target, method, key=key, progress=bar, **kw)
        tgt = base.target  # fixed targets for every step
        rows_s, rows_a = [], []
        for k in range(len(order)):
            p_k = replace_top_level(params, fresh_params, order[: k + 1])
            m_k = attribute_dataset((make, p_k), x, tgt, method, key=key, progress=bar, **kw).maps
            rows_s.append(spearman_rows(base.maps, m_k))
            rows_a.append(spearman_rows(np.abs(base.maps), np.abs(m_k)))
        rnd = attribute_dataset((make, params), x, tgt, get("random"), key=jax.random.fold_in(key, 1), progress=bar, **kw).maps
    return CascadeResult(tuple(order), np.array(rows_s), np.array(rows_a), spearman_rows(base.maps, rnd),
                         spearman_rows(np.abs(base.maps), np.abs(rnd)), method.name)


def cascade_for_model(model, fresh_model, method: AttributionMethod, x, target, **kw) -> CascadeResult:
    """:func:`cascading_randomization` for two NNX models of the same architecture (uses ``model.cascade_order``)."""
    from ecgjax.models.base import eval_split

    g, s = eval_split(model)
    _, fresh = eval_split(fresh_model)
    return cascading_randomization((g, s), fresh, tuple(model.cascade_order), method, x, target, **kw)


# -- completeness of path attributions --------------------------------------------------

COMPLETENESS_TOLERANCE = 0.05  # median relative error above which a run is warned


@functools.partial(jax.jit, static_argnums=(0,))
def _logit_gap(make, params, x, x0, target):
    """f32[B]: z_target(x) - z_target(x0) per beat."""
    fns = make(params)
    z = jnp.take_along_axis(fns.logit_fn(x), target[:, None], 1)[:, 0]
    return z - jnp.take_along_axis(fns.logit_fn(x0), target[:, None], 1)[:, 0]


def completeness_error(model: Any, x: np.ndarray, x0: np.ndarray, target: np.ndarray, attribution_sum: np.ndarray, *,
                       batch_size: int = 256, memory_budget: int | None = None) -> np.ndarray:
    """Relative completeness error per beat: ``|sum(A) - (z_t(x) - z_t(x0))| / |z_t(x) - z_t(x0)|``.

    Integrated gradients satisfies ``sum(A) = z_t(x) - z_t(x0)`` exactly in the
    limit of infinitely many steps (Sundararajan et al. 2017, Prop. 1); with a
    finite number the gap is the quadrature error, which grows with the model's
    curvature along the path.

    Args:
      model: ``(graphdef, state)``, ``(make_fns, params)`` or ``Fns``.
      x, x0: f32[N, T, L] beats and the baselines the method used.
      target: i32[N] explained class (logit) per beat.
      attribution_sum: f[N] the sum of each beat's map over T and L.
      batch_size, memory_budget: as :func:`ecgjax.batched.map_batches`.
    Returns:
      f64[N] (inf where z_t(x) = z_t(x0) but the attributions do not sum to 0).
    """
    make, params = model_parts(model)
    dz = map_batches(_logit_gap, (params,), (np.asarray(x, np.float32), np.asarray(x0, np.float32), np.asarray(target, np.int32)),
                     static=(make,), batch_size=batch_size, memory_budget=memory_budget, desc="IG completeness").outputs
    dz = np.asarray(dz, np.float64)
    gap = np.abs(np.asarray(attribution_sum, np.float64) - dz)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap == 0, 0.0, gap / np.abs(dz))


def completeness_summary(err: np.ndarray, steps: int) -> dict:
    """JSON-ready summary of :func:`completeness_error`: median, 90th percentile, beats, steps and whether
    the median is within :data:`COMPLETENESS_TOLERANCE`."""
    err = np.asarray(err, float)
    med = float(np.median(err)) if len(err) else float("nan")
    return {"median_rel_error": med, "p90_rel_error": float(np.percentile(err, 90)) if len(err) else float("nan"),
            "n": int(len(err)), "steps": int(steps), "tolerance": COMPLETENESS_TOLERANCE,
            "ok": bool(med <= COMPLETENESS_TOLERANCE)}


# -- deletion / insertion by segment ---------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0,))
def _target_prob(make, params, x, target):
    """f32[B]: softmax probability of ``target`` i32[B] for beats x f32[B, T, L]."""
    z = make(params).logit_fn(x)
    return jnp.take_along_axis(jax.nn.softmax(z, -1), target[:, None], 1)[:, 0]


@dataclasses.dataclass(frozen=True)
class FaithfulnessResult:
    """Attributes:
    steps: i64[K+1] number of segments deleted/inserted (0..K, K = the most segments of
      real signal that any beat has; a beat with fewer is fully deleted from its own count on).
    deletion, insertion: {name: f64[K+1]} mean target probability over beats.
    deletion_auc, insertion_auc: {name: f64[N]} per-beat area under the curve (x axis k/K in [0, 1]).
    """

    steps: np.ndarray
    deletion: dict
    insertion: dict
    deletion_auc: dict
    insertion_auc: dict

    def summary(self) -> dict:
        return {"deletion_auc": {k: float(np.mean(v)) for k, v in self.deletion_auc.items()},
                "insertion_auc": {k: float(np.mean(v)) for k, v in self.insertion_auc.items()},
                "deletion": {k: v.tolist() for k, v in self.deletion.items()},
                "insertion": {k: v.tolist() for k, v in self.insertion.items()}}

    def save(self, out_dir: str | os.PathLike, name: str = "faithfulness") -> None:
        from ecgjax.io import atomic_savez, atomic_write_json

        atomic_write_json(os.path.join(out_dir, f"{name}.json"), self.summary())
        arrays = {"steps": self.steps}
        for k in self.deletion:
            arrays[f"deletion_auc__{k}"] = self.deletion_auc[k]
            arrays[f"insertion_auc__{k}"] = self.insertion_auc[k]
        atomic_savez(os.path.join(out_dir, f"{name}.npz"), **arrays)


def _absmean_segments(m, shape, name, r, lo, hi, fs, seg_s, n_per_side) -> np.ndarray:
    """f32[N, S]: mean |map| of each segment's real samples, NaN where the segment does not exist."""
    from ecgjax.analysis.segments import segment_values

    if np.shape(m) != shape:
        raise ValueError(f"maps[{name!r}] has shape {np.shape(m)}, beats have {shape}")
    return segment_values(m, r, lo, hi, fs, seg_s=seg_s, n_per_side=n_per_side, reduce="absmean", min_coverage=1e-9).flat()


def _existing_first(key: np.ndarray, exists: np.ndarray) -> np.ndarray:
    """i64[N, S] rank of each segment by ascending ``key`` among the segments that exist
    (ties keep segment order); a segment that does not exist gets rank S (never reached)."""
    N, S = key.shape
    order = np.argsort(np.where(exists, key, np.inf), axis=1, kind="stable")
    rk = np.empty_like(order)
    np.put_along_axis(rk, order, np.arange(S)[None].repeat(N, 0), axis=1)
    return np.where(exists, rk, S)


def deletion_insertion(
    model: Any,
    x: np.ndarray,
    target: np.ndarray,
    maps: dict[str, np.ndarray],
    r: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fs: float,
    *,
    seg_s: float = 0.1,
    n_per_side: int = 12,
    baseline: float = 0.0,
    random_control: bool = True,
    seed: int = 0,
    batch_size: int = 256,
    memory_budget: int | None = None,
) -> FaithfulnessResult:
    """Deletion and insertion curves over 0.1 s segments ranked by mean |attribution|.

    Only segments that exist (hold at least one real sample) are ranked, per beat,
    by the mean of |map| over their real samples (``segment_values(...,
    reduce="absmean")``); the random control orders the same segments at random.
    Segments with no real sample are never touched and take no step. Step k replaces the real samples of the k top segments by
    ``baseline`` (deletion) or starts from a ``baseline`` beat and restores them
    (insertion); the score is the softmax probability of ``target``.

    Args:
      model: ``(graphdef, state)``, ``(make_fns, params)`` or ``Fns``.
      x: f32[N, T, L]; target: i32[N]; maps: {name: f32[N, T, L]}.
      r, lo, hi: i[N] R position and valid range; fs: Hz.
      random_control: add a ``"random_order"`` curve (segments in a seeded random order).
      batch_size, memory_budget: as :func:`ecgjax.batched.map_batches`.
    Returns:
      :class:`FaithfulnessResult` (lower deletion AUC and higher insertion AUC = more faithful).
    """
    from ecgjax import timebase
    from ecgjax.analysis.segments import segment_ids

    make, params = model_parts(model)
    x = np.asarray(x, np.float32)
    N, T, L = x.shape
    target = np.asarray(target, np.int32)
    w = timebase.to_samples(seg_s, fs)
    ids = segment_ids(r, lo, hi, T, L, w, n_per_side)
    S = 2 * n_per_side * L
    exists = np.zeros((N, S + 1), bool)  # column S collects the samples outside every segment
    np.put_along_axis(exists, np.where(ids >= 0, ids, S).reshape(N, -1), True, axis=1)
    exists = exists[:, :S]
    K = int(exists.sum(1).max(initial=0))
    if K == 0:
        raise ValueError("no beat has a segment of real signal: check r, lo, hi and fs")
    ranks = {name: _existing_first(-_absmean_segments(m, x.shape, name, r, lo, hi, fs, seg_s, n_per_side), exists)
             for name, m in maps.items()}
    if random_control:
        ranks["random_order"] = _existing_first(np.random.default_rng(seed).random((N, S)), exists)

    def scores(xs):
        return map_batches(_target_prob, (params,), (xs, target), static=(make,), batch_size=batch_size,
                           memory_budget=memory_budget, progress=bar).outputs

    steps = np.arange(K + 1)
    dele, ins, dauc, iauc = {}, {}, {}, {}
    base_x = np.full_like(x, baseline)
    with Bar("deletion/insertion curves", 2 * len(ranks) * len(steps) * N) as bar:
        for name, rk in ranks.items():
            rk_s = np.where(ids >= 0, np.take_along_axis(rk, np.maximum(ids, 0).reshape(N, -1), 1).reshape(N, T, L), S)
            dcur, icur = np.empty((K + 1, N)), np.empty((K + 1, N))
            for k in steps:
                sel = rk_s < k
                dcur[k] = scores(np.where(sel, baseline, x))
                icur[k] = scores(np.where(sel, x, base_x))
            dele[name], ins[name] = dcur.mean(1), icur.mean(1)
            dauc[name] = np.trapezoid(dcur, steps / K, axis=0)
            iauc[name] = np.trapezoid(icur, steps / K, axis=0)
    return FaithfulnessResult(steps, dele, ins, dauc, iauc)
