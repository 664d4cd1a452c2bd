"""The corrected LSTM options of jones2020_lstm: leads as features, frames of samples, max readout."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ecgjax import attribution as attr
from ecgjax import models
from ecgjax.attribution.sanity import completeness_error
from ecgjax.errors import ConfigError


def _corrected(t, *, seed=1, n_classes=5, **kw):
    kw = {"lead_layout": "channels", "frame": 4, "readout": "max", **kw}
    return models.build("jones2020_lstm", n_classes=n_classes, in_shape=(t, 2), fs=360.0, rngs=nnx.Rngs(seed), **kw)


def _reference(m, x, frame, readout):
    """float64 loop: the LSTM over frames of ``frame`` samples x 2 leads (zero-filled), then the head."""
    wi, wr, b = (np.asarray(p[...], np.float64) for p in (m.lstm.w_in, m.lstm.w_rec, m.lstm.bias))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    out = []
    for beat in np.asarray(x, np.float64):
        n = -(-len(beat) // frame)
        padded = np.zeros((n * frame, 2))
        padded[: len(beat)] = beat
        h, c, hs = np.zeros(m.lstm.hidden), np.zeros(m.lstm.hidden), []
        for s in range(n):
            g = padded[s * frame : (s + 1) * frame].reshape(-1) @ wi + h @ wr + b  # sample-major: (t0 l0, t0 l1, t1 l0, ...)
            gi, gf, gg, go = np.split(g, 4)
            c = sig(gf) * c + sig(gi) * np.tanh(gg)
            h = sig(go) * np.tanh(c)
            hs.append(h)
        r = np.max(hs, axis=0) if readout == "max" else hs[-1]
        d1 = np.maximum(r @ np.asarray(m.dense.kernel[...], np.float64) + np.asarray(m.dense.bias[...]), 0)
        out.append(d1 @ np.asarray(m.out.kernel[...], np.float64) + np.asarray(m.out.bias[...]))
    return np.stack(out)


@pytest.mark.parametrize("t,frame,readout", [(20, 4, "max"), (22, 4, "max"), (21, 8, "last"), (9, 1, "max")])
def test_framed_lstm_matches_a_float64_loop(t, frame, readout):
    m = _corrected(t, frame=frame, readout=readout)
    assert m.lstm.w_in.shape == (2 * frame, 256)  # frame samples x two leads per step
    x = np.random.default_rng(0).standard_normal((3, t, 2)).astype(np.float32)
    # the model, its features and head(features) as one compiled program (op by op, each primitive compiles alone)
    @nnx.jit
    def run(view, mod, v):
        f = mod.features(v)
        return view(v), f, mod.head(f)

    got, f, head = run(models.eval_view(m), m, x)
    got = np.asarray(got)
    np.testing.assert_allclose(got, _reference(m, x, frame, readout), rtol=1e-4, atol=1e-5)
    # head(features(x)) is the model, and the named layer has the length it declares
    assert f.shape == (3, -(-t // frame), 64) == (3, m.info().layer("lstm").length, 64)
    np.testing.assert_allclose(np.asarray(head), got, rtol=1e-5, atol=1e-6)


def test_layer_time_step_follows_the_frame():
    info = _corrected(430, frame=8).info()
    assert info.layout == "channels" and info.fs == 360.0
    assert info.layer("lstm").length == 54
    assert info.step_s("lstm") == pytest.approx((430 / 360) / 54)


def test_max_readout_sends_gradient_to_where_a_unit_peaks_far_from_the_end():
    """With the last-state readout a spike 100 frames before the end barely reaches the logits; with the
    max readout its gradient is as large as near the end."""
    t = 800
    x = np.zeros((1, t, 2), np.float32)
    x[0, 40:48] = 3.0  # a spike early in the beat
    ratio = {}
    for readout in ("last", "max"):
        m = _corrected(t, frame=8, readout=readout, seed=3)
        g = nnx.jit(lambda view, v: jax.grad(lambda u: view(u)[0].max())(v))(models.eval_view(m), x)
        g = np.abs(np.asarray(g)).sum(-1)[0]
        ratio[readout] = g[40:48].sum() / g[-80:].sum()
    assert ratio["max"] > 100 * ratio["last"]


def test_max_readout_is_the_max_over_time_and_its_gradient_lands_on_each_units_peak():
    """max_over_time(f) = max_t f[:, t, u]; its gradient is the cotangent at each unit's peak time, zero elsewhere."""
    from ecgjax.models.jones import max_over_time

    rng = np.random.default_rng(2)
    f = rng.standard_normal((2, 9, 5)).astype(np.float32)
    w = rng.standard_normal((2, 5)).astype(np.float32)
    got, g = jax.jit(lambda f: (max_over_time(f), jax.grad(lambda f: jnp.sum(max_over_time(f) * w))(f)))(f)
    np.testing.assert_array_equal(got, f.max(1))
    want = (f == f.max(1, keepdims=True)) * w[:, None, :]
    np.testing.assert_array_equal(g, want)


def test_integrated_gradients_is_complete_on_the_corrected_lstm():
    """A smooth model of its input (no input-dependent mask): IG's default steps from the zeros baseline sum to
    f(x) - f(0) within 5% on this untrained model (trained ones are steep from zeros: their declared baseline is
    ``blurred``, tested in tests/attribution)."""
    m = _corrected(64, frame=8, seed=2)
    graphdef, state = models.eval_split(m)
    x = np.random.default_rng(1).uniform(0, 1, (6, 64, 2)).astype(np.float32)
    target = np.arange(6, dtype=np.int32) % 5
    ig = attr.get("integrated_gradients", baseline="zeros")
    maps = jax.jit(lambda x, t: ig(models.pure_fns(graphdef, state), x, t))(jnp.asarray(x), jnp.asarray(target))
    err = completeness_error((graphdef, state), x, np.zeros_like(x), target, np.asarray(maps).sum(axis=(1, 2)))
    assert np.median(err) < 0.05


def test_bad_options_are_refused():
    with pytest.raises(ConfigError, match="readout"):
        _corrected(20, readout="mean")
    with pytest.raises(ConfigError, match="frame"):
        _corrected(20, frame=0)


def test_input_gradient_works_under_plain_jax_grad():
    m = _corrected(12, frame=4)
    graphdef, state = models.eval_split(m)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 12, 2)).astype(np.float32))
    g = jax.jit(jax.grad(lambda s, x: models.pure_fns(graphdef, s).logit_fn(x)[:, 0].sum(), argnums=1))(state, x)
    assert np.all(np.isfinite(np.asarray(g))) and np.abs(np.asarray(g)).sum() > 0
