"""A beat VAE: the latent space that generative explanations (``generative.traverse``) move through.

``BeatVAE(in_shape=(T, L), latent=D)`` encodes ``x: f32[B, T, L]`` with three
stride-2 convolutions and a linear layer to a diagonal Gaussian
``q(z|x) = N(mu, exp(logvar))`` over ``z: f32[B, D]``, and decodes with a
linear layer, three (upsample x2, convolution) blocks and a crop back to T
samples. It holds only parameters (no BatchNorm, no dropout), so its pure
functions are ``nnx.merge(graphdef, params)``'s methods.

The loss is the negative beta-ELBO per beat (Higgins et al. 2017), with a
Gaussian decoder of fixed ``sigma``, over the beat's valid samples only::

    loss = sum_{valid t, l} (x - x_hat)^2 / (2 sigma^2)  +  beta * KL(q(z|x) || N(0, I))

``train_vae`` trains on the beats it is given (pass training patients' beats
only), ``save_vae`` / ``load_vae`` store it as ``vae.json`` (its settings) plus
an orbax checkpoint, and the metrics (``pearson_r``, ``template_baseline``,
``active_units``, ``qrs_sharpness``) say how faithful and how used the latent space is.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from ecgjax import batched
from ecgjax.data.beats import NORMALISATIONS
from ecgjax.errors import DataError
from ecgjax.io import atomic_write_json, read_json
from ecgjax.models.base import Static, initialise
from ecgjax.models.layers import Conv1d
from ecgjax.progress import Bar

log = logging.getLogger(__name__)

_DOWN = 3  # stride-2 stages: the decoder upsamples by 2**_DOWN and crops


def _down_len(t: int) -> int:
    for _ in range(_DOWN):
        t = -(-t // 2)
    return t


@dataclasses.dataclass(frozen=True)
class VAESettings:
    """What a trained VAE is: its shape, latent size and the loss it was trained with.

    Attributes:
      in_shape: (T, L) of the beats.
      latent: D, the latent size.
      width: channels of the first convolution (doubled at each stage).
      beta: weight of the KL term.
      sigma: the decoder's fixed standard deviation (in the beats' units).
      fs: the beats' sampling rate (Hz).
    """

    in_shape: tuple[int, int]
    latent: int = 16
    width: int = 32
    beta: float = 1.0
    sigma: float = 0.1
    fs: float = 360.0

    def __post_init__(self):
        object.__setattr__(self, "in_shape", tuple(int(s) for s in self.in_shape))
        if self.latent < 1 or self.width < 1 or self.beta < 0 or self.sigma <= 0:
            raise ValueError(f"VAE settings out of range: {self}")


class BeatVAE(nnx.Module):
    """Convolutional VAE over beats ``x: f32[B, T, L]`` with latent ``z: f32[B, D]``."""

    def __init__(self, settings: VAESettings, *, rngs: nnx.Rngs):
        t, l = settings.in_shape
        w, d = settings.width, settings.latent
        self.settings = settings
        self.enc = nnx.List([Conv1d(ci, co, 7, stride=2, rngs=rngs) for ci, co in ((l, w), (w, 2 * w), (2 * w, 4 * w))])
        self.t_lat = _down_len(t)
        self.to_stats = nnx.Linear(self.t_lat * 4 * w, 2 * d, rngs=rngs)
        self.from_z = nnx.Linear(d, self.t_lat * 4 * w, rngs=rngs)
        self.dec = nnx.List([Conv1d(ci, co, 7, rngs=rngs) for ci, co in ((4 * w, 2 * w), (2 * w, w), (w, w))])
        self.out = Conv1d(w, l, 7, rngs=rngs)

    def encode(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        """x: f32[B, T, L] -> (mu f32[B, D], logvar f32[B, D])."""
        h = x
        for conv in self.enc:
            h = nnx.gelu(conv(h))
        stats = self.to_stats(h.reshape(h.shape[0], -1))
        mu, logvar = jnp.split(stats, 2, axis=-1)
        return mu, jnp.clip(logvar, -12.0, 8.0)

    def decode(self, z: jnp.ndarray) -> jnp.ndarray:
        """z: f32[B, D] -> x_hat f32[B, T, L]."""
        h = nnx.gelu(self.from_z(z)).reshape(z.shape[0], self.t_lat, -1)
        for conv in self.dec:
            h = nnx.gelu(conv(jnp.repeat(h, 2, axis=1)))
        return self.out(h)[:, : self.settings.in_shape[0]]

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: f32[B, T, L] -> the reconstruction of the posterior mean, f32[B, T, L]."""
        return self.decode(self.encode(x)[0])


def kl_diag_normal(mu: jnp.ndarray, logvar: jnp.ndarray) -> jnp.ndarray:
    """KL(N(mu, exp(logvar)) || N(0, I)) per row: f32[B, D] x2 -> f32[B]."""
    return 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - 1.0 - logvar, axis=-1)


def valid_mask(lo: np.ndarray, hi: np.ndarray, t: int) -> np.ndarray:
    """bool[N, T]: ``lo <= t < hi`` per beat (``BeatSet.lo``/``hi``)."""
    ts = np.arange(t)[None]
    return (ts >= np.asarray(lo)[:, None]) & (ts < np.asarray(hi)[:, None])


def loss_terms(model: BeatVAE, x, mask, key, *, beta: float, sigma: float):
    """Per-beat negative beta-ELBO and its parts.

    Args:
      x: f32[B, T, L]; mask: f32[B, T] (1 on valid samples); key: the reparameterisation noise.

    Returns:
      dict of f32[B]: ``loss``, ``recon`` (squared error / (2 sigma^2), summed), ``kl``.
    """
    mu, logvar = model.encode(x)
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape)
    err = (model.decode(z) - x) ** 2 * mask[..., None]
    recon = jnp.sum(err, axis=(1, 2)) / (2.0 * sigma**2)
    kl = kl_diag_normal(mu, logvar)
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def make_train_step(graphdef, lr: float, *, beta: float, sigma: float):
    """The step ``(params, opt_state, x, mask, key) -> (params, opt_state, terms)`` of Adam at ``lr`` (donates both
    states; compiled once per VAE, settings and batch shape, however many VAEs are trained)."""
    return functools.partial(_train_step, Static(graphdef), float(lr), float(beta), float(sigma))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3), donate_argnums=(4, 5))
def _train_step(static, lr, beta, sigma, params, opt_state, x, mask, key):
    def loss_fn(params):
        terms = loss_terms(nnx.merge(static.value, params), x, mask, key, beta=beta, sigma=sigma)
        return jnp.mean(terms["loss"]), jax.tree.map(jnp.mean, terms)

    grads, terms = jax.grad(loss_fn, has_aux=True)(params)
    updates, opt_state = optax.adam(lr).update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, terms


def train_vae(
    x: np.ndarray,
    settings: VAESettings,
    *,
    mask: np.ndarray | None = None,
    epochs: int = 20,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    time_budget_s: float | None = None,
) -> tuple[BeatVAE, list[dict]]:
    """Train a VAE on the beats ``x`` (the caller passes training patients' beats only).

    Args:
      x: f32[N, T, L] beats.
      settings: the VAE's shape and loss; ``in_shape`` must equal (T, L).
      mask: bool[N, T] valid samples (default all).
      epochs, batch_size, lr: Adam on shuffled full batches (the ragged tail is dropped).
      seed: parameters, shuffling and the reparameterisation noise.
      time_budget_s: stop before an epoch that would end past this many seconds of training (estimated from the mean
        epoch so far; None: run ``epochs``); ``len(history)`` says how many ran.

    Returns:
      (model, history): one dict per epoch run of the mean ``loss``, ``recon``, ``kl`` per beat.
    """
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or x.shape[1:] != settings.in_shape:
        raise DataError(f"VAE beats must be f32[N, {settings.in_shape[0]}, {settings.in_shape[1]}], got {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("VAE beats contain NaN or inf; clean or drop those beats first")
    m = np.ones(x.shape[:2], np.float32) if mask is None else np.asarray(mask, np.float32)
    n = len(x)
    bs = min(batch_size, n)
    steps_per_epoch = n // bs
    model = initialise(BeatVAE, nnx.Rngs(seed), settings=settings)
    graphdef, params = nnx.split(model)
    opt_state = optax.adam(lr).init(params)
    step = make_train_step(graphdef, lr, beta=settings.beta, sigma=settings.sigma)
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    history = []
    t_start = time.perf_counter()
    with Bar("training VAE", epochs * steps_per_epoch * bs, unit="beats", enabled=progress) as bar:
        bar.compiling()
        for epoch in range(epochs):
            order = rng.permutation(n)
            sums = {"loss": 0.0, "recon": 0.0, "kl": 0.0}
            for i in range(steps_per_epoch):
                idx = np.sort(order[i * bs : (i + 1) * bs])
                key, sub = jax.random.split(key)
                params, opt_state, terms = step(params, opt_state, x[idx], m[idx], sub)
                for k in sums:
                    sums[k] += float(terms[k])
                bar.advance(bs)
            history.append({"epoch": epoch, **{k: v / steps_per_epoch for k, v in sums.items()}})
            log.info("VAE epoch %d: loss %.2f recon %.2f kl %.2f", epoch, *(history[-1][k] for k in ("loss", "recon", "kl")))
            spent = time.perf_counter() - t_start
            if time_budget_s is not None and epoch + 1 < epochs and spent * (epoch + 2) / (epoch + 1) > time_budget_s:
                log.info("VAE: the next epoch would end past the time budget of %.0f s; stopping after %d of %d epochs",
                         time_budget_s, epoch + 1, epochs)
                break
    return nnx.merge(graphdef, params), history


@functools.partial(jax.jit, static_argnums=0)
def _encode_decode(static, params, x):
    model = nnx.merge(static.value, params)
    mu, logvar = model.encode(x)
    return mu, logvar, model.decode(mu)


def reconstruct(model: BeatVAE, x: np.ndarray, *, batch_size: int = 1024, memory_budget: int | None = None,
                progress: bool = False) -> dict[str, np.ndarray]:
    """Posterior means and their decodings: x f32[N, T, L] -> {mu, logvar f32[N, D], x_hat f32[N, T, L]}
    (``ecgjax.batched.map_batches``: one compiled program per model and batch, sharded over the devices)."""
    graphdef, params = nnx.split(model)
    mu, logvar, xh = batched.map_batches(_encode_decode, (params,), (np.asarray(x, np.float32),), static=(Static(graphdef),),
                                         batch_size=batch_size, memory_budget=memory_budget, desc="reconstructing",
                                         progress=progress).outputs
    return {"mu": mu, "logvar": logvar, "x_hat": xh}


# ---------------------------------------------------------------- what a classifier reads


def as_input(x_hat: jnp.ndarray, x: jnp.ndarray, valid: jnp.ndarray, normalisation: str) -> jnp.ndarray:
    """A generated beat as the classifier reads a real one: the window's convention applied to the decoder's output.

    The VAE is trained on the valid samples only (``loss_terms``), so its output outside them is unconstrained, and
    nothing makes it a normalised beat. A real beat reaches the classifier as the protocol made it
    (``data.beats.normalise``); the generated beat is put through the same: the decoder's output on the valid
    samples, the original window's values outside them (its padding: 0, or ``minmax_beat``'s beat-specific
    level), then the protocol's per-beat normalisation again. A normalised real beat is left as it is (the
    normalisations are idempotent). The one place where the classifier-on-reconstructions check
    (``explain.reconstruction_fidelity``) and the traversals (``traverse``) turn decoded beats into
    classifier input. Pure jnp, differentiable (the traversal's gradient passes through it).

    Args:
      x_hat: f32[B, T, L] decoded beats; x: f32[B, T, L] the original (normalised) beats they stand for.
      valid: f32[B, T] 1 on the window's real samples (``valid_mask``); normalisation: the beats' protocol field
        (``minmax_beat`` | ``minmax_lead`` | ``zscore_lead`` | ``none``).

    Returns:
      f32[B, T, L], as ``data.beats.normalise`` of the merged window.
    """
    if normalisation not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {normalisation!r}; choose {', '.join(NORMALISATIONS)}")
    m = valid.astype(x_hat.dtype)[..., None]
    v = m * x_hat + (1.0 - m) * x
    if normalisation == "none":
        return v
    if normalisation == "minmax_beat":  # over all T*L values, padding included; a constant beat unchanged
        lo = jnp.min(v, axis=(1, 2), keepdims=True)
        rng = jnp.max(v, axis=(1, 2), keepdims=True) - lo
        flat = rng == 0
        return jnp.where(flat, v, (v - lo) / jnp.where(flat, 1.0, rng))
    on = m > 0
    lo = jnp.min(jnp.where(on, v, jnp.inf), axis=1, keepdims=True)
    hi = jnp.max(jnp.where(on, v, -jnp.inf), axis=1, keepdims=True)
    varies = hi > lo
    if normalisation == "minmax_lead":
        out = (v - jnp.where(varies, lo, 0.0)) / jnp.where(varies, hi - lo, 1.0)
    else:  # zscore_lead
        cnt = jnp.maximum(jnp.sum(m, axis=1, keepdims=True), 1.0)
        mean = jnp.sum(m * v, axis=1, keepdims=True) / cnt
        var = jnp.sum(m * (v - mean) ** 2, axis=1, keepdims=True) / cnt
        ok = varies & (var > 0)
        out = (v - mean) / jnp.sqrt(jnp.where(ok, var, 1.0))
    return jnp.where(on & varies, out, 0.0)


# ---------------------------------------------------------------- metrics


def pearson_r(x: np.ndarray, x_hat: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-beat Pearson r over valid samples, leads concatenated: f32[N, T, L] x2 -> f64[N] (NaN for a constant beat)."""
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    w = np.ones(x.shape[:2]) if mask is None else np.asarray(mask, np.float64)
    w = np.broadcast_to(w[..., None], x.shape)
    cnt = w.sum(axis=(1, 2))
    xm = (w * x).sum(axis=(1, 2)) / cnt
    hm = (w * x_hat).sum(axis=(1, 2)) / cnt
    dx, dh = (x - xm[:, None, None]) * w, (x_hat - hm[:, None, None]) * w
    den = np.sqrt((dx**2).sum(axis=(1, 2)) * (dh**2).sum(axis=(1, 2)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (dx * dh).sum(axis=(1, 2)) / den


def mse(x: np.ndarray, x_hat: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Per-beat mean squared error over valid samples: f32[N, T, L] x2 -> f64[N]."""
    d = (np.asarray(x, np.float64) - np.asarray(x_hat, np.float64)) ** 2
    w = np.ones(d.shape[:2]) if mask is None else np.asarray(mask, np.float64)
    return (d * w[..., None]).sum(axis=(1, 2)) / (w.sum(axis=1) * d.shape[2])


def qrs_sharpness(x: np.ndarray, x_hat: np.ndarray, r, lo, hi, fs: float, *, half_s: float = 0.05) -> dict[str, np.ndarray]:
    """Does a reconstruction blur the QRS? Slopes and errors within ``half_s`` of R against the rest of the beat.

    Args:
      x, x_hat: f32[N, T, L] beats and their reconstructions; r, lo, hi: i[N] R and the valid range; fs: Hz.

    Returns:
      dict of f64[N]: ``slope_ratio``, the steepest |sample-to-sample step| of the reconstruction within
      ``half_s`` of R over the original's, per beat (max over leads; < 1: the QRS edges are blurred);
      ``mse_qrs`` and ``mse_rest``, the squared error per valid sample within that span and outside it.
    """
    x, x_hat = np.asarray(x, np.float64), np.asarray(x_hat, np.float64)
    n, t, _ = x.shape
    h = max(1, int(round(half_s * fs)))
    ts = np.arange(t)[None]
    r = np.asarray(r)[:, None]
    valid = valid_mask(lo, hi, t)
    near = valid & (np.abs(ts - r) <= h)
    rest = valid & ~near
    step_ok = (near[:, 1:] & near[:, :-1])[..., None]  # a step between two samples of the span
    slope = lambda v: np.max(np.where(step_ok, np.abs(np.diff(v, axis=1)), 0.0), axis=(1, 2))  # noqa: E731
    s0, s1 = slope(x), slope(x_hat)
    err = ((x - x_hat) ** 2).mean(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"slope_ratio": np.where(s0 > 0, s1 / s0, np.nan),
                "mse_qrs": (err * near).sum(axis=1) / near.sum(axis=1),
                "mse_rest": (err * rest).sum(axis=1) / rest.sum(axis=1)}


def template_baseline(x_train: np.ndarray, y_train: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The class-mean-template baseline: each beat "reconstructed" as its class's mean training beat.

    Args:
      x_train: f32[M, T, L], y_train: i[M]; x: f32[N, T, L], y: i[N] (labels of the beats to reconstruct).

    Returns:
      f32[N, T, L]; a class absent from training gets the mean of all training beats.
    """
    overall = x_train.mean(axis=0)
    out = np.empty_like(np.asarray(x, np.float32))
    for c in np.unique(y):
        sel = y_train == c
        out[y == c] = x_train[sel].mean(axis=0) if sel.any() else overall
    return out


def active_units(mu: np.ndarray, *, threshold: float = 0.01) -> tuple[int, np.ndarray]:
    """Active latent units (Burda et al. 2016): Cov_x(E[z|x]) > threshold per dimension.

    Args:
      mu: f32[N, D] posterior means of N beats.

    Returns:
      (count, variance f64[D]).
    """
    var = np.var(np.asarray(mu, np.float64), axis=0)
    return int((var > threshold).sum()), var


# ---------------------------------------------------------------- storage


def save_vae(model: BeatVAE, directory: Path, *, history: list[dict] | None = None) -> None:
    """Store ``vae.json`` (settings, history) and the parameters (orbax) under ``directory``."""
    from ecgjax.train.checkpoint import Checkpoints

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with Checkpoints(directory, every=1, keep=1) as ck:
        ck.save_best(0, nnx.state(model, nnx.Param))
    atomic_write_json(directory / "vae.json", {"settings": dataclasses.asdict(model.settings), "history": history or []})


def load_vae(directory: Path) -> BeatVAE:
    """The VAE ``save_vae`` stored in ``directory``; DataError when there is none."""
    from ecgjax.train.checkpoint import Checkpoints

    directory = Path(directory)
    if not (directory / "vae.json").is_file():
        raise DataError(f"{directory} holds no VAE (no vae.json); train one with ecgjax.generative.vae.train_vae")
    meta = read_json(directory / "vae.json")
    model = initialise(BeatVAE, nnx.Rngs(0), settings=VAESettings(**meta["settings"]))
    with Checkpoints(directory, every=1, keep=1) as ck:
        nnx.update(model, ck.load_best(nnx.state(model, nnx.Param)))
    return model
