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
from ecgjax.models.base import eval_split


@dataclasses.dataclass(frozen=True)
class Traversal:
    """Paths of B beats towards their targets, P points each.

    Attributes:
      z: f32[B, P, D] latent points (``z[:, 0]`` the beats' posterior means).
      beats: f32[B, P, T, L] decoded points.
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
        pos = np.arange(self.prob.shape[1])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", stats.ConstantInputWarning)
            return np.array([stats.spearmanr(pos, p).statistic for p in self.prob], np.float64)

    def change(self) -> np.ndarray:
        """f32[B, T, L]: |end - start| of the generated beats (where the traversal changed each beat)."""
        return np.abs(self.beats[:, -1] - self.beats[:, 0])


def normal_logpdf(z: jnp.ndarray) -> jnp.ndarray:
    """log N(z; 0, I) per row: f32[..., D] -> f32[...]."""
    return -0.5 * (jnp.sum(z**2, axis=-1) + z.shape[-1] * jnp.log(2 * jnp.pi))


PRIOR_MASS = 0.99  # the default bound: the sphere holding this mass of N(0, I_D)


def prior_bound(latent: int, mass: float = PRIOR_MASS) -> float:
    """The prior log-density on the sphere holding ``mass`` of N(0, I_D): points above it lie inside that sphere."""
    r2 = stats.chi2.ppf(mass, latent)
    return float(-0.5 * (r2 + latent * np.log(2 * np.pi)))


@functools.cache
def _traverse_fn(cls_graphdef, vae_graphdef, steps: int, lr: float, proximity: float, n_points: int, radius2: float):
    tx = optax.adam(lr)

    @jax.jit
    def run(cls_state, vae_params, x, target):
        model = nnx.merge(cls_graphdef, cls_state)  # x f32[B, T, L(+F)] -> logits f32[B, C]
        vae = nnx.merge(vae_graphdef, vae_params)
        n_leads = vae.settings.in_shape[1]
        leads, extra = x[..., :n_leads], x[..., n_leads:]  # extra: the fixed F channels of a two-input model

        def logit_fn(beats):  # beats f32[B', T, L], B' = B * P (beat-major: each beat's P points in a row)
            reps = beats.shape[0] // extra.shape[0]
            return model(jnp.concatenate([beats, jnp.repeat(extra, reps, axis=0)], axis=-1))

        z0 = vae.encode(leads)[0]

        def objective(z):  # the sum over beats: each beat's gradient is its own (beats are independent)
            logp = jax.nn.log_softmax(logit_fn(vae.decode(z)), axis=-1)
            nll = -jnp.take_along_axis(logp, target[:, None], axis=1)[:, 0]
            return jnp.sum(nll + proximity * 0.5 * jnp.sum((z - z0) ** 2, axis=-1))

        radius = jnp.maximum(jnp.sqrt(radius2), jnp.linalg.norm(z0, axis=-1, keepdims=True))  # [B, 1]

        def body(_, carry):
            z, opt = carry
            upd, opt = tx.update(jax.grad(objective)(z), opt, z)
            z = optax.apply_updates(z, upd)
            norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
            return z * jnp.minimum(1.0, radius / jnp.maximum(norm, 1e-12)), opt  # back onto the prior's ball

        z_end, _ = jax.lax.fori_loop(0, steps, body, (z0, tx.init(z0)))
        a = jnp.linspace(0.0, 1.0, n_points)
        zs = z0[:, None] + a[None, :, None] * (z_end - z0)[:, None]  # [B, P, D]
        b, p, d = zs.shape
        beats = vae.decode(zs.reshape(b * p, d))
        probs = jax.nn.softmax(logit_fn(beats), axis=-1)
        prob = jnp.take_along_axis(probs.reshape(b, p, -1), jnp.broadcast_to(target[:, None, None], (b, p, 1)), axis=2)[..., 0]
        return {"z": zs, "beats": beats.reshape(b, p, *beats.shape[1:]), "prob": prob,
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

    Returns:
      A ``Traversal`` of the N beats (``beats``: the L generated leads only).
    """
    x = np.asarray(x, np.float32)
    t, n_leads = vae.settings.in_shape
    if x.ndim != 3 or x.shape[1] != t or x.shape[2] < n_leads:
        raise DataError(f"beats to traverse must be f32[N, {t}, {n_leads}] (the VAE's window; more channels after "
                        f"the leads for a two-input classifier), got {x.shape}")
    want = getattr(classifier, "in_shape", None)
    if want is not None and tuple(want) != x.shape[1:]:
        raise DataError(f"the classifier reads beats of shape {tuple(want)} but the beats to traverse are "
                        f"{x.shape[1:]}; pass the classifier's own input (leads, then its extra channels)")
    target = np.ascontiguousarray(np.broadcast_to(np.asarray(target, np.int32), (len(x),)))
    cls_graphdef, cls_state = eval_split(classifier)
    vae_graphdef, vae_params = nnx.split(vae)
    radius2 = float("inf") if prior_mass is None else float(stats.chi2.ppf(prior_mass, vae.settings.latent))
    run = _traverse_fn(cls_graphdef, vae_graphdef, int(steps), float(lr), float(proximity), int(n_points), radius2)
    out = map_batches(run, (cls_state, vae_params), (x, target), batch_size=batch_size, memory_budget=memory_budget,
                      desc=f"traversing ({steps} steps)", progress=progress).outputs
    return Traversal(target=np.asarray(target), **out)
