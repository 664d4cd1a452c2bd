"""Model registry: ``build(name, n_classes=..., in_shape=(T, L), rngs=...)``.

Built in: ``jones2020_cnn``, ``jones2020_lstm``, ``ribeiro_cnn``. A new model
joins with ``@register("name")`` on a class honouring ``ecgjax.models.base``'s
contract.
"""

from __future__ import annotations

from flax import nnx

from ecgjax.errors import ConfigError
from ecgjax.models.base import Fns, count_params, eval_split, eval_view, pure_fns
from ecgjax.models.jones import Jones2020CNN, Jones2020LSTM
from ecgjax.models.ribeiro import RibeiroCNN

_MODELS: dict[str, type] = {}


def register(name: str):
    def deco(cls):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = cls
        return cls

    return deco


register("jones2020_cnn")(Jones2020CNN)
register("jones2020_lstm")(Jones2020LSTM)
register("ribeiro_cnn")(RibeiroCNN)


def available() -> list[str]:
    return sorted(_MODELS)


def build(name: str, *, n_classes: int, in_shape=(430, 2), rngs: nnx.Rngs, **kwargs) -> nnx.Module:
    """A freshly initialised model by name; ``kwargs`` go to its constructor."""
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available())}")
    try:
        return _MODELS[name](n_classes=n_classes, in_shape=tuple(in_shape), rngs=rngs, **kwargs)
    except TypeError as e:
        raise ConfigError(f"model {name!r}: {e}") from e


__all__ = ["Fns", "available", "build", "count_params", "eval_split", "eval_view", "pure_fns", "register"]
