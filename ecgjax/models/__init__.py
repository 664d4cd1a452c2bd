"""Model registry: ``build(name, n_classes=..., in_shape=(T, L), fs=..., rngs=...)``.

Built in: ``jones2020_cnn``, ``jones2020_lstm``, ``ribeiro_cnn``, ``rr_net``
(waveform + RR features). A new model joins with ``@register("name")`` on a
subclass of ``ecgjax.models.base.ECGModel`` (the contract: layout, sampling
rate, named layers, hooks).
"""

from __future__ import annotations

from flax import nnx

from ecgjax.errors import ConfigError
from ecgjax.models.base import ECGModel, Fns, Hooks, ModelInfo, count_params, eval_split, eval_view, initialise, model_info, pure_fns
from ecgjax.models.jones import Jones2020CNN, Jones2020LSTM
from ecgjax.models.ribeiro import RibeiroCNN
from ecgjax.models.rr_net import RRNet

_MODELS: dict[str, type] = {}


def register(name: str):
    def deco(cls):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        if not (isinstance(cls, type) and issubclass(cls, ECGModel)):
            raise ValueError(f"{cls!r} must subclass ecgjax.models.base.ECGModel")
        cls.registry_name = name
        _MODELS[name] = cls
        return cls

    return deco


register("jones2020_cnn")(Jones2020CNN)
register("jones2020_lstm")(Jones2020LSTM)
register("ribeiro_cnn")(RibeiroCNN)
register("rr_net")(RRNet)


def available() -> list[str]:
    return sorted(_MODELS)


def _positive_ints(v) -> bool:
    vs = v if isinstance(v, (tuple, list)) else (v,)
    return len(vs) > 0 and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in vs)


# Range checks by constructor keyword, shared by every model that takes it: (test, what it must be).
_KWARG_RULES = {
    "dropout": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1, "a number in [0, 1)"),
    "hidden": (lambda v: _positive_ints(v) and not isinstance(v, (tuple, list)), "a whole number >= 1"),
    "filters": (_positive_ints, "whole numbers >= 1"),
    "lead_layout": (lambda v: v in ("concat", "channels"), "'concat' or 'channels'"),
    "conv_impl": (lambda v: isinstance(v, str), "a string"),
    "frame": (lambda v: _positive_ints(v) and not isinstance(v, (tuple, list)), "a whole number >= 1"),
    "readout": (lambda v: v in ("last", "max"), "'last' or 'max'"),
}


def check_kwargs(name: str, kwargs: dict, where: str = "model.kwargs") -> None:
    """Refuse an unknown model, an unknown constructor keyword (suggesting close names) or a value out of range.

    Cheap (no model is built): ``train_and_evaluate`` and study configs call it before any work.
    """
    import difflib
    import inspect

    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(available())}")
    params = [k for k in inspect.signature(_MODELS[name].__init__).parameters if k not in ("self", "n_classes", "in_shape", "fs", "rngs")]
    for k, v in kwargs.items():
        if k not in params:
            close = difflib.get_close_matches(k, params, n=2, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(params) or 'none'}"
            raise ConfigError(f"{where}: model {name!r} has no keyword {k!r}; {hint}")
        rule = _KWARG_RULES.get(k)
        if rule is not None and not rule[0](v):
            raise ConfigError(f"{where}.{k}={v!r}; must be {rule[1]}")


def build(name: str, *, n_classes: int, in_shape, fs: float, rngs: nnx.Rngs, **kwargs) -> ECGModel:
    """A freshly initialised model by name.

    ``in_shape`` (T, L) and ``fs`` (Hz) come from the data the model reads
    (``BeatSet.x.shape[1:]``, ``BeatSet.fs``); ``kwargs`` go to its constructor
    (checked by ``check_kwargs``). Initialised by ``base.initialise``: one compiled program, the same values as
    the constructor called op by op.
    """
    check_kwargs(name, kwargs)
    try:
        return initialise(_MODELS[name], rngs, n_classes=n_classes, in_shape=tuple(in_shape), fs=float(fs), **kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model {name!r}: {e}") from e


__all__ = ["ECGModel", "Fns", "Hooks", "ModelInfo", "available", "build", "check_kwargs", "count_params", "eval_split",
           "eval_view", "initialise", "model_info", "pure_fns", "register"]
