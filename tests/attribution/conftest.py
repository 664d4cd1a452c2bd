"""Tiny pure models written directly as ``Fns`` (no flax), shared by the attribution tests.

Each model is ``make(params) -> Fns`` plus ``init(key, T, L, C) -> params``;
``make`` is a module-level function, so it is hashable and the runner can pass
``params`` as jit arguments. ``Fns`` comes from ``ecgjax.models.base`` when the
models package exists, else a stand-in with the same fields (tests only).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import pytest

try:  # the real contract, once ecgjax.models has landed
    from ecgjax.models.base import Fns
except ImportError:  # pragma: no cover - stand-in until then

    @dataclasses.dataclass(frozen=True)
    class Fns:
        logit_fn: Callable
        feature_fn: Callable
        head_fn: Callable
        layers: Mapping[str, Callable]


T, L, C = 48, 2, 4


# -- linear: logits = sum_{t,l} x[t,l] W[t,l,c] + b[c] ---------------------------------
def linear_init(key, T=T, L=L, C=C):
    k1, k2 = jax.random.split(key)
    return {"W": jax.random.normal(k1, (T, L, C)), "b": jax.random.normal(k2, (C,))}


def linear_make(p):
    feat = lambda x: x  # noqa: E731  features = the input itself (T' = T, F = L)
    head = lambda a: jnp.einsum("btl,tlc->bc", a, p["W"]) + p["b"]  # noqa: E731
    return Fns(logit_fn=lambda x: head(feat(x)), feature_fn=feat, head_fn=head, layers={"final_conv": feat})


# -- tiny CNN on the concatenated leads (as jones2020_cnn): [B, L*T, 1] -> conv -> conv -> dense
def cnn_init(key, T=T, L=L, C=C):
    ks = jax.random.split(key, 4)
    Tp = L * T - 4 - 4
    return {
        "c1": jax.random.normal(ks[0], (5, 1, 4)) * 0.5,
        "c2": jax.random.normal(ks[1], (5, 4, 3)) * 0.5,
        "d": jax.random.normal(ks[2], (Tp * 3, C)) * 0.1,
        "b": jax.random.normal(ks[3], (C,)) * 0.1,
    }


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))


def cnn_make(p):
    def final_conv(x):
        B = x.shape[0]
        z = x.transpose(0, 2, 1).reshape(B, -1, 1)
        return _conv(jnp.tanh(_conv(z, p["c1"])), p["c2"])

    feat = lambda x: jax.nn.leaky_relu(final_conv(x), 0.3)  # noqa: E731
    head = lambda a: a.reshape(a.shape[0], -1) @ p["d"] + p["b"]  # noqa: E731
    return Fns(logit_fn=lambda x: head(feat(x)), feature_fn=feat, head_fn=head, layers={"final_conv": final_conv})


# -- tiny RNN: tanh cell in lax.scan over time; head on the last hidden state -----------
H = 6


def rnn_init(key, T=T, L=L, C=C):
    ks = jax.random.split(key, 4)
    return {"Wx": jax.random.normal(ks[0], (L, H)) * 0.5, "Wh": jax.random.normal(ks[1], (H, H)) * 0.3,
            "Wo": jax.random.normal(ks[2], (H, C)), "b": jax.random.normal(ks[3], (C,)) * 0.1}


def rnn_make(p):
    def feat(x):
        def cell(h, xt):
            h = jnp.tanh(xt @ p["Wx"] + h @ p["Wh"])
            return h, h

        _, hs = jax.lax.scan(cell, jnp.zeros((x.shape[0], H), x.dtype), jnp.swapaxes(x, 0, 1))
        return jnp.swapaxes(hs, 0, 1)  # [B, T, H]

    head = lambda a: a[:, -1] @ p["Wo"] + p["b"]  # noqa: E731
    return Fns(logit_fn=lambda x: head(feat(x)), feature_fn=feat, head_fn=head, layers={"final_conv": feat})


TINY = {"linear": (linear_init, linear_make), "cnn": (cnn_init, cnn_make), "rnn": (rnn_init, rnn_make)}


@pytest.fixture(scope="session")
def tiny_models():
    """{name: (make, params)} for the linear, CNN and RNN tiny models (T=48, L=2, C=4)."""
    return {n: (mk, init(jax.random.key(i))) for i, (n, (init, mk)) in enumerate(TINY.items())}


@pytest.fixture(scope="session")
def beats():
    """x: f32[6, T, L] random beats, target: i32[6]."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, T, L)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(np.array([0, 1, 2, 3, 1, 0], np.int32))
