"""Shapley-value attributions: expected gradients (GradientSHAP) and KernelSHAP over segment x lead features.

Shapes: ``x: f32[B, T, L]``, ``target: i32[B]``, ``key: key[B]``, ``r: i32[B]``, output ``f32[B, T, L]`` (signed).

Background sets and baselines are **method hyperparameters**, not data passed
with the batch: the contract says row ``i`` depends only on ``x[i]`` (and its
key and R position), so a background must be the same for every beat. It is
held in a :class:`FrozenArray` (a read-only array hashed by content), so the
method stays a hashable, static ``jax.jit`` argument and its ``repr`` (stored in
the runner's ``meta``) names the background by shape and digest. Build one from
training beats with :func:`background_sample` (seeded, without replacement).

* ``expected_gradients`` (GradientSHAP): for each beat, ``n`` samples of a
  background beat ``x0`` (uniform over the background) and a point
  ``a ~ U(0, 1)`` on the path; the map is the mean of
  ``(x - x0) * grad z_target(x0 + a (x - x0))``. Its sum equals
  ``z(x) - E[z(x0)]`` in expectation (completeness of expected gradients).
* ``kernel_shap``: Shapley values of ``M = L x 2K`` features, the 0.1 s
  segments counted outward from each beat's R peak in each lead (the columns of
  ``ecgjax.analysis.segments``, same order), estimated by the Shapley-kernel
  weighted regression of Lundberg & Lee 2017 with the efficiency constraint
  solved exactly. A feature absent from a coalition is replaced by the
  baseline (zeros, or e.g. a background mean beat). The map spreads each
  feature's value evenly over its samples (value / samples), so a beat's map
  sums to ``z(x) - z(baseline)`` when the segments cover the window; samples
  outside every segment are not players (never masked) and get 0.

References: Lundberg & Lee 2017, "A unified approach to interpreting model
predictions" (NeurIPS); Erion et al. 2021, "Improving performance of deep
learning models with axiomatic attribution priors and expected gradients"
(Nature Machine Intelligence); Zhang et al. 2020, "Interpretable deep learning
for automatic diagnosis of 12-lead electrocardiogram" (iScience).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ecgjax import timebase
from ecgjax.attribution import baselines
from ecgjax.attribution.base import NO_INFO, AttributionMethod, scan_unroll, target_grad
from ecgjax.attribution.registry import register
from ecgjax.errors import ConfigError


# -- a hashable array hyperparameter ----------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class FrozenArray:
    """A read-only float32 array, hashed and compared by content (a method field: jit-static).

    ``FrozenArray(a)`` copies ``a``; ``.array`` is the read-only copy; ``digest`` is
    the sha256 of its shape and bytes. ``repr`` is short (shape and digest prefix).
    """

    array: np.ndarray
    digest: str = dataclasses.field(init=False, repr=False)

    def __post_init__(self):
        a = np.array(self.array, dtype=np.float32, copy=True)
        a.setflags(write=False)
        h = hashlib.sha256(repr(a.shape).encode() + a.tobytes()).hexdigest()
        object.__setattr__(self, "array", a)
        object.__setattr__(self, "digest", h)

    def __hash__(self) -> int:
        return hash(self.digest)

    def __eq__(self, other) -> bool:
        return isinstance(other, FrozenArray) and other.digest == self.digest

    def __repr__(self) -> str:
        return f"FrozenArray(shape={self.array.shape}, sha256={self.digest[:16]})"


def background_sample(x: np.ndarray, n: int, seed: int = 0) -> FrozenArray:
    """``n`` beats drawn without replacement from ``x: f32[N, T, L]`` (seeded) -> FrozenArray f32[n, T, L].

    Use training beats (Zhang et al. 2020 used 100 background ECGs).
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"background beats must be f32[N, T, L], got shape {x.shape}")
    if not 1 <= n <= len(x):
        raise ValueError(f"background size n={n} must be in [1, {len(x)}] (the beats available)")
    idx = np.sort(np.random.default_rng(seed).choice(len(x), n, replace=False))
    return FrozenArray(x[idx])


def _background(bg: FrozenArray | None, x: jax.Array) -> jax.Array:
    """f32[NB, T, L] background (a single zero beat when None), checked against the beats' shape."""
    if bg is None:
        return jnp.zeros((1,) + x.shape[1:], x.dtype)
    b = jnp.asarray(bg.array, x.dtype)
    if b.ndim == 2:
        b = b[None]
    if b.ndim != 3 or b.shape[1:] != x.shape[1:]:
        raise ValueError(f"background has shape {bg.array.shape}; beats are {x.shape[1:]} (need f32[NB, T, L] or f32[T, L])")
    return b


# -- expected gradients -------------------------------------------------------------------


@register("expected_gradients")
@dataclasses.dataclass(frozen=True)
class ExpectedGradients(AttributionMethod):
    """Expected gradients / GradientSHAP over a background set of beats.

    ``EG(x) = E_{x0 ~ background, a ~ U(0,1)} [(x - x0) * grad z_target(x0 + a (x - x0))]``,
    estimated with ``n`` samples per beat. Sample ``j`` of beat ``i`` comes from
    ``fold_in(key[i], j)`` only.

    Fields:
      n: samples (background beat, path point) per beat.
      background: f32[NB, T, L] (or f32[T, L]) as a :class:`FrozenArray`
        (:func:`background_sample`); None: one zero beat (then EG is a
        Monte-Carlo integrated gradients from zero), unless ``background_n`` is set.
      background_n, background_seed: a background by data reference: ``explain_run``
        (hence ``ecgjax explain`` and studies) fills ``background`` with
        ``background_sample(training beats, background_n, background_seed)``
        (Zhang et al. 2020 used 100). 0: use ``background`` as given.
      chunk_size: samples evaluated together (memory: ``chunk_size x B`` beats).
      unroll: unroll the scan over chunks (None: on CPU only, ``base.scan_unroll``).
    """

    n: int = 16
    background: FrozenArray | None = None
    background_n: int = 0
    background_seed: int = 0
    chunk_size: int = 4
    unroll: bool | None = None

    kind = "gradient"
    needs_key = True
    multiplies_by_input = True

    def __post_init__(self):
        if self.n < 1 or self.chunk_size < 1:
            raise ValueError(f"expected_gradients needs n >= 1 and chunk_size >= 1, got n={self.n}, chunk_size={self.chunk_size}")
        if self.background is not None and not isinstance(self.background, FrozenArray):
            object.__setattr__(self, "background", FrozenArray(self.background))
        if self.background_n < 0:
            raise ValueError(f"expected_gradients: background_n must be >= 0, got {self.background_n}")

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array) -> jax.Array:
        bg = _background(self.background, x)
        k = min(self.chunk_size, self.n)
        n_chunks = -(-self.n // k)
        js = jnp.arange(n_chunks * k, dtype=jnp.uint32).reshape(n_chunks, k)

        def draw(kk, j):  # one beat's key, sample index -> (background index, alpha)
            k1, k2 = jax.random.split(jax.random.fold_in(kk, j))
            return jax.random.randint(k1, (), 0, bg.shape[0]), jax.random.uniform(k2, (), x.dtype)

        def body(acc, j):  # j: u32[k]
            idx, a = jax.vmap(lambda jj: jax.vmap(lambda kk: draw(kk, jj))(key))(j)  # [k, B] each
            x0 = bg[idx]  # [k, B, T, L]
            d = x[None] - x0
            xs = x0 + a[..., None, None] * d
            g = target_grad(fns, xs.reshape((-1,) + x.shape[1:]), jnp.tile(target, k)).reshape(d.shape)
            w = (j < self.n).astype(x.dtype)[:, None, None, None]
            return acc + jnp.sum(w * d * g, 0), None

        total, _ = jax.lax.scan(body, jnp.zeros_like(x), js, unroll=scan_unroll(self.unroll, n_chunks))
        return total / self.n


# -- KernelSHAP -----------------------------------------------------------------------------


def segment_feature_index(r: jax.Array, T: int, L: int, seg_len: int, n_per_side: int) -> jax.Array:
    """Feature of every sample: i32[B, T, L], ``-1`` outside all segments.

    Feature ``l * 2K + s`` is segment ``s`` of lead ``l``, segments ordered
    ``-K .. -1, +1 .. +K`` around R exactly as ``ecgjax.analysis.segments``:
    ``-k`` covers ``[r - k w, r - (k-1) w)``, ``+k`` covers ``[r + (k-1) w, r + k w)``.
    The jittable twin of ``analysis.segments.segment_ids`` with the whole window valid
    (``r`` may be traced here; a test checks the two agree).

    Args:
      r: i32[B] R position inside each window; seg_len: w samples; n_per_side: K.
    """
    d = jnp.arange(T)[None, :] - jnp.asarray(r, jnp.int32)[:, None]  # [B, T]
    s = jnp.floor_divide(d, seg_len) + n_per_side
    ok = (s >= 0) & (s < 2 * n_per_side)
    f = s[:, :, None] + (2 * n_per_side) * jnp.arange(L)[None, None, :]
    return jnp.where(ok[:, :, None], f, -1).astype(jnp.int32)


@dataclasses.dataclass(frozen=True)
class CoalitionPlan:
    """How a budget of coalitions is spent (computed once per M and budget, in numpy).

    Attributes:
      fixed: bool[Kd, M] fully enumerated coalitions (whole subset sizes, smallest and largest first).
      fixed_w: f64[Kd] their Shapley-kernel weights.
      sizes: i64[S] subset sizes left to sample (s <= M / 2; each draw also adds its complement).
      size_p: f64[S] probability of drawing each size.
      pairs: draws of (coalition, complement) per beat.
      pair_w: weight of each sampled coalition.
    """

    fixed: np.ndarray
    fixed_w: np.ndarray
    sizes: np.ndarray
    size_p: np.ndarray
    pairs: int
    pair_w: float

    @property
    def n_coalitions(self) -> int:
        return len(self.fixed) + 2 * self.pairs


def coalition_plan(M: int, n_evals: int) -> CoalitionPlan:
    """Spend ``n_evals`` coalitions on ``M`` features as shap's KernelExplainer does.

    Kernel mass of subset size ``s`` is proportional to ``(M - 1) / (s (M - s))``
    (the Shapley kernel summed over the ``C(M, s)`` subsets of that size). Sizes
    are taken in pairs ``(s, M - s)`` from the outside in; a pair is enumerated
    completely while the budget left, times its share of the remaining mass,
    covers all its subsets. The rest of the budget is sampled: a size with
    probability proportional to its mass, a uniform subset of it, and its
    complement; each sampled coalition weighs ``mass left / samples``. With
    ``n_evals >= 2^M - 2`` every coalition is enumerated and the regression
    gives the exact Shapley values.
    """
    if M < 2:
        raise ValueError(f"KernelSHAP needs at least 2 features, got M={M}")
    n_sizes, n_paired = (M - 1 + 1) // 2, (M - 1) // 2
    s = np.arange(1, n_sizes + 1)
    mass = (M - 1) / (s * (M - s))
    mass[:n_paired] *= 2
    mass /= mass.sum()
    rem = mass.copy()
    left = n_evals
    fixed, fixed_w, full = [], [], 0
    for i, size in enumerate(s):
        paired = size <= n_paired
        nsub = math.comb(M, int(size)) * (2 if paired else 1)
        if left * rem[i] / nsub < 1 - 1e-8:
            break
        full += 1
        left -= nsub
        if rem[i] < 1:
            rem = rem / (1 - rem[i])
        w = mass[i] / nsub
        for c in itertools.combinations(range(M), int(size)):
            z = np.zeros(M, bool)
            z[list(c)] = True
            fixed.append(z)
            fixed_w.append(w)
            if paired:
                fixed.append(~z)
                fixed_w.append(w)
    sizes, size_p = s[full:], mass[full:]
    pairs = left // 2 if len(sizes) else 0
    weight_left = float(size_p.sum())
    return CoalitionPlan(
        fixed=np.asarray(fixed, bool).reshape(-1, M), fixed_w=np.asarray(fixed_w, np.float64),
        sizes=sizes.astype(np.int64), size_p=size_p / weight_left if len(sizes) else size_p,
        pairs=int(pairs), pair_w=weight_left / (2 * pairs) if pairs else 0.0)


@register("kernel_shap")
@dataclasses.dataclass(frozen=True)
class KernelShap(AttributionMethod):
    """KernelSHAP over 0.1 s segment x lead features around each beat's R peak.

    Per beat: ``phi = argmin sum_k w_k (z(x_{S_k}) - z(b) - sum_{j in S_k} phi_j)^2``
    subject to ``sum_j phi_j = z(x) - z(b)`` (efficiency), solved exactly as one
    KKT system per beat; ``x_S`` keeps the features in ``S`` and takes the
    baseline ``b`` elsewhere; ``w_k`` are Shapley-kernel weights of the
    coalitions chosen by :func:`coalition_plan`. Features with no sample in the
    window (segments beyond its ends) are null players: ``phi_j = 0``.

    The map is ``phi_j / n_j`` on each of feature ``j``'s ``n_j`` samples (0 on
    samples outside every segment, which are not players and never masked), so
    it sums to ``z(x) - z(x_empty)``, ``x_empty`` taking ``b`` on every segment
    (``z(x) - z(b)`` when the segments cover the window).
    :meth:`feature_values` returns ``phi`` itself (f32[B, M], M = L x 2K, in the
    column order of ``ecgjax.analysis.segments``).

    Fields:
      seg_s: segment length in seconds (``timebase.to_samples(seg_s, fs)`` samples at
        the model's sampling rate ``fns.info.fs``, the rate of the data it was built for).
      n_per_side: K segments before and after R per lead.
      n_evals: coalitions evaluated per beat (the budget; plus 2 evaluations for
        ``z(x)`` and ``z(b)``). At least ``min(2M, 2^M - 2)``; ``>= 2^M - 2`` is exact.
      baseline: what masked samples take, one of ``ecgjax.attribution.baselines.BASELINES``
        (as integrated gradients): ``"zeros"``, ``"mean"``, ``"blurred"``, ``"uniform"``
        (from ``fold_in(key[i], 1)``) or ``"given"`` (``baseline_value``, e.g. the
        background mean beat: :meth:`with_background`).
      baseline_value: for ``"given"``: f32[T, L] as a :class:`FrozenArray`.
      blur_sigma: for ``"blurred"``: the Gaussian's standard deviation in samples.
      chunk_size: coalitions evaluated together (memory: ``chunk_size x B`` forward passes).
      unroll: unroll the scan over chunks (None: on CPU only).

    Per-beat R positions ``r: i32[B]`` are passed by the runner
    (``attribute_dataset(..., r=beats.r)``); ``needs_r = True``.
    Coalitions are sampled per beat from ``key[i]``.
    """

    seg_s: float = 0.1
    n_per_side: int = 12
    n_evals: int = 512
    baseline: str = "zeros"
    baseline_value: FrozenArray | None = None
    blur_sigma: float = 18.0
    chunk_size: int = 16
    unroll: bool | None = None

    kind = "perturbation"
    needs_key = True
    needs_r = True

    def __post_init__(self):
        if self.n_per_side < 1 or self.chunk_size < 1 or self.n_evals < 1:
            raise ValueError("kernel_shap needs n_per_side, chunk_size and n_evals >= 1")
        if self.baseline not in baselines.BASELINES:
            raise ValueError(f"kernel_shap: baseline must be one of {baselines.BASELINES}, got {self.baseline!r}")
        if self.baseline_value is not None and not isinstance(self.baseline_value, FrozenArray):
            object.__setattr__(self, "baseline_value", FrozenArray(self.baseline_value))
        if self.baseline == "given" and self.baseline_value is None:
            raise ValueError("kernel_shap: baseline='given' needs baseline_value (KernelShap.with_background(beats))")

    @classmethod
    def with_background(cls, background: np.ndarray | FrozenArray, **kw) -> "KernelShap":
        """An instance whose baseline is the mean beat of ``background: f32[NB, T, L]``."""
        b = background.array if isinstance(background, FrozenArray) else np.asarray(background, np.float32)
        return cls(baseline="given", baseline_value=FrozenArray(b.mean(0) if b.ndim == 3 else b), **kw)

    def supports(self, info) -> str | None:
        if info is None:
            return NO_INFO
        w = timebase.to_samples(self.seg_s, info.fs)
        if w < 1:
            return f"a segment of {self.seg_s} s has no samples at {info.fs:g} Hz"
        M = info.in_shape[1] * 2 * self.n_per_side
        need = min(2 * M, 2**M - 2)
        if self.n_evals < need:
            return f"n_evals={self.n_evals} is below {need} for M={M} features ({info.in_shape[1]} leads x {2 * self.n_per_side} segments)"
        return None

    def feature_values(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array, r: jax.Array | None = None):
        """Shapley values per feature and the two end points.

        Returns:
          (phi f32[B, M], feature index i32[B, T, L] (-1 outside), z(x) f32[B], z(x_empty) f32[B]):
          ``x_empty`` is the beat with every feature masked (samples outside all segments keep ``x``).
        """
        if r is None:
            raise ValueError("kernel_shap needs each beat's R position r: i32[B] (attribute_dataset(..., r=beats.r))")
        info = fns.info
        if (why := self.supports(info)) is not None:
            raise ConfigError(f"kernel_shap cannot explain {getattr(info, 'name', 'this model')}: {why}")
        B, T, L = x.shape
        M = L * 2 * self.n_per_side
        feat = segment_feature_index(r, T, L, timebase.to_samples(self.seg_s, info.fs), self.n_per_side)
        fext = jnp.where(feat < 0, M, feat).reshape(B, T * L)  # column M: outside every segment, never masked
        cnt = jax.vmap(lambda f: jnp.zeros(M + 1, x.dtype).at[f].add(1.0))(fext)  # [B, M + 1]
        active = cnt[:, :M] > 0
        bkeys = jax.vmap(lambda kk: jax.random.fold_in(kk, 1))(key) if self.baseline in baselines.NEEDS_KEY else None
        base = baselines.baseline(self.baseline, x, value=None if self.baseline_value is None else self.baseline_value.array,
                                  sigma=self.blur_sigma, key=bkeys)

        plan = coalition_plan(M, self.n_evals)
        Z = jnp.broadcast_to(jnp.asarray(plan.fixed), (B,) + plan.fixed.shape)
        wts = plan.fixed_w
        if plan.pairs:
            sizes, p = jnp.asarray(plan.sizes), jnp.asarray(plan.size_p, jnp.float32)

            def sample(kk):  # one beat's key -> bool[2 P, M]
                k1, k2 = jax.random.split(kk)
                s = jax.random.choice(k1, sizes, (plan.pairs,), p=p)
                rank = jnp.argsort(jnp.argsort(jax.random.uniform(k2, (plan.pairs, M)), -1), -1)
                z = rank < s[:, None]
                return jnp.concatenate([z, ~z])

            Z = jnp.concatenate([Z, jax.vmap(sample)(key)], 1)
            wts = np.concatenate([wts, np.full(2 * plan.pairs, plan.pair_w)])
        Kn = Z.shape[1]
        k = min(self.chunk_size, Kn)
        n_chunks = -(-Kn // k)
        Zp = jnp.pad(Z, ((0, 0), (0, n_chunks * k - Kn), (0, 0)))
        Zp = jnp.moveaxis(Zp.reshape(B, n_chunks, k, M), 0, 2)  # [n_chunks, k, B, M]

        def tz(xs):  # f32[n, T, L] (n a multiple of B) -> target logit f32[n]
            z = fns.logit_fn(xs)
            t = jnp.tile(target, xs.shape[0] // B)
            return jnp.take_along_axis(z, t[:, None], 1)[:, 0]

        empty = jnp.where(feat < 0, x, base)  # the empty coalition: samples outside every segment are not players
        ends = tz(jnp.concatenate([x, empty]))
        fx, f0 = ends[:B], ends[B:]

        def body(_, zc):  # zc: bool[k, B, M]
            zext = jnp.concatenate([zc, jnp.ones((k, B, 1), bool)], -1)
            keep = jnp.take_along_axis(zext, jnp.broadcast_to(fext[None], (k, B, T * L)), 2).reshape(k, B, T, L)
            xm = jnp.where(keep, x[None], base[None])
            return None, tz(xm.reshape(k * B, T, L)).reshape(k, B)

        _, ys = jax.lax.scan(body, None, Zp, unroll=scan_unroll(self.unroll, n_chunks))
        y = jnp.moveaxis(ys.reshape(n_chunks * k, B), 0, 1)[:, :Kn] - f0[:, None]  # [B, Kn]

        Zf = Z.astype(x.dtype)
        w = jnp.asarray(wts / wts.sum() * Kn, x.dtype)  # scale-free; O(1) entries for the solve
        A = jnp.einsum("bkm,k,bkn->bmn", Zf, w, Zf)
        bv = jnp.einsum("bkm,k,bk->bm", Zf, w, y)
        a = active.astype(x.dtype)
        A = A * a[:, :, None] * a[:, None, :]
        # a ridge of 1e-6 of the mean diagonal on the players keeps the system regular when a small budget
        # leaves features that always move together (they then share their value equally); it moves
        # phi by ~1e-6 relative otherwise and leaves the efficiency row exact. Null players: phi_j = 0.
        ridge = 1e-6 * jnp.trace(A, axis1=1, axis2=2) / jnp.maximum(a.sum(1), 1.0)
        A = A + jax.vmap(jnp.diag)(1.0 - a + ridge[:, None] * a)
        kkt = jnp.concatenate([jnp.concatenate([A, a[:, :, None]], 2),
                               jnp.concatenate([a[:, None, :], jnp.zeros((B, 1, 1), x.dtype)], 2)], 1)
        rhs = jnp.concatenate([bv * a, (fx - f0)[:, None]], 1)
        phi = jnp.linalg.solve(kkt, rhs[..., None])[:, :M, 0] * a
        return phi, feat, fx, f0

    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array, r: jax.Array | None = None) -> jax.Array:
        phi, feat, _, _ = self.feature_values(fns, x, target, key, r)
        B, M = phi.shape
        fext = jnp.where(feat < 0, M, feat).reshape(B, -1)
        cnt = jax.vmap(lambda f: jnp.zeros(M + 1, x.dtype).at[f].add(1.0))(fext)
        per_sample = jnp.concatenate([phi, jnp.zeros((B, 1), x.dtype)], 1) / jnp.maximum(cnt, 1.0)
        return jnp.take_along_axis(per_sample, fext, 1).reshape(x.shape)
