"""Model contract: pinned parameter counts, shapes, eval-mode row independence,
input gradients under plain jax.grad, and the convolution and LSTM against
independent float64 references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import models
from ecgjax.errors import ConfigError
from ecgjax.models.layers import conv1d
from ecgjax.models.ribeiro import max_pool_same


@pytest.fixture(scope="module", params=models.available())
def built(request):
    name = request.param
    m = models.build(name, n_classes=8, rngs=nnx.Rngs(0))
    gd, st = models.eval_split(m)
    return name, m, gd, st


def test_pinned_parameter_counts():
    counts = {n: models.count_params(models.build(n, n_classes=8, rngs=nnx.Rngs(0))) for n in models.available()}
    assert counts["jones2020_cnn"] == 637_672  # Keras total incl. BN moving stats (reference §3.1)
    assert counts["jones2020_lstm"] == 19_240
    assert counts["ribeiro_cnn"] == 6_392_096
    cnn = models.build("jones2020_cnn", n_classes=8, rngs=nnx.Rngs(0))
    assert models.count_params(cnn, include_batch_stats=False) == 637_672 - 2 * 480


def test_shapes_and_head_of_features(built):
    name, m, gd, st = built
    x = jax.random.normal(jax.random.key(1), (3, 430, 2))
    fns = models.pure_fns(gd, st)
    logits = fns.logit_fn(x)
    assert logits.shape == (3, 8)
    f = fns.feature_fn(x)
    assert f.ndim == 3 and f.shape[0] == 3
    np.testing.assert_allclose(fns.head_fn(f), logits, rtol=1e-5, atol=1e-5)


def test_eval_rows_independent_and_grad_works(built):
    """In eval mode row i depends only on x[i]; plain jax.grad w.r.t. the input works (no nnx.RNN pitfall)."""
    name, m, gd, st = built
    x = jax.random.normal(jax.random.key(2), (4, 430, 2))
    f = jax.jit(lambda s, x: models.pure_fns(gd, s).logit_fn(x))
    full = f(st, x)
    x2 = x.at[1:].set(jax.random.normal(jax.random.key(3), (3, 430, 2)))
    np.testing.assert_allclose(f(st, x2)[0], full[0], rtol=1e-5, atol=1e-5)
    g = jax.grad(lambda xi: models.pure_fns(gd, st).logit_fn(xi[None])[0, 2])(x[0])
    assert g.shape == (430, 2) and bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0


def test_train_mode_differs_from_eval_view():
    """The eval view is a view: the model itself stays in training mode (dropout active)."""
    m = models.build("jones2020_cnn", n_classes=8, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(4), (2, 430, 2))
    ev = models.eval_view(m)
    np.testing.assert_allclose(ev(x), ev(x))
    assert not np.allclose(m(x), ev(x))


def test_jones_layer_final_conv_shape():
    m = models.build("jones2020_cnn", n_classes=8, rngs=nnx.Rngs(0))
    fns = models.pure_fns(*models.eval_split(m))
    assert fns.layers["final_conv"](jnp.ones((2, 430, 2))).shape == (2, 815, 32)


def test_ribeiro_lengths():
    m = models.build("ribeiro_cnn", n_classes=8, rngs=nnx.Rngs(0))
    f = models.eval_view(m).features(jnp.ones((1, 430, 2)))
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
    kx, kw = jax.random.split(jax.random.key(5))
    x = jax.random.normal(kx, (2, length, 3))
    w = jax.random.normal(kw, (16, 3, 5))
    from ecgjax.models.layers import same_padding

    pad = same_padding(length, 16, stride) if padding == "SAME" else (0, 0)
    got = conv1d(x, w, stride=stride, padding=padding, impl=impl)
    np.testing.assert_allclose(got, _conv_ref(x, w, stride, pad), rtol=1e-4, atol=1e-4)


def test_max_pool_same_matches_reference():
    x = jax.random.normal(jax.random.key(6), (2, 215, 3))
    got = max_pool_same(x, 4)
    xp = np.pad(np.asarray(x), ((0, 0), (0, 1), (0, 0)), constant_values=-np.inf)  # TF SAME: extra pad right
    np.testing.assert_array_equal(got, xp.reshape(2, 54, 4, 3).max(axis=2))


def test_lstm_matches_float64_loop():
    m = models.build("jones2020_lstm", n_classes=8, in_shape=(20, 2), rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(7), (3, 20, 2))
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


def test_unknown_model_and_bad_kwarg_raise_config_error():
    with pytest.raises(ConfigError, match="unknown model 'cnn'.*jones2020_cnn"):
        models.build("cnn", n_classes=8, rngs=nnx.Rngs(0))
    with pytest.raises(ConfigError, match="ribeiro_cnn"):
        models.build("ribeiro_cnn", n_classes=8, rngs=nnx.Rngs(0), filtres=(1,))
