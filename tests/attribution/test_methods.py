"""Analytic and reference checks of the built-in methods."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ecgjax import attribution as attr
from ecgjax.errors import ConfigError


def _ref_grad(fns, x, t):
    """Reference path: vmap over beats of grad of one beat's target logit."""
    def one(xi, ti):
        return fns.logit_fn(xi[None])[0, ti]
    return jax.vmap(jax.grad(one))(x, t)


# -- linear model: closed forms -------------------------------------------------------


def test_saliency_is_weight_row_on_linear(tiny_models, beats):
    make, p = tiny_models["linear"]
    x, t = beats
    s = attr.get("saliency")(make(p), x, t, None)
    np.testing.assert_allclose(s, jnp.moveaxis(p["W"][:, :, t], -1, 0), rtol=1e-6)
    gxi = attr.get("gradient_x_input")(make(p), x, t, None)
    np.testing.assert_allclose(gxi, x * jnp.moveaxis(p["W"][:, :, t], -1, 0), rtol=1e-6)


@pytest.mark.parametrize("baseline", ["zeros", "mean", "blurred", "uniform", "given"])
def test_ig_completeness_linear(tiny_models, beats, baseline):
    make, p = tiny_models["linear"]
    fns = make(p)
    x, t = beats
    if baseline == "given":
        m = attr.IntegratedGradients.with_baseline(np.full(x.shape[1:], 0.3), steps=4, chunk_size=3)
    else:
        m = attr.get("integrated_gradients", steps=4, chunk_size=3, baseline=baseline)
    keys = attr.row_keys(jax.random.key(1), x.shape[0]) if m.needs_key else None
    ig = m(fns, x, t, keys)
    x0 = m.baseline_for(x, keys)
    z = lambda v: jnp.take_along_axis(fns.logit_fn(v), t[:, None], 1)[:, 0]  # noqa: E731
    np.testing.assert_allclose(ig.sum((1, 2)), z(x) - z(x0), atol=1e-3)
    np.testing.assert_allclose(ig, (x - x0) * jnp.moveaxis(p["W"][:, :, t], -1, 0), rtol=1e-4, atol=1e-5)


def test_ig_completeness_nonlinear_converges(tiny_models, beats):
    """On the CNN (leaky-ReLU kinks) the completeness gap shrinks with steps and is small at 256."""
    make, p = tiny_models["cnn"]
    fns = make(p)
    x, t = beats
    z = lambda v: jnp.take_along_axis(fns.logit_fn(v), t[:, None], 1)[:, 0]  # noqa: E731
    gap = z(x) - z(jnp.zeros_like(x))
    err = {}
    for steps in (16, 256):
        ig = attr.get("integrated_gradients", steps=steps, chunk_size=64)(fns, x, t, None)
        err[steps] = float(jnp.max(jnp.abs(ig.sum((1, 2)) - gap)))
    assert err[256] < err[16] / 4
    assert err[256] < 0.01 * float(jnp.max(jnp.abs(gap)))


def _steep_path_fns(ig_baseline):
    """Closed form f32[B, T, 1] -> f32[B, 2]: ``10 sigmoid(2000 (mean(x) - 0.3)) + w . x`` (w alternating +-1)
    and its negative, with a ``ModelInfo`` declaring ``ig_baseline``."""
    from ecgjax.models.base import Fns

    w = jnp.asarray((-1.0) ** np.arange(64), jnp.float32)[:, None]

    def logit_fn(x):
        z = 10 * jax.nn.sigmoid(2000 * (x.mean((1, 2)) - 0.3)) + (x * w).sum((1, 2))
        return jnp.stack([z, -z], -1)

    return Fns(logit_fn=logit_fn, feature_fn=None, head_fn=None, info=_info(in_shape=(64, 1), ig_baseline=ig_baseline))


def _steep_path_logit64(x):
    """The same function's class-0 logit in float64 (numpy): the reference."""
    x = np.asarray(x, np.float64)
    return 10 / (1 + np.exp(-2000 * (x.mean((1, 2)) - 0.3))) + (x[..., 0] * (-1.0) ** np.arange(64)).sum(1)


def test_ig_default_baseline_is_the_models_and_passes_completeness_on_a_steep_path():
    """From zeros the path crosses a sigmoid 1/2000 wide (mean(x) = 0.3 at alpha = 0.3): 128-step IG misses
    completeness by far more than 5% against the float64 closed form. The default baseline is the model's
    (``ModelInfo.ig_baseline``, here "blurred": same mean, so no jump on the path) and passes; without
    model facts (a hand-made Fns) the default is zeros."""
    x = (1.0 + 0.5 * (-1.0) ** np.arange(64)[None, :, None] * np.array([1.0, 0.8, 1.2])[:, None, None]).astype(np.float32)
    t = jnp.zeros(3, jnp.int32)
    fns = _steep_path_fns("blurred")

    def rel_err(m):
        m = m.for_model(fns.info)
        x0 = np.asarray(m.baseline_for(jnp.asarray(x)))
        dz = _steep_path_logit64(x) - _steep_path_logit64(x0)
        total = np.asarray(m(fns, jnp.asarray(x), t, None), np.float64).sum((1, 2))
        return np.abs(total - dz) / np.abs(dz)

    plain = attr.get("integrated_gradients", steps=128, baseline="zeros")
    assert np.median(rel_err(plain)) > 0.05
    default = attr.get("integrated_gradients")
    assert default.baseline == "model" and default.steps == 128
    assert default.for_model(fns.info).baseline == "blurred" and default.for_model(None).baseline == "zeros"
    assert np.max(rel_err(default)) < 1e-3
    # __call__ resolves from fns.info: the default's maps are the explicit blurred baseline's
    np.testing.assert_allclose(default(fns, jnp.asarray(x), t, None),
                               attr.get("integrated_gradients", baseline="blurred")(fns, jnp.asarray(x), t, None), rtol=1e-6)
    with pytest.raises(ValueError, match="until resolved"):
        default.baseline_for(jnp.asarray(x))
    with pytest.raises(ValueError, match="declares ig_baseline='uniform'"):
        default.for_model(_info(ig_baseline="uniform"))


def test_models_declare_their_ig_baseline(tiny_models):
    """The LSTM declares the blurred baseline; a CNN keeps the zeros default."""
    from flax import nnx

    from ecgjax.models import build

    lstm = build("jones2020_lstm", n_classes=3, in_shape=(40, 2), fs=360.0, rngs=nnx.Rngs(0))
    cnn = build("jones2020_cnn", n_classes=3, in_shape=(252, 2), fs=360.0, rngs=nnx.Rngs(0))
    assert lstm.info().ig_baseline == "blurred" and cnn.info().ig_baseline == "zeros"


def test_ig_step_count_independent_of_chunking(tiny_models, beats):
    make, p = tiny_models["cnn"]
    x, t = beats
    a = attr.get("integrated_gradients", steps=10, chunk_size=3)(make(p), x, t, None)
    b = attr.get("integrated_gradients", steps=10, chunk_size=11)(make(p), x, t, None)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_occlusion_closed_form_linear(tiny_models, beats):
    make, p = tiny_models["linear"]
    x, t = beats
    m = attr.get("occlusion", window_s=4 / 360, stride_s=2 / 360, baseline=0.5)
    out = np.asarray(m(make(p), x, t, None))
    W = np.asarray(p["W"])[:, :, np.asarray(t)].transpose(2, 0, 1)  # [B, T, L]
    contrib = W * (np.asarray(x) - 0.5)
    from ecgjax.attribution.perturbation import occlusion_masks
    masks = occlusion_masks(x.shape[1], x.shape[2], 4, 2, True)
    num = np.zeros_like(contrib)
    for mk in masks:
        num += (contrib * mk).sum((1, 2))[:, None, None] * mk
    np.testing.assert_allclose(out, num / masks.sum(0), rtol=1e-4, atol=1e-5)


def test_smoothgrad_on_linear_is_weight_and_vargrad_zero(tiny_models, beats):
    make, p = tiny_models["linear"]
    x, t = beats
    sg = attr.attribute(attr.get("smoothgrad", n=6, chunk_size=4), make(p), x, t, jax.random.key(0))
    np.testing.assert_allclose(sg, jnp.moveaxis(p["W"][:, :, t], -1, 0), rtol=1e-5, atol=1e-6)
    vg = attr.attribute(attr.get("vargrad", n=6, chunk_size=4), make(p), x, t, jax.random.key(0))
    np.testing.assert_allclose(vg, 0.0, atol=1e-5)


def test_smoothgrad_matches_explicit_loop(tiny_models, beats):
    make, p = tiny_models["cnn"]
    fns = make(p)
    x, t = beats
    m = attr.get("smoothgrad", n=3, chunk_size=2, sigma=0.1, sigma_mode="absolute")
    keys = attr.row_keys(jax.random.key(3), x.shape[0])
    got = m(fns, x, t, keys)
    acc = 0
    for j in range(3):
        noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 2 * j), x.shape[1:]))(keys)
        acc = acc + _ref_grad(fns, x + 0.1 * noise, t)
    np.testing.assert_allclose(got, acc / 3, rtol=1e-4, atol=1e-5)


def test_smoothgrad_wraps_by_name_and_rejects_a_control():
    m = attr.get("smoothgrad", base="integrated_gradients")
    assert isinstance(m.base, attr.IntegratedGradients)
    hash(m)
    with pytest.raises(ConfigError, match="other than a control"):
        attr.get("smoothgrad", base="random")
    with pytest.raises(ConfigError, match="no hyperparameter.*nt_type"):
        attr.get("smoothgrad", nt_type="vargrad")  # a preset fixes its reduction


def test_presets_are_the_noise_tunnel(tiny_models, beats):
    """smoothgrad / vargrad are the tunnel with nt_type fixed: the same maps bit for bit."""
    make, p = tiny_models["cnn"]
    x, t = beats
    keys = attr.row_keys(jax.random.key(5), x.shape[0])
    hp = dict(n=3, chunk_size=2, sigma=0.1)
    for preset in ("smoothgrad", "vargrad"):
        a = attr.get(preset, **hp)(make(p), x, t, keys)
        b = attr.get("noise_tunnel", nt_type=preset, **hp)(make(p), x, t, keys)
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("nt_type", ["smoothgrad_sq", "vargrad"])
def test_noise_tunnel_over_any_method_matches_explicit_loop(tiny_models, beats, nt_type):
    """The tunnel over occlusion (a perturbation method): mean of squares / variance of an explicit loop, float64."""
    make, p = tiny_models["cnn"]
    fns = make(p)
    x, t = beats
    base = attr.get("occlusion", window_s=0.02, stride_s=0.01, chunk_size=16)
    m = attr.get("noise_tunnel", base=base, nt_type=nt_type, n=3, chunk_size=2, sigma=0.1, sigma_mode="absolute")
    assert m.kind == "perturbation"
    keys = attr.row_keys(jax.random.key(3), x.shape[0])
    got = np.asarray(m(fns, x, t, keys), np.float64)
    outs = []
    for j in range(3):
        noise = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 2 * j), x.shape[1:]))(keys)
        outs.append(np.asarray(base(fns, x + 0.1 * noise, t, None), np.float64))
    outs = np.stack(outs)
    want = (outs**2).mean(0) if nt_type == "smoothgrad_sq" else outs.var(0)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize("model", ["cnn", "rnn"])
def test_fast_path_equals_vmap_grad(model, tiny_models, beats):
    make, p = tiny_models[model]
    fns = make(p)
    x, t = beats
    np.testing.assert_allclose(attr.target_grad(fns, x, t), _ref_grad(fns, x, t), rtol=1e-5, atol=1e-6)


def test_grad_cam_reference_and_upsampling(tiny_models, beats):
    make, p = tiny_models["cnn"]
    fns = make(p)
    x, t = beats
    out = attr.get("grad_cam")(fns, x, t, None)
    assert attr.get("grad_cam").layer_for(fns.info) == "features"  # the last conv layer, fine enough
    A = fns.feature_fn(x)
    g = jax.vmap(jax.grad(lambda a, c: fns.head_fn(a[None])[0, c]))(A, t)
    cam = jnp.einsum("bf,btf->bt", g.mean(1), A)
    np.testing.assert_allclose(out, attr.upsample_to_input(cam, x.shape[1], x.shape[2], "concat"), rtol=1e-5, atol=1e-6)
    # an earlier layer: the gradient reaches it through the tap (here through the leaky ReLU)
    out2 = attr.get("grad_cam", layer="final_conv")(fns, x, t, None)
    A2 = fns.layers["final_conv"](x)
    g2 = g * jnp.where(A2 > 0, 1.0, 0.3)
    cam2 = jnp.einsum("bf,btf->bt", g2.mean(1), A2)
    np.testing.assert_allclose(out2, attr.upsample_to_input(cam2, x.shape[1], x.shape[2], "concat"), rtol=1e-5, atol=1e-6)
    # concat layout with T' == L*T is exactly the un-concatenation
    c = jnp.arange(2 * 5, dtype=jnp.float32)[None]
    np.testing.assert_array_equal(attr.upsample_to_input(c, 5, 2, "concat")[0], np.arange(10).reshape(2, 5).T)
    np.testing.assert_array_equal(attr.upsample_to_input(c[:, :5], 5, 2, "channels")[0], np.tile(np.arange(5)[:, None], 2))
    with pytest.raises(ConfigError, match="no hyperparameter.*'layout'"):
        attr.get("grad_cam", layout="channels")  # the layout is the model's (fns.info), not a setting


def _info(**kw):
    from ecgjax.models.base import LayerSpec, ModelInfo

    base = dict(name="m", layout="channels", fs=360.0, in_shape=(252, 2), feature_layer="u4", cascade=(),
                layers=tuple(LayerSpec(f"u{i}", n, 8, "conv") for i, n in enumerate((252, 63, 16, 4, 1))))
    return ModelInfo(**{**base, **kw})


def test_grad_cam_layer_choice_and_refusals():
    """The default layer is the deepest conv layer with a time step <= 0.1 s; a coarser chosen layer is refused."""
    gc = attr.get("grad_cam")
    info = _info()  # 0.7 s per lead: steps 0.0028, 0.011, 0.044, 0.175, 0.7 s
    assert gc.layer_for(info) == "u2" and gc.supports(info) is None
    np.testing.assert_allclose(info.step_s("u3"), 0.7 / 4)
    assert "time step of 0.175 s > max_step_s=0.1" in attr.get("grad_cam", layer="u3").supports(info)
    assert attr.get("grad_cam", layer="u3", max_step_s=0.2).supports(info) is None
    concat = _info(layout="concat", layers=tuple(_info().layers[:1]))  # 252 positions over 2 leads: 126 per lead
    np.testing.assert_allclose(concat.step_s("u0"), 0.7 / 126)
    assert "no convolutional layer" in gc.supports(_info(layers=()))
    assert attr.get("grad_cam", max_step_s=0.001).supports(info).startswith("none of its conv layers")
    assert "unknown" in gc.supports(None)
    with pytest.raises(ConfigError, match="^grad_cam cannot explain m: layer 'u4'"):
        attr.check_supported(attr.get("grad_cam", layer="u4"), info)
    tunnel = attr.get("noise_tunnel", base=attr.get("grad_cam", layer="u4"))  # a wrapper refuses what its base refuses
    assert tunnel.supports(info) == attr.get("grad_cam", layer="u4").supports(info)


def test_occlusion_window_converts_with_the_models_fs(tiny_models, beats):
    """The same window in seconds covers twice the samples at twice the sampling rate."""
    import dataclasses as dc

    make, p = tiny_models["linear"]
    fns = make(p)
    x, t = beats
    m = attr.get("occlusion", window_s=4 / 360, stride_s=4 / 360, chunk_size=64)
    at360 = m(fns, x, t, None)
    fns720 = dc.replace(fns, info=dc.replace(fns.info, fs=720.0))
    at720 = m(fns720, x, t, None)
    W = np.asarray(p["W"])[:, :, np.asarray(t)].transpose(2, 0, 1) * np.asarray(x)  # per-sample contributions
    for out, w in ((at360, 4), (at720, 8)):  # disjoint windows: each sample gets its window's total
        blocks = W.reshape(x.shape[0], -1, w, x.shape[2]).sum(2, keepdims=True)
        np.testing.assert_allclose(out, np.broadcast_to(blocks, blocks.shape[:2] + (w, x.shape[2])).reshape(W.shape), rtol=1e-4, atol=1e-4)
    assert "window_s=1.0 s is 360 samples at 360 Hz" in attr.get("occlusion", window_s=1.0).supports(fns.info)


def test_jones2020_layer_saliency_reference_and_paper_map(tiny_models, beats):
    make, p = tiny_models["cnn"]
    fns = make(p)
    x, t = beats
    m = attr.get("jones2020_layer_saliency")
    g = m(fns, x, t, None)
    ref = jax.vmap(jax.grad(lambda xi: jnp.mean(fns.layers["final_conv"](xi[None]))))(x)
    np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(m(fns, x, jnp.zeros_like(t), None), g)  # ignores the class
    pm = attr.jones2020_paper_map(g)
    a = np.abs(np.asarray(g))
    exp = (a - a.min((1, 2), keepdims=True)) / (a.max((1, 2), keepdims=True) - a.min((1, 2), keepdims=True) + 1e-7)
    np.testing.assert_allclose(pm, exp, rtol=1e-6)
    assert pm.min() >= 0 and pm.max() <= 1
    with pytest.raises(ConfigError, match="jones2020_layer_saliency cannot explain tiny_cnn: it has no layer 'conv99'"):
        attr.get("jones2020_layer_saliency", layer="conv99")(fns, x, t, None)


def test_all_classes(tiny_models, beats):
    make, p = tiny_models["cnn"]
    fns = make(p)
    x, _ = beats
    allc = attr.attribute_all_classes(attr.get("saliency"), fns, x, 4)
    assert allc.shape == (x.shape[0], 4) + x.shape[1:]
    for c in range(4):
        np.testing.assert_allclose(allc[:, c], attr.attribute(attr.get("saliency"), fns, x, c), rtol=1e-4, atol=1e-6)


# -- registry and errors ---------------------------------------------------------------


def test_registry_errors():
    with pytest.raises(ConfigError, match="unknown attribution method 'nope'.*saliency"):
        attr.get("nope")
    with pytest.raises(ConfigError, match="no hyperparameter.*'stepz'.*steps"):
        attr.get("integrated_gradients", stepz=3)
    with pytest.raises(ValueError, match="already registered"):
        attr.register("saliency")(attr.Saliency)
    with pytest.raises(ValueError, match="frozen dataclass"):
        class NotDC(attr.AttributionMethod):
            def __call__(self, fns, x, target, key):
                return x
        attr.register("not_dc")(NotDC)


def test_temporary_registration():
    from ecgjax.attribution.registry import temporary

    @dataclasses.dataclass(frozen=True)
    class Zero(attr.AttributionMethod):
        def __call__(self, fns, x, target, key):
            return jnp.zeros_like(x)

    with temporary("zero_test", Zero):
        assert "zero_test" in attr.available()
        assert attr.get("zero_test").name == "zero_test"
    assert "zero_test" not in attr.available()


def test_attribute_checks_inputs(tiny_models, beats):
    make, p = tiny_models["cnn"]
    x, t = beats
    with pytest.raises(ValueError, match="target must be i32"):
        attr.attribute(attr.get("saliency"), make(p), x, t[:3])
    with pytest.raises(ValueError, match="x must be"):
        attr.attribute(attr.get("saliency"), make(p), x[0], 0)
    with pytest.raises(ValueError, match="needs a PRNG key"):
        attr.attribute(attr.get("random"), make(p), x, t)
