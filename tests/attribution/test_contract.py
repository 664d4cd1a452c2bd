"""The contract every registered attribution method obeys (captum's one-table idea).

Adding a method = ``@register("name")`` + one entry in ``METHOD_CASES``
(small, fast hyperparameters). ``test_every_method_has_a_case`` fails until the
entry exists, so no method escapes these checks. Every (method, model) pair,
tiny models and the registry's real ones, either gives maps that vary along
time or is refused by ``supports`` with one line naming both.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax import nnx

from ecgjax import attribution as attr
from ecgjax import models
from ecgjax.errors import ConfigError
from tests.conftest import normal

_BG = attr.FrozenArray(np.random.default_rng(5).normal(size=(5, 48, 2)))  # a background of 5 beats (T=48, L=2)

METHOD_CASES: dict[str, dict] = {
    "saliency": {},
    "gradient_x_input": {},
    "integrated_gradients": {"steps": 6, "chunk_size": 4},
    "smoothgrad": {"n": 5, "chunk_size": 2, "sigma": 0.2},
    "vargrad": {"n": 5, "chunk_size": 2, "sigma": 0.2},
    "noise_tunnel": {"nt_type": "smoothgrad_sq", "n": 5, "chunk_size": 2, "sigma": 0.2},
    "grad_cam": {},
    "occlusion": {"window_s": 0.02, "stride_s": 0.01, "chunk_size": 16},
    "jones2020_layer_saliency": {},
    "guided_backprop": {},
    "deeplift": {"baseline": "mean"},
    "lrp": {"rule": "zplus"},
    "random": {},
    "expected_gradients": {"n": 4, "chunk_size": 2, "background": _BG},
    # 36-sample segments (0.1 s at the tiny models' 360 Hz), 1 per side: M = 2 leads x 2 = 4 features, 8 sampled coalitions
    "kernel_shap": {"n_per_side": 1, "n_evals": 8, "chunk_size": 8},
}
R = jnp.asarray([10, 20, 24, 30, 15, 40], jnp.int32)  # R positions of the 6 test beats (methods with needs_r)

MODELS = ("cnn", pytest.param("rnn", marks=pytest.mark.slow))  # rnn: opt in with -m slow (CPU time)
TOL = dict(rtol=2e-4, atol=2e-5)


def test_every_method_has_a_case():
    assert set(attr.available()) == set(METHOD_CASES), "add new methods to METHOD_CASES"


def assert_refuses(m, fns, x, t):
    """A refused pair: one line naming the method and the model, raised before any work."""
    why = m.supports(fns.info)
    assert isinstance(why, str) and why and "\n" not in why
    line = attr.refusal(m, fns.info)
    assert line.startswith(f"{m.name} cannot explain {fns.info.name}: ")
    with pytest.raises(ConfigError) as e:
        attr.check_supported(m, fns.info)
    assert str(e.value) == line
    with pytest.raises(ConfigError, match=f"{m.name} cannot explain"):  # the method itself refuses at trace time
        jax.eval_shape(lambda xx, tt: attr.attribute(m, fns, xx, tt, jax.random.key(0)), x, t)


def assert_varies_along_time(maps):
    """Every beat's map takes more than one value along time (in some lead)."""
    maps = np.asarray(maps)
    spread = (maps.max(axis=1) - maps.min(axis=1)).max(axis=-1)  # [B]
    assert np.all(spread > 1e-6 * np.abs(maps).max()), f"maps constant along time for beats {np.flatnonzero(spread <= 1e-6 * np.abs(maps).max())}"


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("name", sorted(METHOD_CASES))
def test_contract(name, model, tiny_models, beats):
    make, params = tiny_models[model]
    fns = make(params)
    m = attr.get(name, **METHOD_CASES[name])
    assert hash(m) == hash(attr.get(name, **METHOD_CASES[name]))  # a static jit argument
    assert m.name == name and m.kind in attr.KINDS
    x, t = beats
    if m.supports(fns.info) is not None:
        assert_refuses(m, fns, x, t)
        return
    B = x.shape[0]
    keys = attr.row_keys(jax.random.key(7), B) if m.needs_key else None
    call = (lambda xx, tt, kk, rr: m(fns, xx, tt, kk, r=rr)) if m.needs_r else (lambda xx, tt, kk, rr: m(fns, xx, tt, kk))

    f = jax.jit(call)
    out = f(x, t, keys, R)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert bool(jnp.all(jnp.isfinite(out)))
    assert float(jnp.max(jnp.abs(out))) > 0  # not trivially zero
    assert_varies_along_time(out)

    # deterministic for a fixed key (jit == eager: test_jit_equals_eager)
    np.testing.assert_array_equal(f(x, t, keys, R), out)

    # row i depends only on beat i: with the other beats changed; and the last beat moved to row 0, followed by
    # zero (padding) rows, with its own key, as the runner pads its last batch (the same shape: nothing compiles;
    # a batch of another size is test_runner.py's)
    x2 = x.at[1:].set(x[1:] * -2.0 + 1.0)
    np.testing.assert_allclose(f(x2, t, keys, R.at[1:].set(5))[0], out[0], **TOL)
    i, pad = B - 1, B - 1
    xp = jnp.concatenate([x[i : i + 1], jnp.zeros((pad,) + x.shape[1:], x.dtype)])
    kp = None if keys is None else jnp.concatenate([keys[i : i + 1], attr.row_keys(jax.random.key(8), pad)])
    moved = f(xp, jnp.concatenate([t[i : i + 1], jnp.zeros(pad, t.dtype)]), kp, jnp.concatenate([R[i : i + 1], jnp.zeros(pad, R.dtype)]))
    np.testing.assert_allclose(moved[0], out[i], **TOL)
    if keys is not None:  # a padded batch's keys: the first B are the unpadded batch's
        longer = attr.row_keys(jax.random.key(7), B + 3)[:B]
        np.testing.assert_array_equal(jax.random.key_data(longer), jax.random.key_data(keys))

    # the target matters exactly when the method says it does; the key exactly when the method needs one
    other = f(x, (t + 1) % 4, keys, R)
    if m.uses_target:
        assert not np.allclose(other, out)
    else:
        np.testing.assert_allclose(other, out, **TOL)
    if keys is not None:
        assert not np.allclose(f(x, t, attr.row_keys(jax.random.key(9), B), R), out)


# Op by op, XLA:CPU compiles every primitive on its own: the composite rule-based and sampling methods run a hundred
# or more, so they opt in with -m slow.
EAGER_SLOW = ("deeplift", "expected_gradients", "kernel_shap", "lrp")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in EAGER_SLOW else n for n in sorted(METHOD_CASES)])
def test_jit_equals_eager(name, tiny_models, beats):
    """The same maps with and without ``jax.jit`` (no trace-time-only behaviour)."""
    make, params = tiny_models["cnn"]
    fns = make(params)
    m = attr.get(name, **METHOD_CASES[name])
    if m.supports(fns.info) is not None:
        pytest.skip(m.supports(fns.info))
    x, t = beats
    keys = attr.row_keys(jax.random.key(7), x.shape[0]) if m.needs_key else None
    call = (lambda xx, tt, kk: m(fns, xx, tt, kk, r=R)) if m.needs_r else (lambda xx, tt, kk: m(fns, xx, tt, kk))
    eager = call(x, t, keys)  # op by op (only lax.scan/map bodies compile)
    np.testing.assert_allclose(eager, jax.jit(call)(x, t, keys), **TOL)


# each keyed method's dependence on its key is checked in test_contract; through attribute() (the runner's
# step, which derives each beat's key from the key given) one method by default, every one with -m slow
KEYED_BY_RUNNER = [n if n == "random" else pytest.param(n, marks=pytest.mark.slow)
                   for n in sorted(n for n in METHOD_CASES if n in attr.available() and attr.get_class(n).needs_key)]


@pytest.mark.parametrize("name", KEYED_BY_RUNNER)
def test_keyed_methods_differ_by_key(name, tiny_models, beats):
    m = attr.get(name, **METHOD_CASES[name])
    make, params = tiny_models["cnn"]
    x, t = beats
    a = attr.attribute(m, make(params), x, t, jax.random.key(1), r=R)
    b = attr.attribute(m, make(params), x, t, jax.random.key(2), r=R)
    assert not np.allclose(a, b)


# -- every (method, model) pair of the registries ------------------------------------------

REAL_MODELS = {  # (in_shape, kwargs): small widths and beats, the real architectures, 360 Hz
    "jones2020_cnn": ((64, 2), {}),
    "jones2020_lstm": ((32, 2), {"hidden": 8}),
    # the aami window: 252 samples as channels, so the last feature map has 1 position (Grad-CAM must not use it)
    "ribeiro_cnn": ((252, 2), {"filters": (4, 4, 4, 4), "lead_layout": "channels"}),
    "rr_net": ((64, 4), {"rr_features": ("pre", "post"), "filters": (4, 4, 4)}),  # 2 leads + 2 RR channels
}
CHEAP = {  # fewer samples / masks than METHOD_CASES: the property tested does not depend on them
    "integrated_gradients": {"steps": 2, "chunk_size": 3},
    "smoothgrad": {"n": 2, "chunk_size": 2, "sigma": 0.2},
    "vargrad": {"n": 2, "chunk_size": 2, "sigma": 0.2},
    "noise_tunnel": {"nt_type": "smoothgrad_sq", "n": 2, "chunk_size": 2, "sigma": 0.2},
    "occlusion": {"window_s": 0.05, "stride_s": 0.05, "chunk_size": 64},
}
REFUSED = {  # the pairs that must be refused, and a word of the reason
    ("grad_cam", "jones2020_lstm"): "no convolutional layer",
    ("jones2020_layer_saliency", "jones2020_lstm"): "no layer 'final_conv'",
    ("jones2020_layer_saliency", "ribeiro_cnn"): "no layer 'final_conv'",
    ("jones2020_layer_saliency", "rr_net"): "no layer 'final_conv'",
    ("deeplift", "jones2020_lstm"): "LSTM gates",
    ("lrp", "jones2020_lstm"): "LSTM gates",
}


def real_case(name, shape):
    """METHOD_CASES' hyperparameters, cheaper, with arrays shaped for ``shape`` (T, L)."""
    if name == "expected_gradients":
        return {"n": 2, "chunk_size": 2, "background": attr.FrozenArray(np.random.default_rng(5).normal(size=(3, *shape)))}
    if name == "kernel_shap":
        return {"n_per_side": 1, "n_evals": 16, "chunk_size": 16}  # 16 >= 2M for rr_net's 4 channels
    return CHEAP.get(name, METHOD_CASES[name])


@pytest.fixture(scope="module")
def real_fns():
    """model name -> (graphdef, state), each model built when a test first asks for it."""

    @functools.cache
    def built(name):
        shape, kw = REAL_MODELS[name]
        return models.eval_split(models.build(name, n_classes=4, in_shape=shape, fs=360.0, rngs=nnx.Rngs(0), **kw))

    return built


def test_every_model_has_a_case():
    assert set(models.available()) == set(REAL_MODELS)


# compositions of saliency's path and sampling methods: slow on CPU
WRAPPERS = ("integrated_gradients", "smoothgrad", "vargrad", "noise_tunnel", "expected_gradients", "kernel_shap")
# the default suite runs every method on the tiny models (test_contract), every refusal, and every method on rr_net and
# the LSTM (two inputs; no convolution); the single-input CNNs' accepted pairs run in CI after it (heavy)
DEFAULT_MODELS = ("jones2020_lstm", "rr_net")


def _pair(name, model):
    if name in WRAPPERS:
        return pytest.param(name, model, marks=pytest.mark.slow)
    if model not in DEFAULT_MODELS and (name, model) not in REFUSED:
        return pytest.param(name, model, marks=pytest.mark.heavy)
    return (name, model)


@pytest.mark.parametrize("name,model", [_pair(n, m) for n in sorted(METHOD_CASES) for m in sorted(REAL_MODELS)])
def test_every_method_on_every_model(name, model, real_fns):
    """Maps that vary along time for every beat, or a clear refusal (exactly the pairs in ``REFUSED``)."""
    g, s = real_fns(model)
    fns = models.pure_fns(g, s)
    shape = REAL_MODELS[model][0]
    m = attr.get(name, **real_case(name, shape))
    x = normal(0, (3, *shape))
    t = jnp.array([0, 1, 3], jnp.int32)
    if (name, model) in REFUSED:
        assert_refuses(m, fns, x, t)
        assert REFUSED[name, model] in m.supports(fns.info)
        return
    assert m.supports(fns.info) is None
    r = {"r": jnp.full((3,), shape[0] // 2, jnp.int32)} if m.needs_r else {}
    f = jax.jit(lambda st, xx, tt, kk: m(models.pure_fns(g, st), xx, tt, kk, **r))
    out = f(s, x, t, attr.row_keys(jax.random.key(1), 3) if m.needs_key else None)
    assert out.shape == x.shape and bool(jnp.all(jnp.isfinite(out)))
    assert_varies_along_time(out)
