"""Query-based latent space traversal (qLST, Vessies et al. 2021) for any ecgjax classifier.

A query is a target class per beat. For each beat, starting at its posterior
mean ``z0 = E[z|x]`` under a ``BeatVAE``, Adam in latent space minimises

    -log p(target | decode(z))  +  proximity * ||z - z0||^2 / 2

(the classifier's log-probability of the query on the generated beat, and a
penalty for moving away from the beat: the change stays what the query needs.
Without it some synthetic beats stall on a plateau short of the target; a
penalty towards the prior mean instead, ``||z||^2``, morphs every beat towards
the average beat and changes its QRS as much as the queried feature). The
prior's log-density along the path is returned, to check against
``prior_bound``. The beat's *direction* is ``z* - z0``; the path
is ``z0 + a (z* - z0)`` for ``a`` in ``linspace(0, 1, n_points)``, and
decoding its points gives the generated beats that morph the way the
classifier's decision moves. Where qLST trains a query network, this
optimises per beat: no network to fit per classifier, and beats are
independent (Adam is elementwise), so whole classes run as one batch.

Only the classifier's forward pass (``x -> logits``, in eval mode) is used,
so any classifier of the model contract works; both models' parameters
are traced arguments of one compiled program, run over the beats by
``batched.map_batches``. A two-input classifier (``rr_net``: RR features as
F channels after the L leads) is traversed with the beat's extra channels held
fixed: the VAE generates the L leads, the RR context stays the beat's own.
The classifier reads a decoded beat as it reads a real one (``vae.as_input``:
the window's padding kept, the protocol's per-beat normalisation applied
again), as in the classifier-on-reconstructions check.

A *parameter query* (``traverse_parameter``) asks instead for a measured
parameter changed by a given amount ("QRS width + 40 ms"): the model is a
regressor of the parameter (or any differentiable measurement), and the
objective the squared distance of its output on the generated beat to the
value on the beat's reconstruction plus the change.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from scipy import stats

from ecgjax.batched import map_batches
from ecgjax.errors import DataError
from ecgjax.generative.vae import as_input, valid_mask
from ecgjax.models.base import eval_split


@dataclasses.dataclass(frozen=True)
class Traversal:
    """Paths of B beats towards their targets, P points each.

    Attributes:
      z: f32[B, P, D] latent points (``z[:, 0]`` the beats' posterior means).
      beats: f32[B, P, T, L] decoded points, as the classifier read them (``vae.as_input``).
      prob: f32[B, P] the classifier's probability of the target at each point.
      prior_logpdf: f32[B, P] log N(z; 0, I) at each point.
      direction: f32[B, D] ``z[:, -1] - z[:, 0]``.
      target: i32[B] the query (target class) per beat.
    """

    z: np.ndarray
    beats: np.ndarray
    prob: np.ndarray
    prior_logpdf: np.ndarray
    direction: np.ndarray
    target: np.ndarray

    def spearman(self) -> np.ndarray:
        """f64[B]: Spearman rho between the position along the path and the target's probability (NaN if constant)."""
        return spearman_rows(self.prob)

    def change(self) -> np.ndarray:
        """f32[B, T, L]: |end - start| of the generated beats (where the traversal changed each beat)."""
        return np.abs(self.signed_change())

    def signed_change(self) -> np.ndarray:
        """f32[B, T, L]: end - start of the generated beats (the traversal's direction in beat space)."""
        return self.beats[:, -1] - self.beats[:, 0]


def normal_logpdf(z: jnp.ndarray) -> jnp.ndarray:
    """log N(z; 0, I) per row: f32[..., D] -> f32[...]."""
    return -0.5 * (jnp.sum(z**2, axis=-1) + z.shape[-1] * jnp.log(2 * jnp.pi))


PRIOR_MASS = 0.99  # the default bound: the sphere holding this mass of N(0, I_D)


def prior_bound(latent: int, mass: float = PRIOR_MASS) -> float:
    """The prior log-density on the sphere holding ``mass`` of N(0, I_D): points above it lie inside that sphere."""
    r2 = stats.chi2.ppf(mass, latent)
    return float(-0.5 * (r2 + latent * np.log(2 * np.pi)))


@functools.cache
def _traverse_fn(cls_graphdef, vae_graphdef, n_points: int, query: str = "class", normalisation: str = "none"):
    """The compiled traversal, one program per classifier, VAE, ``n_points``, query and normalisation: the
    optimiser's settings (``hp``: steps i32[], lr, proximity and the prior ball's squared radius radius2 f32[]) are
    arguments, so another setting runs without compiling again. ``query``: ``"class"`` (``target`` i32[B]: minimise
    -log p(target), report p(target)) or ``"value"`` (``target`` f32[B]: the change of output 0 asked for; minimise
    (out0 - (out0(decode(z0)) + target))^2 / 2, report out0). The classifier reads each decoded beat through ``vae.as_input`` (the window's
    padding and ``normalisation``), and the returned beats are what it read."""
    @jax.jit
    def run(cls_state, vae_params, hp, x, target, valid):
        tx = optax.adam(hp["lr"])
        proximity = hp["proximity"]
        model = nnx.merge(cls_graphdef, cls_state)  # x f32[B, T, L(+F)] -> logits f32[B, C]
        vae = nnx.merge(vae_graphdef, vae_params)
        n_leads = vae.settings.in_shape[1]
        leads, extra = x[..., :n_leads], x[..., n_leads:]  # extra: the fixed F channels of a two-input model

        def generate(z):  # z f32[B', D] -> the beats the classifier reads, B' = B * P (beat-major)
            reps = z.shape[0] // leads.shape[0]
            rep = lambda v: jnp.repeat(v, reps, axis=0)  # noqa: E731
            return as_input(vae.decode(z), rep(leads), rep(valid), normalisation)

        def logit_fn(beats):  # beats f32[B', T, L], B' = B * P (beat-major: each beat's P points in a row)
            reps = beats.shape[0] // extra.shape[0]
            return model(jnp.concatenate([beats, jnp.repeat(extra, reps, axis=0)], axis=-1))

        z0 = vae.encode(leads)[0]
        if query == "value":
            goal = jax.lax.stop_gradient(logit_fn(generate(z0))[:, 0]) + target  # from the reconstruction's value

        def query_loss(z):  # f32[B]
            out = logit_fn(generate(z))
            if query == "value":
                return 0.5 * (out[:, 0] - goal) ** 2
            return -jnp.take_along_axis(jax.nn.log_softmax(out, axis=-1), target[:, None], axis=1)[:, 0]

        def objective(z):  # the sum over beats: each beat's gradient is its own (beats are independent)
            return jnp.sum(query_loss(z) + proximity * 0.5 * jnp.sum((z - z0) ** 2, axis=-1))

        radius = jnp.maximum(jnp.sqrt(hp["radius2"]), jnp.linalg.norm(z0, axis=-1, keepdims=True))  # [B, 1]

        def body(_, carry):
            z, opt = carry
            upd, opt = tx.update(jax.grad(objective)(z), opt, z)
            z = optax.apply_updates(z, upd)
            norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
            return z * jnp.minimum(1.0, radius / jnp.maximum(norm, 1e-12)), opt  # back onto the prior's ball

        z_end, _ = jax.lax.fori_loop(0, hp["steps"], body, (z0, tx.init(z0)))
        a = jnp.linspace(0.0, 1.0, n_points)
        zs = z0[:, None] + a[None, :, None] * (z_end - z0)[:, None]  # [B, P, D]
        b, p, d = zs.shape
        beats = generate(zs.reshape(b * p, d))
        out = logit_fn(beats)
        if query == "value":
            score = out[:, 0].reshape(b, p)
        else:
            probs = jax.nn.softmax(out, axis=-1)
            score = jnp.take_along_axis(probs.reshape(b, p, -1), jnp.broadcast_to(target[:, None, None], (b, p, 1)), axis=2)[..., 0]
        return {"z": zs, "beats": beats.reshape(b, p, *beats.shape[1:]), "score": score,
                "prior_logpdf": normal_logpdf(zs), "direction": z_end - z0}

    return run


def traverse(
    classifier: nnx.Module,
    vae: nnx.Module,
    x: np.ndarray,
    target,
    *,
    steps: int = 300,
    lr: float = 0.1,
    proximity: float = 0.05,
    n_points: int = 11,
    prior_mass: float | None = PRIOR_MASS,
    batch_size: int = 256,
    memory_budget: int | None = None,
    progress: bool = True,
    lo=None,
    hi=None,
    normalisation: str = "none",
) -> Traversal:
    """Traverse the VAE's latent space from each beat towards its target class.

    Args:
      classifier: any model of the contract (``x: f32[B, T, L(+F)] -> logits f32[B, C]``), used in eval mode.
      vae: a ``BeatVAE`` over the same window (T samples, L leads).
      x: f32[N, T, L] beats to explain, or f32[N, T, L+F] for a two-input classifier (the F channels
        after the leads, e.g. RR features, are held fixed along the path).
      target: int or i[N]: the query class per beat.
      steps, lr: Adam in latent space.
      proximity: weight of ||z - z0||^2 / 2 (larger: shorter paths, smaller changes, lower end probabilities).
      n_points: P, points along each path (start and end included).
      prior_mass: the path stays inside the sphere holding this mass of the prior (None: unconstrained).
      batch_size, memory_budget, progress: as ``batched.map_batches`` (fixed padded batches, one compile).
      lo, hi: i[N] the beats' valid ranges (default: every sample valid); normalisation: the beats' protocol
        normalisation. The classifier reads each generated beat as it reads a real one (``vae.as_input``).

    Returns:
      A ``Traversal`` of the N beats (``beats``: the L generated leads only, as the classifier read them).
    """
    x = _check_beats(classifier, vae, x)
    target = np.ascontiguousarray(np.broadcast_to(np.asarray(target, np.int32), (len(x),)))
    out = _run(classifier, vae, x, target, "class", steps=steps, lr=lr, proximity=proximity, n_points=n_points,
               prior_mass=prior_mass, batch_size=batch_size, memory_budget=memory_budget, progress=progress,
               valid=_valid(x, lo, hi), normalisation=normalisation)
    return Traversal(target=np.asarray(target), prob=out.pop("score"), **out)


def _check_beats(classifier, vae, x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    t, n_leads = vae.settings.in_shape
    if x.ndim != 3 or x.shape[1] != t or x.shape[2] < n_leads:
        raise DataError(f"beats to traverse must be f32[N, {t}, {n_leads}] (the VAE's window; more channels after "
                        f"the leads for a two-input classifier), got {x.shape}")
    want = getattr(classifier, "in_shape", None)
    if want is not None and tuple(want) != x.shape[1:]:
        raise DataError(f"the classifier reads beats of shape {tuple(want)} but the beats to traverse are "
                        f"{x.shape[1:]}; pass the classifier's own input (leads, then its extra channels)")
    return x


def _valid(x: np.ndarray, lo, hi) -> np.ndarray:
    """f32[N, T]: 1 on the beats' valid samples (all, without ``lo``/``hi``)."""
    if lo is None:
        return np.ones(x.shape[:2], np.float32)
    return valid_mask(lo, hi, x.shape[1]).astype(np.float32)


def _run(model, vae, x, target, query: str, *, steps, lr, proximity, n_points, prior_mass, batch_size, memory_budget,
         progress, valid, normalisation) -> dict:
    cls_graphdef, cls_state = eval_split(model)
    vae_graphdef, vae_params = nnx.split(vae)
    radius2 = float("inf") if prior_mass is None else float(stats.chi2.ppf(prior_mass, vae.settings.latent))
    run = _traverse_fn(cls_graphdef, vae_graphdef, int(n_points), query, normalisation)
    hp = {"steps": np.int32(steps), "lr": np.float32(lr), "proximity": np.float32(proximity), "radius2": np.float32(radius2)}
    return dict(map_batches(run, (cls_state, vae_params, hp), (x, target, valid), batch_size=batch_size,
                            memory_budget=memory_budget, desc=f"traversing ({steps} steps)", progress=progress).outputs)


@dataclasses.dataclass(frozen=True)
class ParameterTraversal:
    """Paths of B beats towards a changed value of a measured parameter (QRS width, RR, ...), P points each.

    Attributes:
      z, beats, prior_logpdf, direction: as ``Traversal``.
      value: f32[B, P] the regressor's prediction of the parameter at each point (the parameter's unit).
      goal: f32[B] the value asked for: the prediction on the beat's reconstruction plus the query's change.
      delta: the query's change (the parameter's unit).
    """

    z: np.ndarray
    beats: np.ndarray
    value: np.ndarray
    goal: np.ndarray
    prior_logpdf: np.ndarray
    direction: np.ndarray
    delta: float

    def spearman(self) -> np.ndarray:
        """f64[B]: Spearman rho between the position along the path and the parameter's value (NaN if constant)."""
        return spearman_rows(self.value)

    def reached(self, tolerance: float = 0.5) -> np.ndarray:
        """bool[B]: the path's end moved the value at least ``1 - tolerance`` of ``delta`` the asked way."""
        return (self.value[:, -1] - self.value[:, 0]) / self.delta >= 1.0 - tolerance


def spearman_rows(v: np.ndarray) -> np.ndarray:
    """f64[B]: Spearman rho between the position along each path and its values f[B, P] (NaN where constant)."""
    pos = np.arange(v.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        return np.array([stats.spearmanr(pos, p).statistic for p in v], np.float64)


def traverse_parameter(
    regressor: nnx.Module,
    vae: nnx.Module,
    x: np.ndarray,
    delta: float,
    *,
    mean: float = 0.0,
    std: float = 1.0,
    steps: int = 300,
    lr: float = 0.1,
    proximity: float = 0.05,
    n_points: int = 11,
    prior_mass: float | None = PRIOR_MASS,
    batch_size: int = 256,
    memory_budget: int | None = None,
    progress: bool = True,
    lo=None,
    hi=None,
    normalisation: str = "none",
) -> ParameterTraversal:
    """A parameter query: traverse each beat towards "its parameter + ``delta``" (e.g. QRS width +0.04 s).

    The parameter is read from the generated beats by ``regressor`` (any model of the contract with output 0
    the standardised prediction, as ``train.regression.train_regressor`` trains: value = ``mean + std * out0``;
    or any differentiable measurement with one output). Adam in latent space minimises
    ``(out0(decode(z)) - goal)^2 / 2 + proximity * ||z - z0||^2 / 2`` with ``goal`` the value on the beat's
    reconstruction plus ``delta / std``, inside the prior's ball as ``traverse``.

    Args:
      regressor: ``x: f32[B, T, L(+F)] -> f32[B, >=1]`` (output 0 read); vae, x, and the rest (``lo``, ``hi``,
        ``normalisation`` too): as ``traverse``.
      delta: the change asked for, in the parameter's unit; mean, std: the regressor's standardisation.

    Returns:
      A ``ParameterTraversal`` (values in the parameter's unit).
    """
    x = _check_beats(regressor, vae, x)
    if not std > 0 or not np.isfinite(delta) or delta == 0:
        raise DataError(f"a parameter query needs a nonzero finite change and a positive std; got delta {delta}, std {std}")
    target = np.full(len(x), delta / std, np.float32)
    out = _run(regressor, vae, x, target, "value", steps=steps, lr=lr, proximity=proximity, n_points=n_points,
               prior_mass=prior_mass, batch_size=batch_size, memory_budget=memory_budget, progress=progress,
               valid=_valid(x, lo, hi), normalisation=normalisation)
    value = mean + std * np.asarray(out.pop("score"), np.float64)
    return ParameterTraversal(value=value.astype(np.float32), goal=(value[:, 0] + delta).astype(np.float32),
                              delta=float(delta), **out)
