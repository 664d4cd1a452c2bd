"""The residual CNN of Ribeiro et al. (2020), adapted to one MIT-BIH beat.

The cross-framework benchmark model of performance.md: 753 MFLOP per beat
forward for an 860-sample input.
"""

from __future__ import annotations

import jax
from flax import nnx

from ecgjax.models.base import DEFAULT_HOOKS, ECGModel, Hooks, LayerSpec, concat_leads
from ecgjax.models.layers import Conv1d, Dropout, max_pool_same

_HE = nnx.initializers.he_normal()


def _bn(n, rngs, **kw):
    return nnx.BatchNorm(n, momentum=0.99, epsilon=1e-3, rngs=rngs, **kw)


class _Unit(nnx.Module):
    """Pre-activation residual unit: skip = maxpool(4) -> 1x1 conv; main = conv -> BN -> ReLU -> dropout -> conv(stride 4)."""

    def __init__(self, cin: int, cout: int, *, dropout: float, conv_impl: str, rngs: nnx.Rngs):
        self.skip_conv = Conv1d(cin, cout, 1, use_bias=False, kernel_init=_HE, impl=conv_impl, rngs=rngs) if cin != cout else None
        self.conv1 = Conv1d(cin, cout, 16, use_bias=False, kernel_init=_HE, impl=conv_impl, rngs=rngs)
        self.bn1 = _bn(cout, rngs)
        self.drop1 = Dropout(dropout, rngs=rngs)
        self.conv2 = Conv1d(cout, cout, 16, stride=4, use_bias=False, kernel_init=_HE, impl=conv_impl, rngs=rngs)
        self.bn_out = _bn(cout, rngs, use_scale=False, use_bias=False)
        self.drop_out = Dropout(dropout, rngs=rngs)

    def __call__(self, x, skip, hooks: Hooks = DEFAULT_HOOKS):
        skip = max_pool_same(skip, 4)
        if self.skip_conv is not None:
            skip = hooks.linear(self.skip_conv, skip)
        h = hooks.linear(self.conv1, x)
        h = hooks.linear(self.conv2, self.drop1(hooks.act(jax.nn.relu, hooks.linear(self.bn1, h))))
        s = h + skip
        return self.drop_out(hooks.act(jax.nn.relu, hooks.linear(self.bn_out, s))), s


class RibeiroCNN(ECGModel):
    """Stem conv(64) -> 4 residual units (128, 196, 256, 320 filters, /4 each) -> flatten -> dense.

    x: f32[B, T, L] -> logits f32[B, C]. With ``lead_layout="concat"`` (the
    benchmark's) the leads are concatenated into one channel of L*T samples;
    with ``"channels"`` they are L input channels of T samples. Named layers:
    ``stem`` (after BN and ReLU), ``unit1`` .. ``unit4`` (each unit's output,
    a quarter of the previous length); ``features`` = ``unit4``, f32[B, T', 320].
    """

    cascade_order = ("dense", "units", "bn0", "stem")

    def __init__(
        self,
        *,
        n_classes: int = 8,
        in_shape=(430, 2),
        fs: float,
        filters=(128, 196, 256, 320),
        dropout: float = 0.2,
        lead_layout: str = "concat",
        conv_impl: str = "auto",
        rngs: nnx.Rngs,
    ):
        self._set_facts(layout=lead_layout, fs=fs, in_shape=in_shape)
        t, l = in_shape
        length, cin = (t * l, 1) if lead_layout == "concat" else (t, l)
        self.stem = Conv1d(cin, 64, 16, use_bias=False, kernel_init=_HE, impl=conv_impl, rngs=rngs)
        self.bn0 = _bn(64, rngs)
        units, c = [], 64
        for f in filters:
            units.append(_Unit(c, f, dropout=dropout, conv_impl=conv_impl, rngs=rngs))
            c = f
            length = -(-length // 4)
        self.units = nnx.List(units)
        self.filters = tuple(int(f) for f in filters)
        self.dense = nnx.Linear(length * c, n_classes, rngs=rngs)

    def layer_specs(self):
        t, l = self.in_shape
        length = t * l if self.layout == "concat" else t
        specs = [LayerSpec("stem", length, 64, "conv")]
        for i, f in enumerate(self.filters):
            length = -(-length // 4)
            specs.append(LayerSpec(f"unit{i + 1}", length, f, "conv"))
        return tuple(specs)

    def features(self, x, hooks: Hooks = DEFAULT_HOOKS):
        h = concat_leads(x) if self.layout == "concat" else x
        h = hooks.tap("stem", hooks.act(jax.nn.relu, hooks.linear(self.bn0, hooks.linear(self.stem, h))))
        skip = h
        for i, u in enumerate(self.units):
            h, skip = u(h, skip, hooks)
            h = hooks.tap(f"unit{i + 1}", h)
        return h

    def head(self, f, hooks: Hooks = DEFAULT_HOOKS):
        return hooks.linear(self.dense, f.reshape(f.shape[0], -1))
