"""Name -> attribution-method class. Filled at import of ``ecgjax.attribution``; read-only afterwards.

Usage::

    @register("saliency")
    @dataclasses.dataclass(frozen=True)
    class Saliency(AttributionMethod): ...

    get("integrated_gradients", steps=64)   # an instance, hyperparameters checked
    available()                              # sorted names
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import types
import typing
from typing import Callable, Iterator

from ecgjax.attribution.base import KINDS, AttributionMethod
from ecgjax.errors import ConfigError

_REGISTRY: dict[str, type[AttributionMethod]] = {}  # the only module-level mutable state


def register(name: str) -> Callable[[type], type]:
    """Class decorator registering a frozen ``AttributionMethod`` subclass under ``name``.

    Raises:
      ValueError: ``name`` is already registered, the class is not a frozen
        dataclass subclass of ``AttributionMethod``, or its ``kind`` is unknown.
    """

    def deco(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"attribution method {name!r} is already registered (by {_REGISTRY[name].__qualname__})")
        if not (isinstance(cls, type) and issubclass(cls, AttributionMethod)):
            raise ValueError(f"{cls!r} must subclass AttributionMethod")
        if "__dataclass_params__" not in vars(cls) or not cls.__dataclass_params__.frozen:
            raise ValueError(f"{cls.__qualname__} must be a frozen dataclass (hashable: a static jit argument)")
        if cls.kind not in KINDS:
            raise ValueError(f"{cls.__qualname__}.kind={cls.kind!r} not in {KINDS}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> tuple[str, ...]:
    """Registered method names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_class(name: str) -> type[AttributionMethod]:
    """The class registered as ``name`` (ConfigError listing the choices if unknown)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown attribution method {name!r}; available: {', '.join(available())}") from None


def get(name: str, **hparams) -> AttributionMethod:
    """An instance of method ``name`` with hyperparameters ``hparams``.

    Raises:
      ConfigError: unknown name, or a hyperparameter the method does not have
        (the message lists the valid ones).
    """
    cls = get_class(name)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    bad = sorted(set(hparams) - fields)
    if bad:
        close = difflib.get_close_matches(bad[0], sorted(fields), n=2, cutoff=0.5)
        raise ConfigError(
            f"attribution method {name!r} has no hyperparameter(s) {bad}"
            + (f"; did you mean {', '.join(close)}?" if close else "")
            + f"; valid: {sorted(fields) or 'none'}"
        )
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # an annotation this module cannot evaluate: the constructor judges
        hints = {}
    for k, v in hparams.items():
        _check_type(name, k, v, hints.get(k))
    try:
        return cls(**hparams)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"attribution method {name!r}: {e}") from e


_SIMPLE = {
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
    bool: lambda v: isinstance(v, bool),
    type(None): lambda v: v is None,
}


def _check_type(method: str, key: str, value, tp) -> None:
    """Refuse ``value`` when ``tp`` is int/float/str/bool (or a union of them with None) and it does not fit."""
    arms = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    if not arms or not all(a in _SIMPLE for a in arms):
        return
    if not any(_SIMPLE[a](value) for a in arms):
        want = " or ".join(getattr(a, "__name__", str(a)).replace("NoneType", "None") for a in arms)
        raise ConfigError(f"attribution method {method!r}: {key}={value!r} should be {want}")


@contextlib.contextmanager
def temporary(name: str, cls: type) -> Iterator[type]:
    """Register ``cls`` as ``name`` for the duration of a ``with`` block (tests, docs examples)."""
    register(name)(cls)
    try:
        yield cls
    finally:
        _REGISTRY.pop(name, None)
