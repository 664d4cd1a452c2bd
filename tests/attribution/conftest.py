"""Tiny pure models written directly as ``Fns`` (no flax), shared by the attribution tests.

Each model is ``make(params, hooks=DEFAULT_HOOKS) -> Fns`` plus
``init(key, T, L, C) -> params``; ``make`` is a module-level function, so it is
hashable and the runner can pass ``params`` as jit arguments. Like the real
models they carry their facts (``Fns.info``) and send their nonlinearities,
linear layers and named layers through ``hooks`` (``Fns.with_hooks``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ecgjax.models.base import DEFAULT_HOOKS, Affine, Fns, Hooks, LayerSpec, ModelInfo

T, L, C = 48, 2, 4
FS = 360.0


def _fns(make, p, hooks, feat, head, info, layers):
    return Fns(logit_fn=lambda x: head(feat(x)), feature_fn=feat, head_fn=head, layers=layers, info=info,
               rebuild=lambda h: make(p, h))


def _record(feat, name):
    """x -> the named layer's output (a forward pass with a recording hook)."""

    class Rec(Hooks):
        def tap(self, n, h):
            if n == name:
                self.value = h
            return h

    def f(x):
        rec = Rec()
        feat(x, rec)
        return rec.value

    return f


# -- linear: logits = sum_{t,l} x[t,l] W[t,l,c] + b[c] ---------------------------------
def linear_init(key, T=T, L=L, C=C):
    k1, k2 = jax.random.split(key)
    return {"W": jax.random.normal(k1, (T, L, C)), "b": jax.random.normal(k2, (C,))}


def linear_make(p, hooks=DEFAULT_HOOKS):
    T_, L_, _ = p["W"].shape
    feat = lambda x, h=hooks: h.tap("features", x)  # noqa: E731  features = the input itself (T' = T, F = L)
    dense = Affine(lambda a, w: jnp.einsum("btl,tlc->bc", a, w), p["W"], p["b"])
    head = lambda a: hooks.linear(dense, a)  # noqa: E731
    info = ModelInfo("tiny_linear", "channels", FS, (T_, L_), (LayerSpec("features", T_, L_, "conv"),), "features", ("W",))
    return _fns(linear_make, p, hooks, feat, head, info, {"features": _record(feat, "features")})


# -- tiny CNN on the concatenated leads (as jones2020_cnn): [B, L*T, 1] -> conv -> tanh -> conv -> leaky -> dense
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


def cnn_make(p, hooks=DEFAULT_HOOKS):
    n = p["d"].shape[0] // 3 + 8  # L*T

    def feat(x, h=hooks):
        B = x.shape[0]
        z = x.transpose(0, 2, 1).reshape(B, -1, 1)
        z = h.tap("final_conv", h.linear(Affine(_conv, p["c2"]), h.act(jnp.tanh, h.linear(Affine(_conv, p["c1"]), z))))
        return h.tap("features", h.act(lambda v: jax.nn.leaky_relu(v, 0.3), z))

    dense = Affine(lambda a, w: a.reshape(a.shape[0], -1) @ w, p["d"], p["b"])
    head = lambda a: hooks.linear(dense, a)  # noqa: E731
    specs = (LayerSpec("final_conv", n - 8, 3, "conv"), LayerSpec("features", n - 8, 3, "conv"))
    info = ModelInfo("tiny_cnn", "concat", FS, (n // L, L), specs, "features", ("d", "c2", "c1"))
    return _fns(cnn_make, p, hooks, feat, head, info, {s.name: _record(feat, s.name) for s in specs})


# -- tiny RNN: tanh cell in lax.scan over time; head on the last hidden state -----------
H = 6


def rnn_init(key, T=T, L=L, C=C):
    ks = jax.random.split(key, 4)
    return {"Wx": jax.random.normal(ks[0], (L, H)) * 0.5, "Wh": jax.random.normal(ks[1], (H, H)) * 0.3,
            "Wo": jax.random.normal(ks[2], (H, C)), "b": jax.random.normal(ks[3], (C,)) * 0.1}


def rnn_make(p, hooks=DEFAULT_HOOKS):
    def feat(x, h=hooks):
        def cell(hid, xt):
            hid = jnp.tanh(xt @ p["Wx"] + hid @ p["Wh"])
            return hid, hid

        _, hs = jax.lax.scan(cell, jnp.zeros((x.shape[0], H), x.dtype), jnp.swapaxes(x, 0, 1))
        return h.tap("hidden", jnp.swapaxes(hs, 0, 1))  # [B, T, H]

    out = Affine(lambda a, w: a @ w, p["Wo"], p["b"])
    head = lambda a: hooks.linear(out, a[:, -1])  # noqa: E731
    info = ModelInfo("tiny_rnn", "channels", FS, (T, p["Wx"].shape[0]), (LayerSpec("hidden", T, H, "recurrent"),), "hidden",
                     ("Wo", "Wh", "Wx"), gated="its tanh recurrent cell is not sent through the activation hook")
    return _fns(rnn_make, p, hooks, feat, head, info, {"hidden": _record(feat, "hidden")})


TINY = {"linear": (linear_init, linear_make), "cnn": (cnn_init, cnn_make), "rnn": (rnn_init, rnn_make)}


@pytest.fixture(scope="session")
def tiny_models():
    """{name: (make, params)} for the linear, CNN and RNN tiny models (T=48, L=2, C=4, fs=360 Hz)."""
    return {n: (mk, init(jax.random.key(i))) for i, (n, (init, mk)) in enumerate(TINY.items())}


@pytest.fixture(scope="session")
def beats():
    """x: f32[6, T, L] random beats, target: i32[6]."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, T, L)).astype(np.float32)
    return jnp.asarray(x), jnp.asarray(np.array([0, 1, 2, 3, 1, 0], np.int32))
