"""Sanity checks for attribution maps (Adebayo et al. 2018) and segment-level faithfulness.

* :func:`cascading_randomization`: re-initialise the model's parameters top-down
  (output layer first, following ``cascade_order``) and measure how much the
  maps change (Spearman rank correlation per beat, of signed and of |.| maps).
  A method whose maps survive randomisation of the whole network explains the
  input, not the model. The random-attribution control gives the floor.
  Caveat for recurrent models (``jones2020_lstm``): the Spearman correlation
  of |saliency| stays near 1 after *every* layer is re-initialised, because
  the gradient magnitude decays with the distance from the last time step
  whatever the weights. For them read the signed correlation or rank within
  time bins.
* :func:`independent_randomization`: each parameter group re-initialised alone.
* :func:`data_randomization`: maps of the model against maps of a copy trained
  on permuted labels; :func:`random_logit`: the predicted class's map against a
  random other class's. Both by Spearman and SSIM (:func:`ssim_rows`) per beat.
* :func:`completeness_error`, :func:`method_completeness`: how far attributions
  miss their completeness axiom, sum(A) = z(x) - z(baseline) (integrated
  gradients, DeepLIFT, expected gradients in expectation, LRP-epsilon against
  z(x)), per beat; measured per run because it depends on the model.
* :func:`deletion_insertion`: delete (set to ``baseline``) the most-attributed
  0.1 s segments first and watch the target probability fall (deletion), or
  insert them into a baseline beat and watch it rise (insertion); areas under
  the curves summarize faithfulness. A random segment order is the control.
* :func:`road`: remove and debias: the same rankings, removed segments filled
  by noisy linear imputation, most (MoRF) and least (LeRF) relevant first.

References: Adebayo et al. 2018, "Sanity checks for saliency maps" (NeurIPS);
Sixt, Granz & Landgraf 2020, "When explanations lie" (ICML) for random-logit;
Petsiuk, Das & Saenko 2018, "RISE" (BMVC) for deletion/insertion; Rong, Leemann,
Borisov, Kasneci & Kasneci 2022, "A consistent and efficient evaluation strategy
for attribution methods" (ICML) for ROAD.
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
from ecgjax.attribution.runner import attribute_dataset, logits_step, model_info_of, model_parts
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
    layers: the parameter groups in randomisation order.
    spearman_signed, spearman_abs: f64[K, N] per step and beat.
    random_signed, random_abs: f64[N] the control: original maps vs the random-attribution method.
    method: name.
    mode: ``"cascade"`` (step k re-initialised ``layers[:k+1]``) or ``"independent"``
      (step k re-initialised ``layers[k]`` alone).
    ssim_abs: f64[K, N] :func:`ssim_rows` of the |maps| per step and beat (None for results made without it).
    """

    layers: tuple[str, ...]
    spearman_signed: np.ndarray
    spearman_abs: np.ndarray
    random_signed: np.ndarray
    random_abs: np.ndarray
    method: str
    mode: str = "cascade"
    ssim_abs: np.ndarray | None = None

    def summary(self) -> dict:
        """Medians over beats (NaN where the correlation is undefined for every beat) and
        ``n_defined``: beats whose correlation is defined at each step (0: constant maps)."""
        out = {"method": self.method, "mode": self.mode, "layers": list(self.layers),
               "median_spearman_signed": _median_rows(self.spearman_signed).tolist(),
               "median_spearman_abs": _median_rows(self.spearman_abs).tolist(),
               "n_defined": np.isfinite(self.spearman_abs).sum(-1).tolist(),
               "random_control_signed": float(_median_rows(self.random_signed)),
               "random_control_abs": float(_median_rows(self.random_abs))}
        if self.ssim_abs is not None:
            out["median_ssim_abs"] = _median_rows(self.ssim_abs).tolist()
        return out

    def save(self, out_dir: str | os.PathLike) -> None:
        """``<mode>_<method>.json`` (summary) and ``.npz`` (per-beat values), atomically."""
        from ecgjax.io import atomic_savez, atomic_write_json

        atomic_write_json(os.path.join(out_dir, f"{self.mode}_{self.method}.json"), self.summary())
        extra = {} if self.ssim_abs is None else {"ssim_abs": self.ssim_abs}
        atomic_savez(os.path.join(out_dir, f"{self.mode}_{self.method}.npz"), layers=np.asarray(self.layers),
                     spearman_signed=self.spearman_signed, spearman_abs=self.spearman_abs,
                     random_signed=self.random_signed, random_abs=self.random_abs, **extra)


def _parameter_randomization(model, fresh_params, order, method, x, target, *, mode, key, batch_size, memory_budget) -> CascadeResult:
    from ecgjax.attribution.registry import get

    make, params = model_parts(model)
    key = jax.random.key(0) if key is None else key
    kw = dict(batch_size=batch_size, memory_budget=memory_budget)
    title = "cascading" if mode == "cascade" else "independent layer"
    with Bar(f"{title} randomisation of {method.name}", len(x) * (len(order) + 2)) as bar:
        base = attribute_dataset((make, params), x, target, method, key=key, progress=bar, **kw)
        tgt = base.target  # fixed targets for every step
        rows_s, rows_a, rows_ssim = [], [], []
        for k in range(len(order)):
            groups = order[: k + 1] if mode == "cascade" else order[k : k + 1]
            m_k = attribute_dataset((make, replace_top_level(params, fresh_params, groups)), x, tgt, method, key=key,
                                    progress=bar, **kw).maps
            rows_s.append(spearman_rows(base.maps, m_k))
            rows_a.append(spearman_rows(np.abs(base.maps), np.abs(m_k)))
            rows_ssim.append(ssim_rows(np.abs(base.maps), np.abs(m_k)))
        rnd = attribute_dataset((make, params), x, tgt, get("random"), key=jax.random.fold_in(key, 1), progress=bar, **kw).maps
    return CascadeResult(tuple(order), np.array(rows_s), np.array(rows_a), spearman_rows(base.maps, rnd),
                         spearman_rows(np.abs(base.maps), np.abs(rnd)), method.name, mode, np.array(rows_ssim))


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
      :class:`CascadeResult` (``mode="cascade"``).
    """
    return _parameter_randomization(model, fresh_params, tuple(order), method, x, target, mode="cascade", key=key,
                                    batch_size=batch_size, memory_budget=memory_budget)


def independent_randomization(model: Any, fresh_params: Any, order: Sequence[str], method: AttributionMethod, x: np.ndarray,
                              target: Any, *, key: jax.Array | None = None, batch_size: int = 64,
                              memory_budget: int | None = None) -> CascadeResult:
    """Independent layer randomisation (Adebayo et al. 2018, Sec. 3.1): each parameter group of ``order``
    re-initialised *alone*, the others trained. A map that does not change when a layer is randomised
    does not depend on that layer. Arguments as :func:`cascading_randomization`; ``mode="independent"``."""
    return _parameter_randomization(model, fresh_params, tuple(order), method, x, target, mode="independent", key=key,
                                    batch_size=batch_size, memory_budget=memory_budget)


def cascade_for_model(model, fresh_model, method: AttributionMethod, x, target, *, mode: str = "cascade",
                      key: jax.Array | None = None, batch_size: int = 64, memory_budget: int | None = None) -> CascadeResult:
    """:func:`cascading_randomization` (``mode="cascade"``) or :func:`independent_randomization`
    (``"independent"``) for two NNX models of the same architecture (uses ``model.cascade_order``)."""
    from ecgjax.models.base import eval_split

    if mode not in ("cascade", "independent"):
        raise ValueError(f"mode must be 'cascade' or 'independent', got {mode!r}")
    g, s = eval_split(model)
    _, fresh = eval_split(fresh_model)
    return _parameter_randomization((g, s), fresh, tuple(model.cascade_order), method, x, target, mode=mode, key=key,
                                    batch_size=batch_size, memory_budget=memory_budget)


# -- similarity of two sets of maps ---------------------------------------------------------


def ssim_rows(a: np.ndarray, b: np.ndarray, *, win: int = 7) -> np.ndarray:
    """Structural similarity of each row pair, SSIM along time per lead, averaged: f64[N] for a, b: f[N, T, L].

    Wang et al. (2004)'s index with a uniform window of ``win`` samples along T (``scipy.ndimage``,
    reflected at the ends), ``C1 = (0.01 D)^2``, ``C2 = (0.03 D)^2`` and D the pair's data range
    (max - min over both maps of the beat), as Adebayo et al. (2018) compare maps. 1 for identical
    rows; NaN where both rows are constant and equal-valued is impossible to judge (D = 0).
    """
    from scipy.ndimage import uniform_filter1d

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim_rows needs two f[N, T, L] arrays of one shape, got {a.shape} and {b.shape}")
    D = np.maximum(a.max((1, 2)), b.max((1, 2))) - np.minimum(a.min((1, 2)), b.min((1, 2)))
    c1, c2 = ((0.01 * D) ** 2)[:, None, None], ((0.03 * D) ** 2)[:, None, None]
    f = lambda v: uniform_filter1d(v, win, axis=1, mode="reflect")  # noqa: E731
    ma, mb = f(a), f(b)
    va, vb, cab = f(a * a) - ma * ma, f(b * b) - mb * mb, f(a * b) - ma * mb
    with np.errstate(invalid="ignore", divide="ignore"):
        s = ((2 * ma * mb + c1) * (2 * cab + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
        return np.where(D > 0, s.mean((1, 2)), np.nan)


@dataclasses.dataclass(frozen=True)
class MapSimilarity:
    """Maps of one method under two conditions compared beat by beat (random-logit, data randomisation).

    Attributes:
      check: ``"random_logit"`` or ``"data_randomization"``.
      method: name.
      spearman_signed, spearman_abs, ssim_abs: f64[N] per beat.
      random_abs: f64[N] the control: |original maps| vs |random-attribution maps| (Spearman).
    """

    check: str
    method: str
    spearman_signed: np.ndarray
    spearman_abs: np.ndarray
    ssim_abs: np.ndarray
    random_abs: np.ndarray

    def summary(self) -> dict:
        med = lambda v: float(_median_rows(np.asarray(v)[None])[0])  # noqa: E731
        return {"check": self.check, "method": self.method, "n": int(len(self.spearman_abs)),
                "median_spearman_signed": med(self.spearman_signed), "median_spearman_abs": med(self.spearman_abs),
                "median_ssim_abs": med(self.ssim_abs), "random_control_abs": med(self.random_abs)}

    def save(self, out_dir: str | os.PathLike) -> None:
        """``<check>_<method>.json`` and ``.npz``, atomically."""
        from ecgjax.io import atomic_savez, atomic_write_json

        atomic_write_json(os.path.join(out_dir, f"{self.check}_{self.method}.json"), self.summary())
        atomic_savez(os.path.join(out_dir, f"{self.check}_{self.method}.npz"), spearman_signed=self.spearman_signed,
                     spearman_abs=self.spearman_abs, ssim_abs=self.ssim_abs, random_abs=self.random_abs)


def _similarity(check, method, a, b, rnd) -> MapSimilarity:
    return MapSimilarity(check, method.name, spearman_rows(a, b), spearman_rows(np.abs(a), np.abs(b)),
                         ssim_rows(np.abs(a), np.abs(b)), spearman_rows(np.abs(a), np.abs(rnd)))


def other_class(pred: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """i32[N]: a class drawn uniformly among the ``n_classes - 1`` classes other than ``pred`` i[N] (seeded)."""
    if n_classes < 2:
        raise ValueError("random-logit needs at least 2 classes")
    shift = np.random.default_rng(seed).integers(1, n_classes, len(pred))
    return ((np.asarray(pred) + shift) % n_classes).astype(np.int32)


def random_logit(model: Any, method: AttributionMethod, x: np.ndarray, *, key: jax.Array | None = None, seed: int = 0,
                 batch_size: int = 64, memory_budget: int | None = None) -> MapSimilarity:
    """Random-logit test (Sixt, Granz & Landgraf 2020; Adebayo et al. 2018): the map of the predicted class
    against the map of a random *other* class, per beat. A class-sensitive method gives different maps
    (low similarity); maps that barely change explain the input, not the decision.

    Args:
      model: ``(graphdef, state)``, ``(make_fns, params)`` or ``Fns``; x: f32[N, T, L].
      key: PRNG key (keyed methods, the random control); seed: draws the other class (:func:`other_class`).
    Returns:
      :class:`MapSimilarity` (``check="random_logit"``).
    """
    from ecgjax.attribution.registry import get

    key = jax.random.key(0) if key is None else key
    kw = dict(key=key, batch_size=batch_size, memory_budget=memory_budget)
    make, params = model_parts(model)
    x = np.asarray(x, np.float32)
    z = map_batches(logits_step, (params,), (x,), static=(make,), batch_size=batch_size, memory_budget=memory_budget,
                    desc="random-logit: predictions", progress=False).outputs
    pred = np.argmax(z, -1).astype(np.int32)
    with Bar(f"random-logit test of {method.name}", 3 * len(x)) as bar:  # given targets: the step other checks compiled
        top = attribute_dataset(model, x, pred, method, progress=bar, **kw).maps
        other = attribute_dataset(model, x, other_class(pred, z.shape[-1], seed), method, progress=bar, **kw).maps
        rnd = attribute_dataset(model, x, pred, get("random"), progress=bar, **{**kw, "key": jax.random.fold_in(key, 1)}).maps
    return _similarity("random_logit", method, top, other, rnd)


def data_randomization(model: Any, permuted_model: Any, method: AttributionMethod, x: np.ndarray, target: Any, *,
                       key: jax.Array | None = None, batch_size: int = 64, memory_budget: int | None = None) -> MapSimilarity:
    """Data (label) randomisation test (Adebayo et al. 2018, Sec. 3.2): maps of the trained model against
    maps of the same architecture trained on *permuted* labels (which can only memorise), for the same
    targets. High similarity means the method does not depend on what the model learned from the labels.

    Args:
      model, permuted_model: ``(graphdef, state)`` / ``(make_fns, params)`` of the two models.
      x: f32[N, T, L]; target: as :func:`attribute_dataset` ("pred": the trained model's prediction, used for both).
    Returns:
      :class:`MapSimilarity` (``check="data_randomization"``).
    """
    from ecgjax.attribution.registry import get

    key = jax.random.key(0) if key is None else key
    kw = dict(key=key, batch_size=batch_size, memory_budget=memory_budget)
    with Bar(f"data randomisation test of {method.name}", 3 * len(x)) as bar:
        base = attribute_dataset(model, x, target, method, progress=bar, **kw)
        perm = attribute_dataset(permuted_model, x, base.target, method, progress=bar, **kw).maps
        rnd = attribute_dataset(model, x, base.target, get("random"), progress=bar, **{**kw, "key": jax.random.fold_in(key, 1)}).maps
    return _similarity("data_randomization", method, base.maps, perm, rnd)


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
    return relative_gap(attribution_sum, dz)


def completeness_summary(err: np.ndarray, steps: int | None) -> dict:
    """JSON-ready summary of :func:`completeness_error`: median, 90th percentile, beats, steps (samples) and
    whether the median is within :data:`COMPLETENESS_TOLERANCE`."""
    err = np.asarray(err, float)
    med = float(np.median(err)) if len(err) else float("nan")
    return {"median_rel_error": med, "p90_rel_error": float(np.percentile(err, 90)) if len(err) else float("nan"),
            "n": int(len(err)), "steps": None if steps is None else int(steps), "tolerance": COMPLETENESS_TOLERANCE,
            "ok": bool(med <= COMPLETENESS_TOLERANCE)}


def completeness_reference(model: Any, method: AttributionMethod, x: np.ndarray, target: np.ndarray, *,
                           batch_size: int = 256, memory_budget: int | None = None) -> tuple[np.ndarray | None, str]:
    """What ``sum(map)`` of ``method`` should equal per beat, by the method's completeness axiom.

    * ``integrated_gradients``, ``deeplift``: ``z_t(x) - z_t(x0)`` with ``x0 = method.baseline_for(x)``
      (exact for DeepLIFT on networks of linear layers and elementwise nonlinearities; IG's quadrature error).
    * ``expected_gradients``: ``z_t(x) - mean_b z_t(b)`` over its background (a zero beat when none): in expectation only.
    * ``lrp`` with the epsilon rule everywhere: ``z_t(x)`` (less what the biases and ``eps`` absorb).

    Args:
      model: as :func:`completeness_error`; x: f32[N, T, L]; target: i32[N].
    Returns:
      ``(dz f64[N], "")``, or ``(None, why)`` for methods without an axiom here (or a random baseline).
    """
    make, params = model_parts(model)
    x = np.asarray(x, np.float32)
    t = np.asarray(target, np.int32)
    kw = dict(static=(make,), batch_size=batch_size, memory_budget=memory_budget)
    name = method.name
    if name in ("integrated_gradients", "deeplift"):
        method = method.for_model(model_info_of(model))
        if method.needs_key:
            return None, f"baseline {method.baseline!r} is random"
        x0 = np.asarray(method.baseline_for(x), np.float32)
        dz = map_batches(_logit_gap, (params,), (x, x0, t), desc=f"{name} completeness", **kw).outputs
        return np.asarray(dz, np.float64), ""
    if name == "expected_gradients":
        bg = np.zeros((1, *x.shape[1:]), np.float32) if method.background is None else np.asarray(method.background.array, np.float32)
        bg = bg[None] if bg.ndim == 2 else bg
        z_bg = np.asarray(map_batches(logits_step, (params,), (bg,), desc="background logits", **kw).outputs, np.float64).mean(0)
        z = np.asarray(map_batches(logits_step, (params,), (x,), desc=f"{name} completeness", **kw).outputs, np.float64)
        return np.take_along_axis(z, t[:, None], 1)[:, 0] - z_bg[t], ""
    if name == "lrp":
        if (method.rule, method.dense_rule) != ("epsilon", "epsilon"):
            return None, "only LRP's epsilon rule conserves relevance"
        z = np.asarray(map_batches(logits_step, (params,), (x,), desc=f"{name} completeness", **kw).outputs, np.float64)
        return np.take_along_axis(z, t[:, None], 1)[:, 0], ""
    return None, f"{name} has no completeness axiom here"


def relative_gap(attribution_sum: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """``|sum(A) - dz| / |dz|`` per beat, 0 where both agree exactly (inf where dz = 0 and sum(A) != 0)."""
    dz = np.asarray(dz, np.float64)
    gap = np.abs(np.asarray(attribution_sum, np.float64) - dz)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap == 0, 0.0, gap / np.abs(dz))


def method_completeness(model: Any, method: AttributionMethod, x: np.ndarray, target: np.ndarray, maps: np.ndarray,
                        **kw) -> dict:
    """:func:`completeness_summary` of ``method``'s maps f[N, T, L] against :func:`completeness_reference`, with
    ``"method"``; ``{"method", "not_measured": why}`` when the method has no axiom here."""
    dz, why = completeness_reference(model, method, x, target, **kw)
    if dz is None:
        return {"method": method.name, "not_measured": why}
    err = relative_gap(np.asarray(maps).sum((1, 2), dtype=np.float64), dz)
    return {"method": method.name, **completeness_summary(err, getattr(method, "steps", getattr(method, "n", None)))}


# -- deletion / insertion by segment ---------------------------------------------------


@functools.partial(jax.jit, static_argnums=(0,))
def target_prob(make, params, x, target):
    """f32[B]: softmax probability of ``target`` i32[B] for beats x f32[B, T, L]."""
    z = make(params).logit_fn(x)
    return jnp.take_along_axis(jax.nn.softmax(z, -1), target[:, None], 1)[:, 0]


class _CurvePair:
    """Two probability curves per map (``CURVES``, e.g. deletion and insertion) over an x axis
    (the field named ``AXIS``), with per-beat AUCs in ``<curve>_auc``: the summary and the atomic
    save that every such check shares. Subclasses are frozen dataclasses holding those fields."""

    AXIS: str
    CURVES: tuple[str, str]

    def _extra_summary(self) -> dict:
        return {}

    def summary(self) -> dict:
        out = {f"{c}_auc": {k: float(np.mean(v)) for k, v in getattr(self, f"{c}_auc").items()} for c in self.CURVES}
        out.update({c: {k: v.tolist() for k, v in getattr(self, c).items()} for c in self.CURVES})
        out.update(self._extra_summary())
        return out

    def save(self, out_dir: str | os.PathLike, name: str) -> None:
        """``<name>.json`` (the summary) and ``<name>.npz`` (the axis and per-beat AUCs), each atomic."""
        from ecgjax.io import atomic_savez, atomic_write_json

        atomic_write_json(os.path.join(out_dir, f"{name}.json"), self.summary())
        arrays = {self.AXIS: getattr(self, self.AXIS)}
        for k in getattr(self, self.CURVES[0]):
            arrays.update({f"{c}_auc__{k}": getattr(self, f"{c}_auc")[k] for c in self.CURVES})
        atomic_savez(os.path.join(out_dir, f"{name}.npz"), **arrays)


@dataclasses.dataclass(frozen=True)
class FaithfulnessResult(_CurvePair):
    """Attributes:
    steps: i64[K+1] number of segments deleted/inserted (0..K, K = the most segments of
      real signal that any beat has; a beat with fewer is fully deleted from its own count on).
    deletion, insertion: {name: f64[K+1]} mean target probability over beats.
    deletion_auc, insertion_auc: {name: f64[N]} per-beat area under the curve (x axis k/K in [0, 1]).
    """

    AXIS = "steps"
    CURVES = ("deletion", "insertion")
    steps: np.ndarray
    deletion: dict
    insertion: dict
    deletion_auc: dict
    insertion_auc: dict

    def save(self, out_dir: str | os.PathLike, name: str = "faithfulness") -> None:
        super().save(out_dir, name)


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


def _segment_ranking(shape, maps, r, lo, hi, fs, seg_s, n_per_side, random_control, seed):
    """``(ids i32[N, T, L], exists bool[N, S], {name: rank i64[N, S]})``: each sample's segment
    (``segment_ids``), which segments hold real signal, and each map's ranking of them by mean |map|
    (0 = most attributed; S for a segment that does not exist), plus ``"random_order"``."""
    from ecgjax import timebase
    from ecgjax.analysis.segments import segment_ids

    N, T, L = shape
    w = timebase.to_samples(seg_s, fs)
    ids = segment_ids(r, lo, hi, T, L, w, n_per_side)
    S = 2 * n_per_side * L
    exists = np.zeros((N, S + 1), bool)  # column S collects the samples outside every segment
    np.put_along_axis(exists, np.where(ids >= 0, ids, S).reshape(N, -1), True, axis=1)
    exists = exists[:, :S]
    if not exists.any():
        raise ValueError("no beat has a segment of real signal: check r, lo, hi and fs")
    ranks = {name: _existing_first(-_absmean_segments(m, shape, name, r, lo, hi, fs, seg_s, n_per_side), exists)
             for name, m in maps.items()}
    if random_control:
        ranks["random_order"] = _existing_first(np.random.default_rng(seed).random((N, S)), exists)
    return ids, exists, ranks


def _sample_rank(rk: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """i64[N, T, L]: the rank of each sample's segment (S for samples outside every segment)."""
    N, S = rk.shape
    return np.where(ids >= 0, np.take_along_axis(rk, np.maximum(ids, 0).reshape(N, -1), 1).reshape(ids.shape), S)


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
    make, params = model_parts(model)
    x = np.asarray(x, np.float32)
    N, T, L = x.shape
    target = np.asarray(target, np.int32)
    ids, exists, ranks = _segment_ranking(x.shape, maps, r, lo, hi, fs, seg_s, n_per_side, random_control, seed)
    K = int(exists.sum(1).max())

    def scores(xs):
        return map_batches(target_prob, (params,), (xs, target), static=(make,), batch_size=batch_size,
                           memory_budget=memory_budget, progress=bar).outputs

    steps = np.arange(K + 1)
    dele, ins, dauc, iauc = {}, {}, {}, {}
    base_x = np.full_like(x, baseline)
    with Bar("deletion/insertion curves", 2 * len(ranks) * len(steps) * N) as bar:
        for name, rk in ranks.items():
            rk_s = _sample_rank(rk, ids)
            dcur, icur = np.empty((K + 1, N)), np.empty((K + 1, N))
            for k in steps:
                sel = rk_s < k
                dcur[k] = scores(np.where(sel, baseline, x))
                icur[k] = scores(np.where(sel, x, base_x))
            dele[name], ins[name] = dcur.mean(1), icur.mean(1)
            dauc[name] = np.trapezoid(dcur, steps / K, axis=0)
            iauc[name] = np.trapezoid(icur, steps / K, axis=0)
    return FaithfulnessResult(steps, dele, ins, dauc, iauc)


# -- ROAD: remove and debias ---------------------------------------------------------------

ROAD_FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def linear_impute(x: np.ndarray, remove: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """ROAD's linear imputation in one dimension: removed samples take the values that make each the
    mean of its neighbours in time (within the beat's real signal ``lo <= t < hi``, lead by lead).

    In 1-D that system's solution is the straight line between the nearest kept samples on either
    side of a removed run, and the nearest kept value where the run touches the end of the real
    signal; a lead with nothing kept becomes 0. Samples outside the real signal are left as they are.

    Args:
      x: f[N, T, L]; remove: bool[N, T, L]; lo, hi: i[N] valid range.
    Returns:
      f32[N, T, L].
    """
    x = np.asarray(x, np.float32)
    N, T, L = x.shape
    t = np.arange(T)[None, :, None]
    valid = (t >= np.asarray(lo)[:, None, None]) & (t < np.asarray(hi)[:, None, None])
    gone = np.asarray(remove, bool) & valid
    known = valid & ~gone
    prev = np.maximum.accumulate(np.where(known, t, -1), axis=1)
    nxt = np.flip(np.minimum.accumulate(np.flip(np.where(known, t, T), 1), axis=1), 1)
    xp = np.take_along_axis(x, np.clip(prev, 0, T - 1), 1)
    xn = np.take_along_axis(x, np.clip(nxt, 0, T - 1), 1)
    has_p, has_n = prev >= 0, nxt < T
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(has_p & has_n, (t - prev) / np.maximum(nxt - prev, 1), 0.0)
    v = np.where(has_p & has_n, xp + w * (xn - xp), np.where(has_p, xp, np.where(has_n, xn, 0.0)))
    return np.where(gone, v, x).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class RoadResult(_CurvePair):
    """Attributes:
    fractions: f64[P] share of each beat's real segments removed.
    morf, lerf: {name: f64[P]} mean target probability over beats with the most (MoRF) or the
      least (LeRF) relevant segments removed and imputed.
    morf_auc, lerf_auc: {name: f64[N]} per-beat area under the curve over ``fractions``
      (normalised by its span, so a constant probability p gives p).
    noise: the imputation noise's standard deviation (units of x).
    """

    AXIS = "fractions"
    CURVES = ("morf", "lerf")
    fractions: np.ndarray
    morf: dict
    lerf: dict
    morf_auc: dict
    lerf_auc: dict
    noise: float

    def _extra_summary(self) -> dict:
        m = {k: float(np.mean(v)) for k, v in self.morf_auc.items()}
        return {"fractions": self.fractions.tolist(), "noise": self.noise,
                "lerf_minus_morf": {k: float(np.mean(self.lerf_auc[k])) - m[k] for k in m}}

    def save(self, out_dir: str | os.PathLike, name: str = "road") -> None:
        super().save(out_dir, name)


def road(
    model: Any,
    x: np.ndarray,
    target: np.ndarray,
    maps: dict[str, np.ndarray],
    r: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fs: float,
    *,
    fractions: Sequence[float] = ROAD_FRACTIONS,
    noise: float = 0.01,
    seg_s: float = 0.1,
    n_per_side: int = 12,
    random_control: bool = True,
    seed: int = 0,
    batch_size: int = 256,
    memory_budget: int | None = None,
) -> RoadResult:
    """ROAD, remove and debias (Rong et al. 2022): MoRF and LeRF curves with noisy linear imputation.

    Deletion by a constant leaves the shape of what was removed in the beat (a flat run is itself
    class information, and out of distribution); ROAD fills removed samples by :func:`linear_impute`
    plus Gaussian noise of std ``noise`` (the same draw for every ranking), so the model sees a
    plausible beat and the curve measures the information removed. Segments (0.1 s, real signal only)
    are ranked per beat by mean |map| as in :func:`deletion_insertion`; at fraction p the
    ``round(p n_i)`` most (MoRF) or least (LeRF) relevant of beat i's ``n_i`` segments are removed.

    Args:
      model, x, target, maps, r, lo, hi, fs, seg_s, n_per_side, random_control, seed: as :func:`deletion_insertion`.
      fractions: shares of segments removed (Rong et al. use 10-90 %).
      noise: imputation noise std, in the units of x.
    Returns:
      :class:`RoadResult`: a faithful map gives a low MoRF curve and a high LeRF curve.
    """
    make, params = model_parts(model)
    x = np.asarray(x, np.float32)
    target = np.asarray(target, np.int32)
    N = len(x)
    fr = np.asarray(fractions, np.float64)
    if fr.ndim != 1 or len(fr) < 2 or (fr < 0).any() or (fr > 1).any() or (np.diff(fr) <= 0).any():
        raise ValueError(f"fractions must be at least two increasing values in [0, 1], got {list(fractions)}")
    ids, exists, ranks = _segment_ranking(x.shape, maps, r, lo, hi, fs, seg_s, n_per_side, random_control, seed)
    n_i = exists.sum(1)
    eps = [np.random.default_rng([seed, j]).normal(0.0, noise, x.shape).astype(np.float32) for j in range(len(fr))]

    def scores(xs):
        return map_batches(target_prob, (params,), (xs, target), static=(make,), batch_size=batch_size,
                           memory_budget=memory_budget, progress=bar).outputs

    morf, lerf, mauc, lauc = {}, {}, {}, {}
    with Bar("ROAD curves", 2 * len(ranks) * len(fr) * N) as bar:
        for name, rk in ranks.items():
            rk_s = _sample_rank(rk, ids)
            cur = {"morf": np.empty((len(fr), N)), "lerf": np.empty((len(fr), N))}
            for j, p in enumerate(fr):
                k = np.rint(p * n_i).astype(np.int64)[:, None, None]
                n3 = n_i[:, None, None]
                for kind, gone in (("morf", rk_s < k), ("lerf", (rk_s >= n3 - k) & (rk_s < n3))):
                    cur[kind][j] = scores(np.where(gone, linear_impute(x, gone, lo, hi) + eps[j], x))
            morf[name], lerf[name] = cur["morf"].mean(1), cur["lerf"].mean(1)
            span = fr[-1] - fr[0]
            mauc[name] = np.trapezoid(cur["morf"], fr, axis=0) / span
            lauc[name] = np.trapezoid(cur["lerf"], fr, axis=0) / span
    return RoadResult(fr, morf, lerf, mauc, lauc, float(noise))
