"""The corrected LSTM options of jones2020_lstm: leads as features, trailing padding masked."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ecgjax import models
from ecgjax.models.jones import trailing_padding


def _beats(lengths, t, seed=0, level=0.3):
    """f32[B, t, 2]: random samples up to each length, then the constant ``level`` in both leads."""
    x = np.random.default_rng(seed).standard_normal((len(lengths), t, 2)).astype(np.float32)
    for i, n in enumerate(lengths):
        x[i, n:] = level
    return x


def test_trailing_padding_marks_the_constant_tail():
    x = _beats([5, 8, 3], 8)
    got = np.asarray(trailing_padding(jnp.asarray(x)))
    want = np.arange(8)[None, :] >= np.array([5, 7, 3])[:, None]  # no padding: only the last sample counts
    np.testing.assert_array_equal(got, want)


def test_masked_channels_lstm_matches_a_float64_loop_over_the_real_samples():
    m = models.build("jones2020_lstm", n_classes=5, in_shape=(20, 2), fs=360.0, rngs=nnx.Rngs(1), lead_layout="channels",
                     mask_padding=True)
    lengths = [20, 11, 4]
    x = _beats(lengths, 20)
    got = np.asarray(models.eval_view(m)(jnp.asarray(x)))
    wi, wr, b = (np.asarray(p[...], np.float64) for p in (m.lstm.w_in, m.lstm.w_rec, m.lstm.bias))
    assert wi.shape == (2, 256)  # two leads, two input features
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    for i, n in enumerate(lengths):
        h, c = np.zeros(64), np.zeros(64)
        for t in range(min(n, 19)):  # a window without padding loses its last sample (it "repeats" itself)
            g = x[i, t].astype(np.float64) @ wi + h @ wr + b
            gi, gf, gg, go = np.split(g, 4)
            c = sig(gf) * c + sig(gi) * np.tanh(gg)
            h = sig(go) * np.tanh(c)
        d1 = np.maximum(h @ np.asarray(m.dense.kernel[...], np.float64) + np.asarray(m.dense.bias[...]), 0)
        ref = d1 @ np.asarray(m.out.kernel[...], np.float64) + np.asarray(m.out.bias[...])
        np.testing.assert_allclose(got[i], ref, rtol=1e-4, atol=1e-5)


def test_masked_lstm_ignores_how_much_padding_follows_the_beat():
    for layout in ("channels", "concat"):
        m = models.build("jones2020_lstm", n_classes=4, in_shape=(30, 2), fs=360.0, rngs=nnx.Rngs(2), lead_layout=layout,
                         mask_padding=True)
        short, long = _beats([9, 9], 16), _beats([9, 9], 30)
        long[:, :16] = short
        f = models.eval_view(m)
        np.testing.assert_allclose(np.asarray(f(jnp.asarray(short))), np.asarray(f(jnp.asarray(long))), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np.asarray(m.head(m.features(jnp.asarray(long)))), np.asarray(f(jnp.asarray(long))),
                                   rtol=1e-5, atol=1e-6)
    faithful = models.build("jones2020_lstm", n_classes=4, in_shape=(30, 2), fs=360.0, rngs=nnx.Rngs(2))
    a, b = faithful(jnp.asarray(short)), faithful(jnp.asarray(long))
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-4  # the paper's LSTM does read the padding


def test_input_gradient_works_under_plain_jax_grad():
    m = models.build("jones2020_lstm", n_classes=3, in_shape=(12, 2), fs=360.0, rngs=nnx.Rngs(0), lead_layout="channels",
                     mask_padding=True)
    graphdef, state = models.eval_split(m)
    x = jnp.asarray(_beats([7, 12], 12))
    g = jax.grad(lambda x: models.pure_fns(graphdef, state).logit_fn(x)[:, 0].sum())(x)
    g = np.asarray(g)
    assert np.all(np.isfinite(g)) and np.abs(g[0, :7]).sum() > 0 and np.all(g[0, 8:] == 0)
