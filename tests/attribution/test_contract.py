"""The contract every registered attribution method obeys (captum's one-table idea).

Adding a method = ``@register("name")`` + one entry in ``METHOD_CASES``
(small, fast hyperparameters). ``test_every_method_has_a_case`` fails until the
entry exists, so no method escapes these checks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ecgjax import attribution as attr

_BG = attr.FrozenArray(np.random.default_rng(5).normal(size=(5, 48, 2)))  # a background of 5 beats (T=48, L=2)

METHOD_CASES: dict[str, dict] = {
    "saliency": {},
    "gradient_x_input": {},
    "integrated_gradients": {"steps": 6, "chunk_size": 4},
    "smoothgrad": {"n": 5, "chunk_size": 2, "sigma": 0.2},
    "vargrad": {"n": 5, "chunk_size": 2, "sigma": 0.2},
    "noise_tunnel": {"nt_type": "smoothgrad_sq", "n": 5, "chunk_size": 2, "sigma": 0.2},
    "grad_cam": {},
    "occlusion": {"window_s": 0.02, "stride_s": 0.01, "fs": 360.0, "chunk_size": 16},
    "jones2020_layer_saliency": {},
    "random": {},
    "expected_gradients": {"n": 4, "chunk_size": 2, "background": _BG},
    # 10-sample segments (0.1 s at 100 Hz), 2 per side: M = 2 leads x 4 = 8 features, 20 sampled coalitions
    "kernel_shap": {"fs": 100.0, "n_per_side": 2, "n_evals": 20, "chunk_size": 8},
}
R = jnp.asarray([10, 20, 24, 30, 15, 40], jnp.int32)  # R positions of the 6 test beats (methods with needs_r)

MODELS = ("cnn", pytest.param("rnn", marks=pytest.mark.slow))  # rnn: opt in with -m slow (CPU time)
TOL = dict(rtol=2e-4, atol=2e-5)


def test_every_method_has_a_case():
    assert set(attr.available()) == set(METHOD_CASES), "add new methods to METHOD_CASES"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", sorted(METHOD_CASES))
def test_contract(name, model, tiny_models, beats):
    make, params = tiny_models[model]
    fns = make(params)
    m = attr.get(name, **METHOD_CASES[name])
    assert hash(m) == hash(attr.get(name, **METHOD_CASES[name]))  # a static jit argument
    assert m.name == name and m.kind in ("gradient", "perturbation", "layer", "control")
    x, t = beats
    B = x.shape[0]
    keys = attr.row_keys(jax.random.key(7), B) if m.needs_key else None
    call = (lambda xx, tt, kk, rr: m(fns, xx, tt, kk, r=rr)) if m.needs_r else (lambda xx, tt, kk, rr: m(fns, xx, tt, kk))

    f = jax.jit(call)
    out = f(x, t, keys, R)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert bool(jnp.all(jnp.isfinite(out)))
    assert float(jnp.max(jnp.abs(out))) > 0  # not trivially zero

    # jit == eager, and deterministic for a fixed key
    eager = call(x, t, keys, R)  # op by op (only lax.scan/map bodies compile)
    np.testing.assert_allclose(eager, out, **TOL)
    np.testing.assert_array_equal(f(x, t, keys, R), out)

    # row i depends only on beat i: alone, and with the other beats changed
    for i in (B - 1,):
        alone = f(x[i : i + 1], t[i : i + 1], None if keys is None else keys[i : i + 1], R[i : i + 1])
        np.testing.assert_allclose(alone[0], out[i], **TOL)
    x2 = x.at[1:].set(x[1:] * -2.0 + 1.0)
    np.testing.assert_allclose(f(x2, t, keys, R.at[1:].set(5))[0], out[0], **TOL)

    # padding rows change nothing
    xp = jnp.concatenate([x, jnp.zeros((3,) + x.shape[1:], x.dtype)])
    tp = jnp.concatenate([t, jnp.zeros(3, t.dtype)])
    kp = None if keys is None else attr.row_keys(jax.random.key(7), B + 3)
    rp = jnp.concatenate([R, jnp.zeros(3, R.dtype)])
    np.testing.assert_allclose(f(xp, tp, kp, rp)[:B], out, **TOL)

    # the target matters exactly when the method says it does
    other = f(x, (t + 1) % 4, keys, R)
    if m.uses_target:
        assert not np.allclose(other, out)
    else:
        np.testing.assert_allclose(other, out, **TOL)


@pytest.mark.parametrize("name", sorted(n for n in METHOD_CASES if n in attr.available() and attr.get_class(n).needs_key))
def test_keyed_methods_differ_by_key(name, tiny_models, beats):
    m = attr.get(name, **METHOD_CASES[name])
    make, params = tiny_models["cnn"]
    x, t = beats
    a = attr.attribute(m, make(params), x, t, jax.random.key(1), r=R)
    b = attr.attribute(m, make(params), x, t, jax.random.key(2), r=R)
    assert not np.allclose(a, b)
