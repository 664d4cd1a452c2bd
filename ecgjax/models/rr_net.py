"""A two-input beat classifier: the beat's waveform and its RR-interval features.

The RR vector rides in the input as F extra channels after the L waveform
leads, each constant over time (``ecgjax.data.rr.append_channels``), so every
pipeline that takes ``x: f32[B, T, C]`` (training, batched attribution, the
``.npz`` maps) works unchanged. The model splits them: ``waveform =
x[..., :L]``, ``rr = mean over time of x[..., L:]``. For a gradient-based
attribution the attribution of RR feature j is therefore exactly the sum over
time of channel ``L + j``'s map (chain rule through the mean), and the
waveform map and the RR attributions come from the same call
(``rr_attributions``).

``n_leads`` and ``rr_features`` are the model's facts that analysis needs:
segment profiles use only the first ``n_leads`` channels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ecgjax.errors import ConfigError
from ecgjax.models.base import DEFAULT_HOOKS, ECGModel, Hooks, LayerSpec
from ecgjax.models.layers import Conv1d, Dropout

INPUTS = ("both", "waveform", "rr")


# Running statistics: s <- m s + (1 - m) batch. 0.9, not Keras' 0.99: with 0.99 an early-stopped run
# (best epoch 0: ~300 steps on DS1) evaluates with 0.99^300 = 5% of the initial variance 1 still in it, which
# for the RR features (variance ~0.02) is 2.6x their variance: the evaluated RR branch saw shrunken
# inputs (docs/results.md, "Why the RR-only model failed").
BN_MOMENTUM = 0.9


def _bn(n: int, rngs: nnx.Rngs, momentum: float = BN_MOMENTUM) -> nnx.BatchNorm:
    return nnx.BatchNorm(n, momentum=momentum, epsilon=1e-3, rngs=rngs)


def rr_attributions(maps: np.ndarray, n_leads: int) -> tuple[np.ndarray, np.ndarray]:
    """Split attribution maps of a two-input model.

    Args:
      maps: f32[N, T, L+F] signed maps over the model's input.
      n_leads: L.

    Returns:
      (waveform, rr): f32[N, T, L] the waveform maps, and f[N, F] the
      attribution of each RR feature (the sum over time of its channel).
    """
    maps = np.asarray(maps)
    return maps[..., :n_leads], maps[..., n_leads:].sum(axis=1)


RR_TRANSFORMS = ("log", "ratios", "ratios+rate")
# rr_transform="ratios": log ratios of the raw features, (numerator, denominator) by name
RATIOS = (("pre", "local"), ("post", "pre"), ("pre", "long"), ("local", "long"), ("post", "local"))
# Reference-free local ratios, each used when the model has both features (ecgjax.data.rr's prev, lmin,
# lmax): prematurity against the previous interval, the spread of the last intervals, pre against the shortest.
LOCAL_RATIOS = (("pre", "prev"), ("lmax", "lmin"), ("pre", "lmin"))
# Features that are already heart-rate-free ratios, each entering as its own log when the model has it
# (ecgjax.data.rr's irreg: the median ratio of successive intervals before the beat, >= 1; plock: the share of the
# P window locked to R over the preceding beats, ecgjax.data.template.atrial_lock, in [0, 1]).
OWN_RATIOS = ("irreg", "plock")
# rr_transform="ratios+rate": the ratios and the heart rate, as the log of this absolute interval (seconds) last;
# with it every absolute interval is a linear function of the RR inputs (log pre = log local + log(pre / local)).
RATE = "local"


def _log_rr(v):
    """The RR branch's input transform: log of the features clipped to [0.05, 20] (elementwise)."""
    return jnp.log(jnp.clip(v, 0.05, 20.0))


def rr_input_matrix(rr_features: tuple[str, ...], transform: str) -> np.ndarray:
    """The RR branch's input as a fixed linear map of the log features: ``log(rr) @ M``.

    ``log``: M is the identity (every feature). ``ratios``: only quantities free
    of the patient's heart rate, the log of each ``*_norm`` feature and the log
    ratios of ``RATIOS`` (prematurity ``pre/local``, compensatory pause
    ``post/pre``, ...), then those of ``LOCAL_RATIOS`` whose two features the
    model has, then the log of each ``OWN_RATIOS`` feature it has; the absolute
    intervals enter only through those ratios. ``ratios+rate``: those columns and
    last the log of ``RATE`` (the local mean RR interval in seconds: the heart rate).

    Returns:
      f32[F, F'].
    """
    f = len(rr_features)
    if transform == "log":
        return np.eye(f, dtype=np.float32)
    if transform not in RR_TRANSFORMS:
        raise ConfigError(f"rr_net: rr_transform must be one of {RR_TRANSFORMS}, got {transform!r}")
    missing = sorted({n for pair in RATIOS for n in pair} - set(rr_features))
    if missing:
        raise ConfigError(f"rr_net: rr_transform='ratios' needs the RR features {missing}; got {list(rr_features)}")
    cols = [np.eye(f, dtype=np.float32)[:, i] for i, n in enumerate(rr_features) if n.endswith("_norm")]
    for num, den in RATIOS + tuple(r for r in LOCAL_RATIOS if set(r) <= set(rr_features)):
        c = np.zeros(f, np.float32)
        c[rr_features.index(num)], c[rr_features.index(den)] = 1.0, -1.0
        cols.append(c)
    cols += [np.eye(f, dtype=np.float32)[:, rr_features.index(n)] for n in OWN_RATIOS if n in rr_features]
    if transform == "ratios+rate":
        cols.append(np.eye(f, dtype=np.float32)[:, rr_features.index(RATE)])
    return np.stack(cols, axis=1)


class RRNet(ECGModel):
    """Waveform CNN + RR MLP, fused by a dense layer.

    x: f32[B, T, L+F] -> logits f32[B, C].

    * waveform branch: 3 x (conv(k) -> BN -> ReLU -> max-pool 2), flatten,
      dense ``hidden``;
    * RR branch: ``rr_transform`` of the features (``log``: the log of each,
      clipped to [0.05, 20]; ``ratios``: heart-rate-free log ratios;
      ``ratios+rate``: those and the heart rate, ``rr_input_matrix``),
      BatchNorm, dense ``rr_hidden``;
    * fusion: concat -> ReLU -> dropout -> dense ``hidden`` -> ReLU -> dense C.

    ``wave_dropout`` (training only; 0: off, no layer): the probability that a
    training beat's whole waveform embedding is dropped before the fusion
    (modality dropout), so the RR branch must decide without the waveform on
    those beats.

    ``rr_features`` names the F trailing channels (none by default: a
    waveform-only model of x f32[B, T, L]). ``inputs`` selects the branches for
    ablations: ``both``, ``waveform`` (RR channels ignored, their attribution
    is 0) or ``rr`` (waveform ignored).
    ``bn_momentum``: every BatchNorm's running-statistics momentum (``BN_MOMENTUM``).
    ``features``: f32[B, T', filters[-1] + F], the last conv map with the RR
    vector appended as channels constant over T' (so ``head(features(x)) ==
    __call__(x)``); with ``inputs="rr"`` T' = 1 and only the RR channels.
    Named layers: ``conv1`` .. (each conv block's output after its max-pool)
    and ``features`` (kind ``"fused"``). Layout ``"channels"``.
    """

    cascade_order = ("out", "fuse", "rr_dense", "rr_bn", "wave_dense", "convs", "bns")

    def __init__(
        self,
        *,
        n_classes: int = 5,
        in_shape=(252, 10),
        rr_features=(),
        inputs: str = "both",
        filters=(16, 32, 32),
        kernel: int = 7,
        hidden: int = 32,
        rr_hidden: int = 16,
        rr_transform: str = "log",
        dropout: float = 0.2,
        conv_impl: str = "auto",
        bn_momentum: float = BN_MOMENTUM,
        wave_dropout: float = 0.0,
        fs: float,
        rngs: nnx.Rngs,
    ):
        self._set_facts(layout="channels", fs=fs, in_shape=in_shape)
        t, c = in_shape
        self.rr_features = tuple(rr_features)
        self.n_leads = c - len(self.rr_features)
        if self.n_leads < 1:
            raise ConfigError(f"rr_net: in_shape {tuple(in_shape)} has {c} channels, fewer than the {len(self.rr_features)} RR features + 1 lead")
        if inputs not in INPUTS:
            raise ConfigError(f"rr_net: inputs must be one of {INPUTS}, got {inputs!r}")
        if inputs == "rr" and not self.rr_features:
            raise ConfigError(f"rr_net: inputs={inputs!r} needs rr_features")
        self.inputs = inputs
        use_wave, use_rr = inputs != "rr", inputs != "waveform" and bool(self.rr_features)
        convs, bns, cin, length = [], [], self.n_leads, t
        for f in filters if use_wave else ():
            convs.append(Conv1d(cin, f, kernel, padding="SAME", impl=conv_impl, rngs=rngs))
            bns.append(_bn(f, rngs, bn_momentum))
            cin, length = f, -(-length // 2)
        self.convs, self.bns = nnx.List(convs), nnx.List(bns)
        self.filters = tuple(int(f) for f in filters) if use_wave else ()
        self.wave_dense = nnx.Linear(length * cin, hidden, rngs=rngs) if use_wave else None
        self.rr_transform = rr_transform
        n_rr_in = rr_input_matrix(self.rr_features, rr_transform).shape[1] if use_rr else 0
        self.rr_bn = _bn(n_rr_in, rngs, bn_momentum) if use_rr else None
        self.rr_dense = nnx.Linear(n_rr_in, rr_hidden, rngs=rngs) if use_rr else None
        self.fuse = nnx.Linear(hidden * use_wave + rr_hidden * use_rr, hidden, rngs=rngs)
        self.drop = Dropout(dropout, rngs=rngs)
        self.out = nnx.Linear(hidden, n_classes, rngs=rngs)
        if not 0.0 <= wave_dropout < 1.0:
            raise ConfigError(f"rr_net: wave_dropout must be in [0, 1), got {wave_dropout!r}")
        # whole rows: the mask is f32[B, 1]. Made last and only when on (taking rngs forks them), so the
        # parameters are those of the model without it and the other models' random streams are unchanged.
        self.wave_drop = Dropout(wave_dropout, broadcast_dims=(1,), rngs=rngs) if wave_dropout and use_wave else None

    def layer_specs(self):
        length, specs = self.in_shape[0], []
        for i, f in enumerate(self.filters):
            length = -(-length // 2)
            specs.append(LayerSpec(f"conv{i + 1}", length, f, "conv"))
        n_rr = len(self.rr_features)
        if not self.filters:
            return (LayerSpec("features", 1, n_rr, "fused"),)
        return (*specs, LayerSpec("features", length, self.filters[-1] + n_rr, "fused"))

    def features(self, x, hooks: Hooks = DEFAULT_HOOKS):
        rr = x[..., self.n_leads :].mean(axis=1)  # [B, F]
        if self.inputs == "rr":
            return hooks.tap("features", rr[:, None, :])
        h = x[..., : self.n_leads]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns)):
            h = hooks.act(jax.nn.relu, hooks.linear(bn, hooks.linear(conv, h)))
            h = hooks.tap(f"conv{i + 1}", nnx.max_pool(h, (2,), strides=(2,), padding="SAME"))
        return hooks.tap("features", jnp.concatenate([h, jnp.broadcast_to(rr[:, None, :], (*h.shape[:2], rr.shape[-1]))], axis=-1))

    def head(self, f, hooks: Hooks = DEFAULT_HOOKS):
        n_rr = len(self.rr_features)
        parts = []
        if self.inputs != "rr":
            w = f[..., : f.shape[-1] - n_rr]
            w = hooks.linear(self.wave_dense, w.reshape(w.shape[0], -1))
            parts.append(self.wave_drop(w) if self.wave_drop is not None else w)
        if self.rr_dense is not None:
            rr = f[..., f.shape[-1] - n_rr :].mean(axis=1)
            z = hooks.act(_log_rr, rr) @ jnp.asarray(rr_input_matrix(self.rr_features, self.rr_transform))
            parts.append(hooks.linear(self.rr_dense, hooks.linear(self.rr_bn, z)))
        h = hooks.act(jax.nn.relu, hooks.linear(self.fuse, hooks.act(jax.nn.relu, jnp.concatenate(parts, axis=-1))))
        return hooks.linear(self.out, self.drop(h))
