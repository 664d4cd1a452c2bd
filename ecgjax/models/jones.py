"""The two models of Jones et al. (2020), as the authors' code built them.

See reference_pipeline.md §3: ``jones2020_cnn`` (637,672 parameters counting
BatchNorm running statistics, as Keras does) and ``jones2020_lstm`` (19,240).
Both read the two leads as one sequence: lead 1 (T samples) then lead 2.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from ecgjax.models.base import DEFAULT_HOOKS, ECGModel, Hooks, LayerSpec, concat_leads
from ecgjax.models.layers import Conv1d, Dropout

READOUTS = ("last", "max")  # jones2020_lstm's readouts of the hidden-state sequence
_LEAKY = 0.3  # Keras LeakyReLU default (Flax's is 0.01)
_lrelu = functools.partial(jax.nn.leaky_relu, negative_slope=_LEAKY)


def _bn(n: int, rngs: nnx.Rngs) -> nnx.BatchNorm:
    return nnx.BatchNorm(n, momentum=0.99, epsilon=1e-3, rngs=rngs)  # Keras defaults


def max_over_time(f):
    """f32[B, T, H] -> f32[B, H], each unit's maximum over time, as a pool (``lax.reduce_window``): its gradient
    goes to the maximum, never divided by a count of equal entries that XLA may recompute differently
    (see ``ribeiro.max_pool_same``)."""
    return nnx.max_pool(f, (f.shape[1],), strides=(f.shape[1],))[:, 0]


class _JonesBlock(nnx.Module):
    """Identity shortcut (MaxPool1D(pool 1) in the original) + conv(F, same) -> BN -> LReLU -> conv(32, same) -> LReLU -> dropout."""

    def __init__(self, filters: int, *, conv_impl: str, rngs: nnx.Rngs):
        self.conv1 = Conv1d(32, filters, 16, padding="SAME", impl=conv_impl, rngs=rngs)
        self.bn1 = _bn(filters, rngs)
        self.conv2 = Conv1d(filters, 32, 16, padding="SAME", impl=conv_impl, rngs=rngs)
        self.drop = Dropout(0.2, rngs=rngs)

    def __call__(self, x, hooks: Hooks = DEFAULT_HOOKS):
        h = hooks.act(_lrelu, hooks.linear(self.bn1, hooks.linear(self.conv1, x)))
        h = self.drop(hooks.act(_lrelu, hooks.linear(self.conv2, h)))
        return x + h


class Jones2020CNN(ECGModel):
    """The paper's CNN: 11 kernel-16 convolutions, no downsampling, a flatten-dense head.

    x: f32[B, T, L] -> logits f32[B, C]; the leads are concatenated to
    f32[B, L*T, 1] (860 for T=430, L=2; layout ``"concat"``). Named layers
    (``layer(name, x)``), input to output: ``conv1``, ``conv2`` (after BN and
    LeakyReLU), ``block1`` .. ``block4`` (residual block outputs),
    ``final_conv`` (the last convolution's output before its BN: Keras layer
    40, the layer the paper's saliency targets; f32[B, L*T-45, 32]) and
    ``features`` (after that BN and LeakyReLU, what ``head`` reads).
    """

    cascade_order = ("dense", "bn_out", "conv_out", "blocks", "bn2", "conv2", "bn1", "conv1")

    def __init__(self, *, n_classes: int = 8, in_shape=(430, 2), fs: float, conv_impl: str = "auto", rngs: nnx.Rngs):
        self._set_facts(layout="concat", fs=fs, in_shape=in_shape)
        t, l = in_shape
        self.conv1 = Conv1d(1, 32, 16, padding="VALID", impl=conv_impl, rngs=rngs)
        self.bn1 = _bn(32, rngs)
        self.conv2 = Conv1d(32, 32, 16, padding="VALID", impl=conv_impl, rngs=rngs)
        self.bn2 = _bn(32, rngs)
        self.drop = Dropout(0.2, rngs=rngs)
        self.blocks = nnx.List([_JonesBlock(f, conv_impl=conv_impl, rngs=rngs) for f in (64, 64, 128, 128)])
        self.conv_out = Conv1d(32, 32, 16, padding="VALID", impl=conv_impl, rngs=rngs)
        self.bn_out = _bn(32, rngs)
        n_feat = (t * l - 45) * 32
        self.dense = nnx.Linear(n_feat, n_classes, kernel_init=nnx.initializers.glorot_uniform(), rngs=rngs)

    def layer_specs(self):
        t, l = self.in_shape
        n = t * l
        return (LayerSpec("conv1", n - 15, 32, "conv"), LayerSpec("conv2", n - 30, 32, "conv"),
                *(LayerSpec(f"block{i + 1}", n - 30, 32, "conv") for i in range(len(self.blocks))),
                LayerSpec("final_conv", n - 45, 32, "conv"), LayerSpec("features", n - 45, 32, "conv"))

    def features(self, x, hooks: Hooks = DEFAULT_HOOKS):
        h = concat_leads(x)
        h = hooks.tap("conv1", hooks.act(_lrelu, hooks.linear(self.bn1, hooks.linear(self.conv1, h))))
        h = hooks.tap("conv2", self.drop(hooks.act(_lrelu, hooks.linear(self.bn2, hooks.linear(self.conv2, h)))))
        for i, blk in enumerate(self.blocks):
            h = hooks.tap(f"block{i + 1}", blk(h, hooks))
        h = hooks.tap("final_conv", hooks.linear(self.conv_out, h))
        return hooks.tap("features", hooks.act(_lrelu, hooks.linear(self.bn_out, h)))

    def head(self, f, hooks: Hooks = DEFAULT_HOOKS):
        return hooks.linear(self.dense, f.reshape(f.shape[0], -1))


class LSTM(nnx.Module):
    """One LSTM layer run with ``jax.lax.scan`` over time from a zero state.

    Gates in Keras order (input, forget, cell, output); Glorot-uniform input
    kernel, orthogonal recurrent kernel, zero bias with the forget gate's set to
    1 (Keras ``unit_forget_bias``). The input projection of all time steps is
    one matmul before the scan (for one or two input features, multiply-adds
    fused into the step); the scan carries only the recurrent product.
    Written this way (not ``nnx.RNN``) so that plain ``jax.grad`` with respect
    to the input works (style.md, the nnx.RNN pitfall).

    x: f32[B, T, F] -> hidden states f32[B, T, H].
    """

    def __init__(self, in_features: int, hidden: int, *, rngs: nnx.Rngs):
        self.hidden = hidden
        self.w_in = nnx.Param(nnx.initializers.glorot_uniform()(rngs.params(), (in_features, 4 * hidden)))
        self.w_rec = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (hidden, 4 * hidden)))
        self.bias = nnx.Param(jnp.zeros((4 * hidden,)).at[hidden : 2 * hidden].set(1.0))

    def __call__(self, x, *, return_sequence: bool = True):
        """x: f32[B, T, F] -> f32[B, T, H], or the last state f32[B, H] with ``return_sequence=False``."""
        b = x.shape[0]
        h_dim = self.hidden
        w_in, w_rec, bias = self.w_in[...], self.w_rec[...], self.bias[...]
        xt = jnp.transpose(x, (1, 0, 2))  # [T, B, F]
        if x.shape[-1] <= 2:
            # One or two input features: the input projection is a broadcast multiply-add,
            # fused into the step's elementwise kernel. Precomputing it for all
            # steps (f32[T, B, 4H]) costs more memory traffic than the step itself.
            def project(x_t):
                return sum(x_t[:, f : f + 1] * w_in[f] for f in range(x_t.shape[-1])) + bias
        else:
            xt = jnp.einsum("tbf,fg->tbg", xt, w_in) + bias  # hoisted: one matmul for all steps

            def project(x_t):
                return x_t

        def step(carry, x_t):
            h0, c0 = carry
            g = project(x_t) + h0 @ w_rec
            i, f, gg, o = jnp.split(g, 4, axis=-1)
            c = _sigmoid(f) * c0 + _sigmoid(i) * jnp.tanh(gg)
            h = _sigmoid(o) * jnp.tanh(c)
            return (h, c), (h if return_sequence else None)

        zero = jnp.zeros((b, h_dim), x.dtype)
        (h, _), hs = jax.lax.scan(step, (zero, zero), xt)
        return jnp.transpose(hs, (1, 0, 2)) if return_sequence else h


def _sigmoid(v):
    """Logistic function as 0.5 * tanh(v / 2) + 0.5: equal to ``jax.nn.sigmoid`` within
    float32 rounding, and faster on XLA:CPU inside the LSTM step (one vectorised tanh
    instead of exp + divide)."""
    return 0.5 * jnp.tanh(0.5 * v) + 0.5


class Jones2020LSTM(ECGModel):
    """The paper's LSTM: LSTM(64) over the L*T concatenated samples -> Dense(32, ReLU) -> Dense(C).

    x: f32[B, T, L] -> logits f32[B, C]. Named layer ``lstm``: the
    hidden-state sequence f32[B, L*T, 64] (``features``); ``head`` uses its
    last step. 19,240 parameters. The LSTM's gates are not elementwise
    nonlinearities the hooks see (``gated``).

    Corrections (not the paper's model; ``jones2020_lstm_holdout.py:corrected``
    gives the reasons): ``lead_layout="channels"`` reads the L leads as L
    features of T steps (half the sequential steps for two leads);
    ``frame=k`` feeds k consecutive samples of every lead as one step of k*L
    features (ceil(T/k) steps, the last frame filled up with zeros; the input
    map is learned, so nothing is discarded); ``readout="max"`` reads each
    hidden unit's maximum over the steps instead of the last state, a direct
    gradient path to wherever in the beat a unit fires. Named layer ``lstm``:
    f32[B, S, hidden] with S = ceil(L*T/k) (``"concat"``) or ceil(T/k)
    (``"channels"``).
    """

    cascade_order = ("out", "dense", "lstm")
    gated = "its LSTM gates multiply sigmoid and tanh outputs, which the activation hook does not see"
    # On the straight path from the all-zeros beat the trained LSTM's logit swings by several units within
    # tiny fractions of the path (float64 alike), which IG's quadrature cannot follow; from the blurred beat
    # it is smooth (docs/results.md, "Integrated gradients' completeness").
    ig_baseline = "blurred"

    def __init__(self, *, n_classes: int = 8, in_shape=(430, 2), fs: float, hidden: int = 64, lead_layout: str = "concat",
                 frame: int = 1, readout: str = "last", rngs: nnx.Rngs):
        self._set_facts(layout=lead_layout, fs=fs, in_shape=in_shape)
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        glorot = nnx.initializers.glorot_uniform()
        self.frame, self.readout = frame, readout
        self.lstm = LSTM(frame * (in_shape[1] if lead_layout == "channels" else 1), hidden, rngs=rngs)
        self.dense = nnx.Linear(hidden, 32, kernel_init=glorot, rngs=rngs)
        self.out = nnx.Linear(32, n_classes, kernel_init=glorot, rngs=rngs)

    def _sequence(self, x):
        """x f32[B, T, L] -> the LSTM's input f32[B, S, F] (S steps of F = frame * (L or 1) features)."""
        seq = concat_leads(x) if self.layout == "concat" else x
        if self.frame == 1:
            return seq
        b, n, f = seq.shape
        pad = -n % self.frame
        seq = jnp.pad(seq, ((0, 0), (0, pad), (0, 0)))
        return seq.reshape(b, (n + pad) // self.frame, self.frame * f)

    def layer_specs(self):
        t, l = self.in_shape
        n = t * l if self.layout == "concat" else t
        return (LayerSpec("lstm", -(-n // self.frame), self.lstm.hidden, "recurrent"),)

    def features(self, x, hooks: Hooks = DEFAULT_HOOKS):
        return hooks.tap("lstm", self.lstm(self._sequence(x)))

    def head(self, f, hooks: Hooks = DEFAULT_HOOKS):
        return self._head_last(f[:, -1] if self.readout == "last" else max_over_time(f), hooks)

    def _head_last(self, h, hooks):
        return hooks.linear(self.out, hooks.act(jax.nn.relu, hooks.linear(self.dense, h)))

    def __call__(self, x, hooks: Hooks = DEFAULT_HOOKS):
        if hooks is not DEFAULT_HOOKS or self.readout != "last":  # a tap on "lstm" or a max over steps needs the sequence
            return self.head(self.features(x, hooks), hooks)
        # Same as head(features(x)) without stacking the T hidden states.
        return self._head_last(self.lstm(self._sequence(x), return_sequence=False), hooks)
