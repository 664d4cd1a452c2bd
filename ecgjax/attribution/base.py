"""The attribution contract: one abstract, frozen, hashable dataclass.

Shape vocabulary: ``B`` beats in a batch, ``T`` samples per beat, ``L`` leads,
``C`` classes, ``T'`` feature positions, ``F`` feature channels.

An :class:`AttributionMethod` is a *value*: its hyperparameters are dataclass
fields, so an instance is hashable and can be a static argument of
``jax.jit``. It has one method::

    method(fns, x: f32[B, T, L], target: i32[B], key: key[B] | None) -> f32[B, T, L]

Rules every method obeys (checked for every registered method by
``tests/attribution/test_contract.py``):

* pure and jittable; no Python side effects;
* row ``i`` depends only on ``(x[i], target[i], key[i])``: methods never mix
  beats, so padding a batch or changing its size does not change real rows;
* the output has the input's shape and dtype and is **signed**: |.|, ReLU or
  min-max normalisation are analysis choices (``ecgjax.analysis``);
* randomness comes only from ``key``, an array of **per-beat** keys
  (``key[B]``, new-style typed keys). Per-beat keys (rather than one key for
  the batch) are what make random methods independent of batch size and
  padding: the runner derives ``key[i] = fold_in(base_key, global_index_i)``.
  Methods with ``needs_key = False`` ignore ``key`` (it may be ``None``).

``fns`` is an ``ecgjax.models.base.Fns``: ``logit_fn``, ``feature_fn``,
``head_fn`` and ``layers``, all pure callables of batched inputs, evaluated in
eval mode so rows are independent; ``info``, the model's facts (lead layout,
sampling rate, named layers with their time lengths); and ``with_hooks``, the
same functions with the model's nonlinearities and linear layers sent through
a method's hooks (rule-based methods). A method reads layout, layers and
sampling rate from ``fns.info``, never from a default of its own.

A setting a method leaves to the model is resolved by ``method.for_model(info)``
(callers that record or reuse settings resolve first; ``__call__`` resolves from
``fns.info``).

A method says whether it can explain a model: ``method.supports(info)`` is
``None`` or the reason it cannot, one line. Callers check it before any work
(:func:`check_supported`); a method also refuses at trace time.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from ecgjax.errors import ConfigError

KINDS = ("gradient", "perturbation", "layer", "rule", "control")
NO_INFO = "its facts (Fns.info: layout, sampling rate, layers) are unknown; build Fns with ecgjax.models.pure_fns"


@dataclasses.dataclass(frozen=True)
class AttributionMethod(abc.ABC):
    """Abstract base of every attribution method (final subclasses, no overriding chains).

    Class constants (set by each concrete class, not fields):
      name: the registry name (filled in by ``@register``).
      needs_key: whether ``__call__`` uses ``key``.
      kind: one of ``gradient`` (differentiates the logits w.r.t. the input),
        ``perturbation`` (only evaluates the model), ``layer`` (uses a named
        layer), ``rule`` (changes how gradients pass through the model's
        layers, via ``fns.with_hooks``), ``control`` (ignores the model).
      multiplies_by_input: whether the map already contains a factor of the
        input (gradient x input, IG), as captum's ``multiplies_by_inputs``.
      uses_target: whether the output depends on ``target`` at all (False for
        class-agnostic maps such as ``jones2020_layer_saliency``).
      needs_r: whether ``__call__`` also takes ``r: i32[B]``, each beat's R
        position inside its window, as a keyword (methods whose features are
        defined around R, e.g. ``kernel_shap``). The runner passes it from
        ``attribute_dataset(..., r=...)``; row ``i`` may use ``r[i]`` only.
    """

    name: ClassVar[str] = ""
    needs_key: ClassVar[bool] = False
    kind: ClassVar[str] = "gradient"
    multiplies_by_input: ClassVar[bool] = False
    uses_target: ClassVar[bool] = True
    needs_r: ClassVar[bool] = False

    def supports(self, info: Any) -> str | None:
        """``None`` if this method can explain the model described by ``info`` (a ``ModelInfo``,
        or None when unknown), else the reason it cannot, one line without the method's name."""
        return None

    def for_model(self, info: Any) -> "AttributionMethod":
        """This method with the settings it leaves to the model (e.g. integrated gradients'
        ``baseline="model"``) filled in from ``info`` (a ``ModelInfo``, or None when unknown)."""
        return self

    @abc.abstractmethod
    def __call__(self, fns: Any, x: jax.Array, target: jax.Array, key: jax.Array | None) -> jax.Array:
        """Attribution maps.

        Args:
          fns: pure model callables (``Fns``).
          x: f32[B, T, L] beats.
          target: i32[B] class whose logit is explained, one per beat.
          key: key[B] per-beat PRNG keys, or None when ``needs_key`` is False.

        Returns:
          f32[B, T, L] signed attribution, same shape and dtype as ``x``.
        """


def refusal(method: AttributionMethod, info: Any) -> str | None:
    """The one line saying why ``method`` cannot explain the model of ``info``, or None."""
    why = method.supports(info)
    if why is None:
        return None
    model = getattr(info, "name", None) or "this model"
    return f"{method.name or type(method).__name__} cannot explain {model}: {why}"


def check_supported(method: AttributionMethod, info: Any) -> None:
    """Raise ``ConfigError`` (CLI: exit 2, one line) if ``method`` cannot explain the model of ``info``."""
    line = refusal(method, info)
    if line is not None:
        raise ConfigError(line)


# -- helpers shared by the built-ins --------------------------------------------------


def target_grad(fns: Any, x: jax.Array, target: jax.Array) -> jax.Array:
    """Per-beat gradient of the target logit: ``d logit_fn(x)[i, target[i]] / d x[i]``.

    One reverse pass over the *batched* logits with cotangent ``one_hot(target, C)``
    (JAX autodiff cookbook: one VJP = one Jacobian row per beat). Equals
    ``vmap(grad(logit of one beat))`` because rows are independent in eval mode.

    Args:
      x: f32[B, T, L]; target: i32[B].
    Returns:
      f32[B, T, L].
    """
    logits, vjp = jax.vjp(fns.logit_fn, x)
    cot = jax.nn.one_hot(target, logits.shape[-1], dtype=logits.dtype)
    (g,) = vjp(cot)
    return g


def row_keys(key: jax.Array | None, batch: int, offset: int | jax.Array = 0) -> jax.Array | None:
    """Per-beat keys ``fold_in(key, offset + i)`` for ``i < batch`` (key[batch]).

    Accepts a single key (typed or raw uint32[2]); returns ``None`` for ``None``.
    """
    if key is None:
        return None
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)
    idx = jnp.arange(batch, dtype=jnp.uint32) + jnp.asarray(offset, jnp.uint32)
    return jax.vmap(lambda i: jax.random.fold_in(key, i))(idx)


def check_inputs(x: jax.Array, target: jax.Array) -> None:
    """Shape checks with clear messages (trace time, so free under jit)."""
    if x.ndim != 3:
        raise ValueError(f"x must be f32[B, T, L], got shape {x.shape}")
    if target.shape != (x.shape[0],):
        raise ValueError(f"target must be i32[B] with B={x.shape[0]}, got shape {target.shape}")
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"target must be integer class indices, got dtype {target.dtype}")


def attribute_all_classes(method: AttributionMethod, fns: Any, x: jax.Array, n_classes: int, key: jax.Array | None = None,
                          r: Any = None) -> jax.Array:
    """Maps for every class at once: f32[B, C, T, L] (``lax.map`` over classes, so memory is one class at a time)."""
    x = jnp.asarray(x)
    keys = None if not method.needs_key else (key if (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == (x.shape[0],)) else row_keys(key, x.shape[0]))
    extra = {"r": jnp.broadcast_to(jnp.asarray(r, jnp.int32), (x.shape[0],))} if method.needs_r else {}

    def one(c):
        return method(fns, x, jnp.full((x.shape[0],), c, jnp.int32), keys, **extra)

    return jnp.moveaxis(jax.lax.map(one, jnp.arange(n_classes)), 0, 1)


#: most chunks a scan is unrolled over by default (on CPU); beyond, it stays a loop
MAX_UNROLLED_CHUNKS = 32


def scan_unroll(flag: bool | None, n_chunks: int) -> bool:
    """Whether to unroll a method's ``lax.scan`` over ``n_chunks`` chunks.

    ``None`` (the default of the methods' ``unroll`` field): unroll on CPU when
    there are at most ``MAX_UNROLLED_CHUNKS`` chunks, keep the loop otherwise
    and on accelerators. XLA:CPU runs a rolled loop of convolutions several
    times slower, but unrolled, XLA keeps every chunk's buffers live: memory and compile time grow
    with the number of chunks instead of staying at ``chunk_size x B`` beats.
    Either way the runner's memory budget bounds the batch by the compiled
    program's own memory statistics.
    """
    if flag is None:
        return jax.default_backend() == "cpu" and n_chunks <= MAX_UNROLLED_CHUNKS
    return bool(flag)
