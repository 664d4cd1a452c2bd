"""The model contract, the hook seam, and the pure functions attribution code works with.

Every model subclasses :class:`ECGModel` and takes ``x: f32[B, T, L]`` (beats,
samples, leads) to logits ``f32[B, C]``. It carries the facts methods need and
exposes them as one frozen, hashable :class:`ModelInfo` (``model.info()``):
its lead layout (``"concat"``: the L leads are one sequence of L*T samples;
``"channels"``: L input channels of T samples), its sampling rate, its input
shape, its named layers from input to output (with their time length T') and
the parameter groups of cascading randomisation.

**Hooks.** The forward pass sends every elementwise nonlinearity, every
linear map (convolution, dense, eval-mode BatchNorm) and every named layer
through a :class:`Hooks` object::

    hooks.act(fn, z)        # fn: the nonlinearity, e.g. jax.nn.relu; default fn(z)
    hooks.linear(layer, x)  # layer: Conv1d | nnx.Linear | nnx.BatchNorm; default layer(x)
    hooks.tap(name, h)      # a named layer's output; default h

The default hooks compute exactly what the model computed before hooks
existed (the same operations, so the same numbers bit for bit). A rule-based
method (guided backprop, DeepLIFT, LRP) is a ``Hooks`` subclass that changes
how gradients pass through these points; a layer method taps a named layer.
Neither touches the models. Non-elementwise nonlinearities the hooks do not
see (an LSTM's gates) are declared in ``ModelInfo.gated``.

Attribution code never touches NNX: ``eval_split(model)`` takes an eval-mode
view (BatchNorm on running statistics, no dropout) and splits it once, and
``pure_fns(graphdef, state)`` builds pure callables that merge inside whatever
transform calls them (``jax.jit`` with ``state`` as an argument, ``vmap``,
``grad``).
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
from flax import nnx

from ecgjax.errors import ConfigError

LAYOUTS = ("concat", "channels")
LAYER_KINDS = ("conv", "recurrent", "fused")


# -- facts ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One named layer: ``name``, its output's time length ``length`` (T'), ``channels`` (F) and ``kind``
    (``"conv"``: a convolutional feature map; ``"recurrent"``: a hidden-state sequence; ``"fused"``: a
    feature map joined with per-beat inputs constant over time, as rr_net's RR features)."""

    name: str
    length: int
    channels: int
    kind: str

    def __post_init__(self):
        if self.kind not in LAYER_KINDS:
            raise ValueError(f"layer {self.name!r}: kind must be one of {LAYER_KINDS}, got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What attribution methods may know about a model (hashable: a static jit argument).

    Attributes:
      name: the registry name (``"jones2020_cnn"``).
      layout: ``"concat"`` or ``"channels"`` (see the module docstring).
      fs: sampling rate of the beats the model reads (Hz), from the data.
      in_shape: ``(T, L)``.
      layers: named layers from input to output; ``layer(name, x)`` returns
        f32[B, length, channels].
      feature_layer: the name of the layer ``features`` returns.
      cascade: parameter groups (top-level attribute names) from the output
        back to the input, for cascading randomisation.
      gated: why not every nonlinearity passes through ``hooks.act``
        (multiplicative gates, as an LSTM's), or ``""`` when all do.
      ig_baseline: the baseline (``ecgjax.attribution.baselines.BASELINES``, a deterministic
        one) that integrated gradients uses for this model unless told otherwise: the one
        from which its straight path has no near-jump of the logit that a quadrature
        cannot resolve (``integrated_gradients``' docstring; docs/results.md measures it).
    """

    name: str
    layout: str
    fs: float
    in_shape: tuple[int, int]
    layers: tuple[LayerSpec, ...]
    feature_layer: str
    cascade: tuple[str, ...]
    gated: str = ""
    ig_baseline: str = "zeros"

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.layers)

    def layer(self, name: str) -> LayerSpec:
        for s in self.layers:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no layer {name!r}; layers: {list(self.layer_names)}")

    def step_s(self, name: str) -> float:
        """Seconds of one beat lead covered by one position of layer ``name`` (its time resolution)."""
        t, n_leads = self.in_shape
        per_lead = self.layer(name).length / (n_leads if self.layout == "concat" else 1)
        return (t / self.fs) / per_lead


# -- hooks -----------------------------------------------------------------------------


class Hooks:
    """How a forward pass computes nonlinearities, linear maps and named layers (default: unchanged).

    Subclass to change gradients (custom VJPs, stop-gradient tricks) while
    keeping forward values. Hooks are called at trace time, so they may hold
    arrays (e.g. a perturbation to add at a named layer) and record values.
    """

    def act(self, fn: Callable, z: jax.Array) -> jax.Array:
        """An elementwise nonlinearity ``fn`` (relu, leaky relu) applied to ``z``."""
        return fn(z)

    def linear(self, layer: Any, x: jax.Array) -> jax.Array:
        """A linear or affine layer (Conv1d, nnx.Linear, eval-mode nnx.BatchNorm, Affine) applied to ``x``;
        ``affine_parts(layer)`` splits it into ``fn(x, w) + b``."""
        return layer(x)

    def tap(self, name: str, h: jax.Array) -> jax.Array:
        """The output ``h`` of the named layer ``name`` (f32[B, T', F])."""
        return h


DEFAULT_HOOKS = Hooks()


class _Record(Hooks):
    """Records named layers' outputs (``values[name]``) and leaves everything unchanged."""

    def __init__(self):
        self.values: dict[str, jax.Array] = {}

    def tap(self, name, h):
        self.values[name] = h
        return h


@dataclasses.dataclass(frozen=True, eq=False)
class Affine:
    """A linear layer of a model written as pure functions: ``layer(x) = fn(x, w) + b`` (``b`` may be None);
    ``kind``: ``"conv"``, ``"dense"`` or ``"norm"`` (see :func:`layer_kind`)."""

    fn: Callable
    w: jax.Array
    b: jax.Array | None = None
    kind: str = "dense"

    def __call__(self, x: jax.Array) -> jax.Array:
        y = self.fn(x, self.w)
        return y if self.b is None else y + self.b


def affine_parts(layer: Any) -> tuple[Callable, jax.Array, jax.Array | None]:
    """``(fn, w, b)`` with ``layer(x) == fn(x, w) + b`` (b may be None) and ``fn`` linear in x and in w.

    Conv1d: the bias-free convolution; nnx.Linear: ``x @ w``; an eval-mode
    nnx.BatchNorm: ``x * w`` with ``w = scale / sqrt(var + eps)`` and
    ``b = bias - mean * w``. Rule-based methods use it to rewrite a layer's
    backward pass (e.g. LRP's z+ rule uses ``fn(x, max(w, 0))``).
    """
    from ecgjax.models.layers import Conv1d, conv1d

    if isinstance(layer, Affine):
        return layer.fn, layer.w, layer.b
    if isinstance(layer, Conv1d):
        fn = lambda x, w: conv1d(x, w, stride=layer.stride, padding=layer.padding, impl=layer.impl)  # noqa: E731
        return fn, layer.kernel[...], None if layer.bias is None else layer.bias[...]
    if isinstance(layer, nnx.Linear):
        return (lambda x, w: x @ w), layer.kernel[...], None if layer.bias is None else layer.bias[...]
    if isinstance(layer, nnx.BatchNorm):
        if not layer.use_running_average:
            raise ValueError("affine_parts(BatchNorm) needs eval mode (use_running_average=True): use eval_view")
        w = jax.lax.rsqrt(layer.var[...] + layer.epsilon)
        if layer.scale is not None:
            w = w * layer.scale[...]
        b = -layer.mean[...] * w
        if layer.bias is not None:
            b = b + layer.bias[...]
        return (lambda x, w: x * w), w, b
    raise TypeError(f"affine_parts: unsupported layer {type(layer).__name__}")


def layer_kind(layer: Any) -> str:
    """``"conv"`` (Conv1d), ``"dense"`` (nnx.Linear) or ``"norm"`` (nnx.BatchNorm): rules may differ per kind."""
    from ecgjax.models.layers import Conv1d

    if isinstance(layer, Affine):
        return layer.kind
    if isinstance(layer, Conv1d):
        return "conv"
    if isinstance(layer, nnx.Linear):
        return "dense"
    if isinstance(layer, nnx.BatchNorm):
        return "norm"
    raise TypeError(f"layer_kind: unsupported layer {type(layer).__name__}")


# -- the contract ----------------------------------------------------------------------


class ECGModel(nnx.Module, abc.ABC):
    """Abstract base of every model (concrete models are final).

    A subclass sets ``layout``, ``fs`` and ``in_shape`` (via
    :meth:`_set_facts` in its constructor), the class constant
    ``cascade_order``, and implements :meth:`features`, :meth:`head` and
    :meth:`layer_specs`, routing its nonlinearities, linear layers and named
    layers through ``hooks``. ``head(features(x)) == __call__(x)``.
    """

    registry_name: ClassVar[str] = ""  # filled in by ecgjax.models.register
    cascade_order: ClassVar[tuple[str, ...]] = ()
    gated: ClassVar[str] = ""
    ig_baseline: ClassVar[str] = "zeros"

    def _set_facts(self, *, layout: str, fs: float, in_shape) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"lead layout must be one of {LAYOUTS}, got {layout!r}")
        if not fs or fs <= 0:
            raise ValueError(f"sampling rate fs must be positive (from the data), got {fs!r}")
        self.layout = layout
        self.fs = float(fs)
        self.in_shape = tuple(int(v) for v in in_shape)

    @abc.abstractmethod
    def features(self, x: jax.Array, hooks: Hooks = DEFAULT_HOOKS) -> jax.Array:
        """x: f32[B, T, L] -> the feature map f32[B, T', F] (the layer ``feature_layer``)."""

    @abc.abstractmethod
    def head(self, f: jax.Array, hooks: Hooks = DEFAULT_HOOKS) -> jax.Array:
        """f32[B, T', F] -> logits f32[B, C]."""

    @abc.abstractmethod
    def layer_specs(self) -> tuple[LayerSpec, ...]:
        """Named layers from input to output, with their lengths for ``in_shape`` (the last is the feature map)."""

    def __call__(self, x: jax.Array, hooks: Hooks = DEFAULT_HOOKS) -> jax.Array:
        """x: f32[B, T, L] -> logits f32[B, C]."""
        return self.head(self.features(x, hooks), hooks)

    def layer(self, name: str, x: jax.Array) -> jax.Array:
        """The output of the named layer ``name``: f32[B, T', F]."""
        if name not in {s.name for s in self.layer_specs()}:
            raise KeyError(f"{self.registry_name} has no layer {name!r}; layers: {[s.name for s in self.layer_specs()]}")
        rec = _Record()
        self.features(x, rec)
        return rec.values[name]

    def info(self) -> ModelInfo:
        specs = self.layer_specs()
        return ModelInfo(name=self.registry_name or type(self).__name__, layout=self.layout, fs=self.fs,
                         in_shape=self.in_shape, layers=specs, feature_layer=specs[-1].name,
                         cascade=tuple(self.cascade_order), gated=self.gated, ig_baseline=self.ig_baseline)


# -- pure functions ----------------------------------------------------------------------


class Static:
    """A static ``jax.jit`` argument hashed once: ``value`` (a graph definition, or a tuple holding some) with its hash
    cached and identity checked first. flax recomputes a ``GraphDef``'s hash over the whole graph on each call, and jax
    hashes a jitted function's static arguments on every call: a training or evaluation step would pay it per batch.
    Equal values are still equal (another run of one model compiles nothing)."""

    __slots__ = ("value", "_hash")

    def __init__(self, value):
        self.value = value
        self._hash = hash(value)

    def __hash__(self):
        return self._hash

    def __eq__(self, other):
        return self is other or (isinstance(other, Static) and self._hash == other._hash and self.value == other.value)


@dataclasses.dataclass(frozen=True)
class Fns:
    """Pure functions of one model in eval mode, and its facts.

    Attributes:
      logit_fn: x f32[B, T, L] -> f32[B, C].
      feature_fn: x f32[B, T, L] -> f32[B, T', F].
      head_fn: f32[B, T', F] -> f32[B, C].
      layers: named intermediate outputs, x -> f32[B, T', F].
      info: the model's :class:`ModelInfo` (None only for hand-made Fns).
      rebuild: ``hooks -> Fns`` of the same model with other hooks (None if the
        model has no hook seam).
      source: ``(graphdef, state, hooks)`` the functions were built from (None
        for hand-made Fns): the attribution runner passes ``state`` to its
        compiled step as an argument instead of baking it in as constants.
    """

    logit_fn: Callable
    feature_fn: Callable
    head_fn: Callable
    layers: Mapping[str, Callable] = dataclasses.field(default_factory=dict)
    info: ModelInfo | None = None
    rebuild: Callable[[Hooks], "Fns"] | None = None
    source: tuple[Any, Any, Hooks] | None = None

    def with_hooks(self, hooks: Hooks) -> "Fns":
        """The same model's functions with its nonlinearities, linear maps and taps sent through ``hooks``."""
        if self.rebuild is None:
            raise ValueError("these Fns have no hook seam (built by hand, not by pure_fns)")
        return self.rebuild(hooks)


def eval_view(model: nnx.Module) -> nnx.Module:
    """The model in inference mode (a view; the model itself is unchanged)."""
    return nnx.view(model, deterministic=True, use_running_average=True, raise_if_not_found=False)


def eval_split(model: nnx.Module):
    """``(graphdef, state)`` of the eval-mode view; ``state`` is a pytree of arrays."""
    return nnx.split(eval_view(model))


def model_info(model: nnx.Module) -> ModelInfo:
    """The facts of an ``ECGModel`` (or of ``(graphdef, state)``)."""
    if isinstance(model, tuple):
        model = nnx.merge(*model)
    return model.info()


def pure_fns(graphdef, state, hooks: Hooks = DEFAULT_HOOKS) -> Fns:
    """Pure callables over ``nnx.merge(graphdef, state)``, with ``hooks`` in every forward pass.

    Call this *inside* ``jax.jit`` with ``state`` as a traced argument so the
    parameters are inputs of the compiled program, not constants.
    """

    def merged():
        return nnx.merge(graphdef, state)

    m = merged()
    return Fns(
        logit_fn=lambda x: merged()(x, hooks),
        feature_fn=lambda x: merged().features(x, hooks),
        head_fn=lambda f: merged().head(f, hooks),
        layers={s.name: (lambda x, n=s.name: merged().layer(n, x)) for s in m.layer_specs()},
        info=m.info(),
        rebuild=lambda h: pure_fns(graphdef, state, h),
        source=(graphdef, state, hooks),
    )


# -- initialisation ------------------------------------------------------------------

#: How :func:`initialise` compiles: ``program`` (default), one program per model; ``op_by_op``, the constructor as
#: written, one program per initialiser and parameter shape. The second pays where many models of different
#: configurations are built with jax's persistent compilation cache on (the test suite): their parameter shapes
#: repeat, so each initialiser's program is compiled once for all of them, where each configuration's one program
#: would be compiled anew. Both draw the same values, bit for bit (tests/models/test_models.py).
INIT_ENV = "ECGJAX_INIT"
INIT_MODES = ("program", "op_by_op")


def initialise(ctor: Callable[..., nnx.Module], rngs: nnx.Rngs, /, **kwargs) -> nnx.Module:
    """``ctor(**kwargs, rngs=rngs)`` with every parameter drawn in one compiled program: the same values, bit for bit,
    as the constructor run op by op (each of jax's random functions its own program, one XLA compilation per
    initialiser and parameter shape), and ``rngs`` advanced as that call advances it. The program is compiled once per
    (``ctor``, ``kwargs``, Rngs structure), whatever the seed. Under a transformation that traces ``rngs``
    (``nnx.eval_shape``, ``jax.jit``), or with ``$ECGJAX_INIT=op_by_op`` (:data:`INIT_ENV`), the constructor runs op by
    op instead (in that trace)."""
    mode = os.environ.get(INIT_ENV) or "program"
    if mode not in INIT_MODES:
        raise ConfigError(f"${INIT_ENV}={mode!r}: set it to one of {', '.join(INIT_MODES)} or leave it unset")
    if mode == "op_by_op" or any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(nnx.state(rngs))):
        return ctor(**kwargs, rngs=rngs)
    rng_graphdef, rng_state = nnx.split(rngs)
    graphdef, init = _initialiser(_Call(ctor, kwargs), rng_graphdef)
    model_state, rng_state = init(rng_state)
    nnx.update(rngs, rng_state)
    return nnx.merge(graphdef["model"], model_state)


class _Call:
    """``ctor(**kwargs, rngs=...)`` waiting for its Rngs; equal (and hashed) by the constructor and its keywords, compared
    with their types (a tuple is not a list, 1 is not 1.0); a keyword that is neither plain data nor hashable (an
    array, say) makes the call equal only to itself."""

    def __init__(self, ctor: Callable[..., nnx.Module], kwargs: dict):
        self.ctor, self.kwargs = ctor, kwargs
        try:
            self._key = (ctor, _typed_key(kwargs))
        except TypeError:
            self._key = object()

    def __call__(self, rngs: nnx.Rngs) -> nnx.Module:
        return self.ctor(**self.kwargs, rngs=rngs)

    def __eq__(self, other) -> bool:
        return isinstance(other, _Call) and other._key == self._key

    def __hash__(self) -> int:
        return hash(self._key)


def _typed_key(v):
    """A hashable key of ``v`` that keeps the type of every plain value (None, bool, int, float, str, and tuples, lists
    and dicts of them); any other value must be hashable and keys as itself. TypeError otherwise."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return type(v).__name__, v
    if isinstance(v, (tuple, list)):
        return type(v).__name__, tuple(_typed_key(i) for i in v)
    if isinstance(v, dict):
        return "dict", tuple(sorted((str(k), _typed_key(x)) for k, x in v.items()))
    hash(v)
    return "object", v


# On the CPU, XLA's lowest optimisation for the one-off initialisation: its random-number code (threefry, erf_inv)
# compiles several times faster and computes the same values (tests/models/test_models.py); optimising it costs more
# than it saves (benchmarks/model_build.py). Other backends compile it as they compile everything.
_CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.lru_cache(maxsize=64)
def _initialiser(call: _Call, rng_graphdef):
    """({"model": the module's graph definition, set when ``init`` is traced}, ``init``): the jitted
    ``init(rng_state) -> (module state, the Rngs' state after the construction)``."""
    graphdef = {}

    def init(rng_state):
        rngs = nnx.merge(rng_graphdef, rng_state)
        graphdef["model"], model_state = nnx.split(call(rngs))
        return model_state, nnx.state(rngs)

    return graphdef, jax.jit(init, compiler_options=_CPU_INIT_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None)


def concat_leads(x: jnp.ndarray) -> jnp.ndarray:
    """f32[B, T, L] -> f32[B, L*T, 1]: lead 1 then lead 2, as the paper feeds its models."""
    b, t, l = x.shape
    return jnp.transpose(x, (0, 2, 1)).reshape(b, l * t, 1)


def count_params(model: nnx.Module, *, include_batch_stats: bool = True) -> int:
    """Parameters, with BatchNorm running statistics counted as Keras does by default."""
    filt = nnx.Any(nnx.Param, nnx.BatchStat) if include_batch_stats else nnx.Param
    return sum(int(a.size) for a in jax.tree.leaves(nnx.state(model, filt)))


__all__ = ["DEFAULT_HOOKS", "Affine", "ECGModel", "Fns", "Hooks", "LayerSpec", "ModelInfo", "affine_parts", "concat_leads",
           "count_params", "eval_split", "eval_view", "layer_kind", "model_info", "pure_fns"]
