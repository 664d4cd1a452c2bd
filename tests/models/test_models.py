"""Model contract: pinned parameter counts, shapes, eval-mode row independence,
input gradients under plain jax.grad, and the convolution and LSTM against
independent float64 references."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import models
from ecgjax.errors import ConfigError
from ecgjax.models.layers import conv1d
from ecgjax.models.layers import max_pool_same
from tests.conftest import normal


# small widths for the shape / row-independence / gradient checks (they do not depend on the width; the full
# sizes: test_pinned_parameter_counts, test_ribeiro_lengths, test_jones_layer_final_conv_shape)
SMALL = {"jones2020_lstm": {"hidden": 8}, "ribeiro_cnn": {"filters": (4, 4, 4, 4)}, "rr_net": {"filters": (4, 4, 4)}}


@pytest.fixture(scope="module", params=models.available())
def built(request):
    name = request.param
    m = models.build(name, n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0), **SMALL.get(name, {}))
    gd, st = models.eval_split(m)
    return name, m, gd, st


def test_pinned_parameter_counts():
    # abstract models (nnx.eval_shape): shapes only, no initialisation run
    built = {n: nnx.eval_shape(lambda n=n: models.build(n, n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0)))
             for n in models.available()}
    counts = {n: models.count_params(m) for n, m in built.items()}
    assert counts["jones2020_cnn"] == 637_672  # Keras total incl. BN moving stats (reference §3.1)
    assert counts["jones2020_lstm"] == 19_240
    assert counts["ribeiro_cnn"] == 6_392_096
    assert models.count_params(built["jones2020_cnn"], include_batch_stats=False) == 637_672 - 2 * 480


def test_shapes_and_head_of_features(built):
    name, m, gd, st = built
    x = normal(1, (3, 430, 2))
    fns = models.pure_fns(gd, st)
    # one compiled program (op-by-op execution compiles every primitive on its own: many times slower to test)
    logits, f, head = jax.jit(lambda v: (fns.logit_fn(v), fns.feature_fn(v), fns.head_fn(fns.feature_fn(v))))(x)
    assert logits.shape == (3, 8)
    assert f.ndim == 3 and f.shape[0] == 3
    np.testing.assert_allclose(head, logits, rtol=1e-5, atol=1e-5)


def test_eval_rows_independent_and_grad_works(built):
    """In eval mode row i depends only on x[i]; plain jax.grad w.r.t. the input works (no nnx.RNN pitfall)."""
    name, m, gd, st = built
    x = normal(2, (4, 430, 2))
    f = jax.jit(lambda s, x: models.pure_fns(gd, s).logit_fn(x))
    full = f(st, x)
    x2 = x.at[1:].set(normal(3, (3, 430, 2)))
    np.testing.assert_allclose(f(st, x2)[0], full[0], rtol=1e-5, atol=1e-5)
    g = jax.jit(jax.grad(lambda xi: models.pure_fns(gd, st).logit_fn(xi[None])[0, 2]))(x[0])
    assert g.shape == (430, 2) and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0


def test_train_mode_differs_from_eval_view():
    """The eval view is a view: the model itself stays in training mode (dropout active)."""
    m = models.build("jones2020_cnn", n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0))
    x = normal(4, (2, 430, 2))
    ev = models.eval_view(m)
    forward = nnx.jit(lambda mod, v: mod(v))
    np.testing.assert_allclose(forward(ev, x), forward(ev, x))
    assert not np.allclose(forward(m, x), forward(ev, x))


def test_jones_layer_final_conv_shape():
    # the full-size model, abstract (as test_ribeiro_lengths)
    m = nnx.eval_shape(lambda: models.build("jones2020_cnn", n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0)))
    gd, st = models.eval_split(m)
    f = jax.eval_shape(lambda s: models.pure_fns(gd, s).layers["final_conv"](jnp.ones((2, 430, 2))), st)
    assert f.shape == (2, 815, 32)


def test_ribeiro_lengths():
    # the full-size model, abstract (nnx.eval_shape: shapes only, no initialisation run); its forward traced for shapes
    m = nnx.eval_shape(lambda: models.build("ribeiro_cnn", n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0)))
    gd, st = models.eval_split(m)
    f = jax.eval_shape(lambda s: models.pure_fns(gd, s).feature_fn(jnp.ones((1, 430, 2))), st)
    assert f.shape == (1, 4, 320)  # 860 -> 215 -> 54 -> 14 -> 4


def _conv_ref(x, w, stride, pad):
    x = np.pad(np.asarray(x, np.float64), ((0, 0), pad, (0, 0)))
    w = np.asarray(w, np.float64)
    k = w.shape[0]
    t_out = (x.shape[1] - k) // stride + 1
    out = np.zeros((x.shape[0], t_out, w.shape[2]))
    for t in range(t_out):
        out[:, t] = np.einsum("bkc,kco->bo", x[:, t * stride : t * stride + k], w)
    return out


@pytest.mark.parametrize("impl", ["xla", "patches"])
@pytest.mark.parametrize("stride,padding,length", [(1, "VALID", 50), (1, "SAME", 50), (4, "SAME", 215), (4, "SAME", 54)])
def test_conv1d_matches_float64_reference(impl, stride, padding, length):
    rng = np.random.default_rng(5)
    x, w = normal(rng, (2, length, 3)), normal(rng, (16, 3, 5))
    from ecgjax.models.layers import same_padding

    pad = same_padding(length, 16, stride) if padding == "SAME" else (0, 0)
    got = conv1d(x, w, stride=stride, padding=padding, impl=impl)
    np.testing.assert_allclose(got, _conv_ref(x, w, stride, pad), rtol=1e-4, atol=1e-4)


def test_max_pool_same_matches_reference():
    x = normal(6, (2, 215, 3))
    got = max_pool_same(x, 4)
    xp = np.pad(np.asarray(x), ((0, 0), (0, 1), (0, 0)), constant_values=-np.inf)  # TF SAME: extra pad right
    np.testing.assert_array_equal(got, xp.reshape(2, 54, 4, 3).max(axis=2))


def test_lstm_matches_float64_loop():
    m = models.build("jones2020_lstm", n_classes=8, in_shape=(20, 2), fs=360.0, rngs=nnx.Rngs(0))
    x = normal(7, (3, 20, 2))
    got = models.eval_view(m)(x)
    wi, wr, b = (np.asarray(p[...], np.float64) for p in (m.lstm.w_in, m.lstm.w_rec, m.lstm.bias))
    seq = np.transpose(np.asarray(x, np.float64), (0, 2, 1)).reshape(3, 40, 1)
    h = np.zeros((3, 64))
    c = np.zeros((3, 64))
    sig = lambda v: 1 / (1 + np.exp(-v))
    for t in range(40):
        g = seq[:, t] @ wi + h @ wr + b
        i, f, gg, o = np.split(g, 4, axis=-1)
        c = sig(f) * c + sig(i) * np.tanh(gg)
        h = sig(o) * np.tanh(c)
    d1 = np.maximum(h @ np.asarray(m.dense.kernel[...], np.float64) + np.asarray(m.dense.bias[...]), 0)
    ref = d1 @ np.asarray(m.out.kernel[...], np.float64) + np.asarray(m.out.bias[...])
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def _values(tree) -> list[np.ndarray]:
    return [np.asarray(jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a)
            for a in jax.tree.leaves(tree)]


def _op_by_op_and_built(name, kw, seed=3):
    """(the constructor run op by op, as ``build`` did before it compiled the initialisation: each of jax's random
    functions its own program; ``build``'s model; the two callers' Rngs after them), 4 classes, (64, 2) beats."""
    from ecgjax.models import _MODELS

    ref_rngs, rngs = nnx.Rngs(seed, dropout=5), nnx.Rngs(seed, dropout=5)
    ref = _MODELS[name](n_classes=4, in_shape=(64, 2), fs=360.0, rngs=ref_rngs, **kw)
    return ref, models.build(name, n_classes=4, in_shape=(64, 2), fs=360.0, rngs=rngs, **kw), ref_rngs, rngs


@pytest.mark.parametrize("name", models.available())
def test_build_draws_what_the_constructor_draws_op_by_op_and_compiles_once(name, monkeypatch):
    """``build`` initialises in one compiled program: every parameter, statistic and RNG stream of the model, and the
    caller's Rngs after the build, equal the constructor's op by op, bit for bit. Another seed compiles nothing."""
    from ecgjax.models.base import INIT_ENV
    from tests.conftest import CompileCounter

    monkeypatch.delenv(INIT_ENV, raising=False)  # the default: one program (the suite initialises op by op)
    kw = SMALL.get(name, {})
    ref, got, ref_rngs, rngs = _op_by_op_and_built(name, kw)
    assert nnx.graphdef(got) == nnx.graphdef(ref)
    for a, b in zip(_values(nnx.state(got)) + _values(nnx.state(rngs)), _values(nnx.state(ref)) + _values(nnx.state(ref_rngs)), strict=True):
        np.testing.assert_array_equal(a, b)
    with CompileCounter() as c:
        other = models.build(name, n_classes=4, in_shape=(64, 2), fs=360.0, rngs=nnx.Rngs(4, dropout=5), **kw)
    assert c.n == 0
    assert not all(np.array_equal(a, b) for a, b in zip(_values(nnx.state(other, nnx.Param)), _values(nnx.state(got, nnx.Param))))  # another draw


def test_one_compiled_initialisation_is_shared_only_by_equal_calls():
    """The cache key of ``initialise``: the constructor and its keywords with their types, so a list of filters does not
    reuse a tuple's program (its graph definition would hold a tuple); arrays share nothing; dataclasses by equality."""
    import dataclasses

    from ecgjax.models.base import _Call

    @dataclasses.dataclass(frozen=True)
    class Settings:
        width: int

    ctor = models.build
    assert _Call(ctor, {"filters": (4, 4), "fs": 360.0}) == _Call(ctor, {"fs": 360.0, "filters": (4, 4)})
    assert hash(_Call(ctor, {"filters": (4, 4)})) == hash(_Call(ctor, {"filters": (4, 4)}))
    assert _Call(ctor, {"filters": (4, 4)}) != _Call(ctor, {"filters": [4, 4]})
    assert _Call(ctor, {"fs": 360}) != _Call(ctor, {"fs": 360.0}) and _Call(ctor, {"d": 1}) != _Call(ctor, {"d": True})
    assert _Call(ctor, {"w": np.ones(3)}) != _Call(ctor, {"w": np.ones(3)})
    assert _Call(ctor, {"s": Settings(2)}) == _Call(ctor, {"s": Settings(2)}) != _Call(ctor, {"s": Settings(3)})
    assert _Call(ctor, {"filters": (4, 4)}) != _Call(models.check_kwargs, {"filters": (4, 4)})


@pytest.mark.slow  # a process compiling with the users' XLA flags: each random function optimised as users compile it
def test_build_draws_what_users_op_by_op_constructor_draws():
    """The same bit-for-bit equality with XLA's default optimisation for the op-by-op reference (the tests compile
    everything at the lowest), so the compiled initialisation at the lowest level changes no user's parameters."""
    import os
    import subprocess
    import sys

    from tests.conftest import users_xla_flags

    code = ("import numpy as np\nfrom ecgjax import models\nfrom tests.models.test_models import SMALL, _op_by_op_and_built, _values\n"
            "from flax import nnx\nfor n in models.available():\n    ref, got, rr, r = _op_by_op_and_built(n, SMALL.get(n, {}))\n"
            "    assert all(np.array_equal(a, b) for a, b in zip(_values(nnx.state(got)) + _values(nnx.state(r)), "
            "_values(nnx.state(ref)) + _values(nnx.state(rr)), strict=True)), n\nprint('equal')\n")
    from ecgjax.models.base import INIT_ENV

    env = {k: v for k, v in os.environ.items() if k != INIT_ENV} | {"XLA_FLAGS": users_xla_flags(), "JAX_COMPILATION_CACHE_DIR": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=Path(__file__).parents[2])
    assert out.returncode == 0 and out.stdout.strip() == "equal", out.stderr[-2000:]


def test_init_env_chooses_how_build_compiles_and_refuses_other_values(monkeypatch, caplog):
    """``$ECGJAX_INIT``: ``op_by_op`` compiles no whole-model program and draws what ``program`` draws; any other value
    is a ConfigError naming the variable and its choices."""
    import logging

    from ecgjax.models.base import INIT_ENV

    def build(seed):
        return models.build("jones2020_lstm", n_classes=3, in_shape=(40, 2), fs=360.0, rngs=nnx.Rngs(seed), **SMALL.get("jones2020_lstm", {}))

    monkeypatch.setenv(INIT_ENV, "program")
    one = build(7)
    monkeypatch.setenv(INIT_ENV, "op_by_op")
    with caplog.at_level(logging.DEBUG, logger="jax"), jax.log_compiles(True):
        each = build(7)
    assert not [r for r in caplog.records if "jit(init)" in r.getMessage()]
    for a, b in zip(_values(nnx.state(one)), _values(nnx.state(each)), strict=True):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setenv(INIT_ENV, "eager")
    with pytest.raises(ConfigError, match=r"\$ECGJAX_INIT='eager': set it to one of program, op_by_op"):
        build(7)


def test_unknown_model_and_bad_kwarg_raise_config_error():
    with pytest.raises(ConfigError, match="unknown model 'cnn'.*jones2020_cnn"):
        models.build("cnn", n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="ribeiro_cnn"):
        models.build("ribeiro_cnn", n_classes=8, in_shape=(430, 2), fs=360.0, rngs=nnx.Rngs(0), filtres=(1,))


# -- the contract: facts, named layers, hooks -------------------------------------------------

from ecgjax.models.base import DEFAULT_HOOKS, Hooks, ModelInfo  # noqa: E402
from ecgjax.models.layers import Conv1d  # noqa: E402


class _Count(Hooks):
    def __init__(self):
        self.acts = self.linears = 0
        self.taps = {}

    def act(self, fn, z):
        self.acts += 1
        return fn(z)

    def linear(self, layer, x):
        self.linears += 1
        return layer(x)

    def tap(self, name, h):
        self.taps[name] = h.shape
        return h


CONTRACT_CASES = [  # (name, in_shape, kwargs, layout, ReLU-family activations in the forward pass)
    ("jones2020_cnn", (252, 2), {}, "concat", 2 + 2 * 4 + 1),
    ("jones2020_lstm", (30, 2), {}, "concat", 1),
    ("jones2020_lstm", (30, 2), {"lead_layout": "channels", "frame": 4, "readout": "max"}, "channels", 1),
    ("ribeiro_cnn", (252, 2), {"filters": (4, 4, 4, 4), "lead_layout": "channels"}, "channels", 1 + 2 * 4),
    ("ribeiro_cnn", (252, 2), {"filters": (4, 4, 4, 4)}, "concat", 1 + 2 * 4),
    ("rr_net", (64, 4), {"rr_features": ("pre", "post"), "filters": (4, 4, 4)}, "channels", 3 + 1 + 2),
]


@pytest.mark.parametrize("name,shape,kw,layout,n_acts", CONTRACT_CASES)
def test_contract_facts_and_hook_seam(name, shape, kw, layout, n_acts):
    """info() states layout, fs and shape; layer_specs give the real tapped shapes; every activation and every
    Conv1d / Linear / BatchNorm goes through the hooks once."""
    m = models.build(name, n_classes=5, in_shape=shape, fs=250.0, rngs=nnx.Rngs(0), **kw)
    ev = models.eval_view(m)
    info = m.info()
    assert isinstance(info, ModelInfo) and hash(info) == hash(m.info())
    assert (info.name, info.layout, info.fs, info.in_shape) == (name, layout, 250.0, shape)
    assert info.cascade == tuple(m.cascade_order) and info.layers[-1].name == info.feature_layer
    assert bool(info.gated) == (name == "jones2020_lstm")
    x = normal(0, (2, *shape))
    count = _Count()
    logits = jax.eval_shape(lambda v: ev(v, count), x)
    assert logits.shape == (2, 5)
    n_layers = sum(isinstance(v, (Conv1d, nnx.Linear, nnx.BatchNorm)) for _, v in nnx.iter_graph(m))
    assert (count.acts, count.linears) == (n_acts, n_layers)
    assert count.taps == {s.name: (2, s.length, s.channels) for s in info.layers}
    for s in info.layers:
        assert jax.eval_shape(lambda v, name=s.name: ev.layer(name, v), x).shape == (2, s.length, s.channels)
    f = jax.eval_shape(ev.features, x)
    assert f.shape == (2, info.layers[-1].length, info.layers[-1].channels)
    # a hook that overrides nothing gives the default forward exactly
    plain, default = jax.jit(lambda v: (ev(v, Hooks()), ev(v, DEFAULT_HOOKS)))(x)
    np.testing.assert_array_equal(plain, default)


def test_ribeiro_channels_on_aami_window_has_one_position_at_the_end():
    """The aami window (252 samples) as channels: 252 -> 63 -> 16 -> 4 -> 1 positions."""
    m = models.build("ribeiro_cnn", n_classes=5, in_shape=(252, 2), fs=360.0, rngs=nnx.Rngs(0), filters=(4, 4, 4, 4),
                     lead_layout="channels")
    assert [s.length for s in m.info().layers] == [252, 63, 16, 4, 1]
    np.testing.assert_allclose(m.info().step_s("unit2"), 0.7 / 16)


def test_fs_comes_from_the_data_and_is_checked():
    with pytest.raises(TypeError, match="fs"):
        models.build("jones2020_cnn", n_classes=8, in_shape=(430, 2), rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="sampling rate fs must be positive"):
        models.build("jones2020_lstm", n_classes=8, in_shape=(30, 2), fs=0.0, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="lead_layout"):
        models.build("ribeiro_cnn", n_classes=8, in_shape=(30, 2), fs=360.0, rngs=nnx.Rngs(0), lead_layout="rows")


def test_a_layer_of_unknown_kind_is_refused():
    """Methods choose by a layer's kind (Grad-CAM a conv map, the RR-aware paths a fused one): a misspelt kind is an
    error where the model declares it, not a layer that every method silently passes over."""
    from ecgjax.models.base import LayerSpec

    assert LayerSpec("u", 4, 8, "fused").kind == "fused"
    with pytest.raises(ValueError, match="layer 'u': kind must be one of .*'Conv'"):
        LayerSpec("u", 4, 8, "Conv")


def test_register_needs_the_contract():
    with pytest.raises(ValueError, match="ECGModel"):
        models.register("not_a_model")(object)


def test_ribeiro_max_pool_values_and_gradient_go_to_each_windows_maximum():
    """TF 'SAME' max-pool: equal to padding with -inf and taking each window's max; the gradient lands on the
    maximum of each window (as TF's), so it never depends on float equality between recomputed values."""
    from ecgjax.models.layers import same_padding
    from ecgjax.models.layers import max_pool_same

    @jax.jit
    def pool_and_grad(v):
        weights = jnp.arange(1.0, -(-v.shape[1] // 4) + 1)[None, :, None]
        return max_pool_same(v, 4), jax.grad(lambda u: jnp.sum(max_pool_same(u, 4) * weights))(v)

    for t in (430, 9, 7, 1):
        x = np.random.default_rng(t).normal(size=(2, t, 3)).astype(np.float32)
        left, right = same_padding(t, 4, 4)
        xp = np.pad(x, ((0, 0), (left, right), (0, 0)), constant_values=-np.inf).reshape(2, -1, 4, 3)
        ref = xp.max(2)
        pooled, g = pool_and_grad(x)
        np.testing.assert_array_equal(pooled, ref)
        want = (xp == xp.max(2, keepdims=True)) * np.arange(1.0, ref.shape[1] + 1)[None, :, None, None]
        np.testing.assert_array_equal(g, want.reshape(2, -1, 3)[:, left : left + t])


def test_static_hashes_its_value_once_and_equal_values_stay_equal():
    """``Static``: jax hashes a jitted step's static arguments on every call; a graph definition's hash walks the graph."""
    from ecgjax.models.base import Static

    calls = []

    class Value:
        def __hash__(self):
            calls.append(1)
            return 7

        def __eq__(self, other):
            return isinstance(other, Value)

    a, b = Static(Value()), Static(Value())
    assert a == b and hash(a) == hash(b) and len(calls) == 2
    for _ in range(5):
        assert hash(a) == 7 and a == a
    assert len(calls) == 2
    assert Static(1) != Static(2) and Static(1) != 1
