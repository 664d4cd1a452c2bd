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
``batched.map_batches``.
"""

from __future__ import annotations

import dataclasses
import functools

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
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.array([stats.spearmanr(pos, p).statistic for p in self.prob], np.float64)

    def change(self) -> np.ndarray:
        """f32[B, T, L]: |end - start| of the generated beats (where the traversal changed each beat)."""
        return np.abs(self.beats[:, -1] - self.beats[:, 0])


def normal_logpdf(z: jnp.ndarray) -> jnp.ndarray:
    """log N(z; 0, I) per row: f32[..., D] -> f32[...]."""
    return -0.5 * (jnp.sum(z**2, axis=-1) + z.shape[-1] * jnp.log(2 * jnp.pi))


def prior_bound(latent: int, mass: float = 0.999) -> float:
    """The prior log-density on the sphere holding ``mass`` of N(0, I_D): points above it lie inside that sphere."""
    r2 = stats.chi2.ppf(mass, latent)
    return float(-0.5 * (r2 + latent * np.log(2 * np.pi)))


@functools.cache
def _traverse_fn(cls_graphdef, vae_graphdef, steps: int, lr: float, proximity: float, n_points: int):
    tx = optax.adam(lr)

    @jax.jit
    def run(cls_state, vae_params, x, target):
        logit_fn = nnx.merge(cls_graphdef, cls_state)  # x f32[B, T, L] -> logits f32[B, C]
        vae = nnx.merge(vae_graphdef, vae_params)
        z0 = vae.encode(x)[0]

        def objective(z):  # the sum over beats: each beat's gradient is its own (beats are independent)
            logp = jax.nn.log_softmax(logit_fn(vae.decode(z)), axis=-1)
            nll = -jnp.take_along_axis(logp, target[:, None], axis=1)[:, 0]
            return jnp.sum(nll + proximity * 0.5 * jnp.sum((z - z0) ** 2, axis=-1))

        def body(_, carry):
            z, opt = carry
            upd, opt = tx.update(jax.grad(objective)(z), opt, z)
            return optax.apply_updates(z, upd), opt

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
    batch_size: int = 256,
    memory_budget: int | None = None,
    progress: bool = True,
) -> Traversal:
    """Traverse the VAE's latent space from each beat towards its target class.

    Args:
      classifier: any model of the contract (``x: f32[B, T, L] -> logits f32[B, C]``), used in eval mode.
      vae: a ``BeatVAE`` over the same window.
      x: f32[N, T, L] beats to explain.
      target: int or i[N]: the query class per beat.
      steps, lr: Adam in latent space.
      proximity: weight of ||z - z0||^2 / 2 (larger: shorter paths, smaller changes, lower end probabilities).
      n_points: P, points along each path (start and end included).
      batch_size, memory_budget, progress: as ``batched.map_batches`` (fixed padded batches, one compile).

    Returns:
      A ``Traversal`` of the N beats.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[1:] != tuple(vae.settings.in_shape):
        raise DataError(f"beats to traverse must be f32[N, {vae.settings.in_shape[0]}, {vae.settings.in_shape[1]}] "
                        f"(the VAE's window), got {x.shape}")
    target = np.ascontiguousarray(np.broadcast_to(np.asarray(target, np.int32), (len(x),)))
    cls_graphdef, cls_state = eval_split(classifier)
    vae_graphdef, vae_params = nnx.split(vae)
    run = _traverse_fn(cls_graphdef, vae_graphdef, int(steps), float(lr), float(proximity), int(n_points))
    out = map_batches(run, (cls_state, vae_params), (x, target), batch_size=batch_size, memory_budget=memory_budget,
                      desc=f"traversing ({steps} steps)", progress=progress).outputs
    return Traversal(target=np.asarray(target), **out)
