"""Experiment configuration: frozen dataclasses, Python config files, overrides.

A config file is a Python module with ``get_config(arg=None) -> Config``
(big_vision's convention without ml_collections); its docstring gives the
exact command, the expected wall time and the expected metric. ``arg``
selects a variant (``path.py:arg``).

    cfg = load_config("experiments/configs/jones2020_cnn_holdout.py")
    cfg = apply_overrides(cfg, ["train.lr=3e-4", "model.kwargs.hidden=8"])
    text = to_json(cfg); assert from_json(text) == cfg

Every value is type-checked: an unknown key or a wrong type raises
``ConfigError`` naming the key (and suggesting close names). Fields typed
``dict`` are free-form (model constructor keywords, protocol overrides, split
keywords); their contents are checked by the component that consumes them.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib.util
import inspect
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

from ecgjax.errors import ConfigError

OPTIMIZERS = ("adam", "nadam", "keras2_nadam")
LOSSES = ("ce", "focal")
BALANCING = ("none", "downsample_majority", "upsample")
EVAL_CHECKPOINTS = ("best", "last")


def _choice(key: str, value, choices) -> None:
    if value not in choices:
        raise ConfigError(f"{key}={value!r}; choose one of {list(choices)}")


def _nonnegative_int(key: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key}={value!r}; must be a whole number >= 0")


def _positive(key: str, value, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ConfigError(f"{key}={value!r}; must be > 0")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which beats, which split, which balancing.

    Attributes:
      protocol: a preset of ``ecgjax.data.protocols`` (``jones2020``,
        ``jones2020_code``, ``aami``) or ``synthetic`` (generated beats, no
        download; see ``ecgjax.train.data.synthetic_beats``).
      protocol_overrides: protocol fields to change (e.g. ``records``), or the
        keyword arguments of ``synthetic_beats``.
      limit_records: keep only the first N records of the protocol (quick runs).
      split: ``holdout`` | ``lpo`` | ``ds1ds2`` | ``ds1`` | ``kfold``.
      split_seed: seed of the split.
      split_kwargs: extra keywords of the split (``fractions``, ``n_val_records``, ``fold``).
      balance: ``none`` | ``downsample_majority`` | ``upsample`` (training part only).
      max_beats: cap each split part at this many beats (seeded subset; quick runs).
      template_beats: when > 0, every beat minus the mean of its record's
        ``template_beats`` preceding beats (``ecgjax.data.template``; causal,
        per patient); 0 keeps the beats as the protocol gives them.
      template_reference: which preceding beats make the template
        (``ecgjax.data.template.REFERENCES``): ``mean`` all of them, ``sinus``
        those after the longest RR intervals.
      atrial_lock_beats: when > 0, one more RR feature, ``plock``: the share of the P window's energy
        locked to R over the beat's ``atrial_lock_beats`` preceding beats (``ecgjax.data.template.atrial_lock``;
        causal, per patient, from the leads before template subtraction): near 1 with P waves, near
        1/k in atrial fibrillation. Protocols with RR features; not with ``rhythm_aug``.
      rhythm_aug: empty (off), or the keywords of ``ecgjax.data.rhythm.augment``
        (``{}`` with any key, e.g. ``{"fraction": 1.0}``, turns it on): training
        records re-sequenced into synthetic ectopic-rich rhythms, the RR features
        recomputed, appended to the training part only (protocols with RR features).
    """

    protocol: str = "jones2020"
    protocol_overrides: dict = dataclasses.field(default_factory=dict)
    limit_records: int | None = None
    split: str = "holdout"
    split_seed: int = 0
    split_kwargs: dict = dataclasses.field(default_factory=dict)
    balance: str = "none"
    max_beats: int | None = None
    template_beats: int = 0
    template_reference: str = "mean"
    atrial_lock_beats: int = 0
    rhythm_aug: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        from ecgjax.data import protocols, rhythm, splits, template

        _choice("data.protocol", self.protocol, (*protocols.available(), "synthetic"))
        proto = None
        if self.protocol != "synthetic":
            proto = protocols.get(self.protocol).replace(**{k: v for k, v in self.protocol_overrides.items() if k != "records"})
        _choice("data.balance", self.balance, BALANCING)
        _positive("data.limit_records", self.limit_records, allow_none=True)
        _positive("data.max_beats", self.max_beats, allow_none=True)
        _nonnegative_int("data.template_beats", self.template_beats)
        _choice("data.template_reference", self.template_reference, template.REFERENCES)
        _nonnegative_int("data.atrial_lock_beats", self.atrial_lock_beats)
        if self.atrial_lock_beats and self.rhythm_aug:
            raise ConfigError("data.atrial_lock_beats with data.rhythm_aug: synthetic rhythms do not recompute the plock "
                              "feature; turn one of them off")
        if self.atrial_lock_beats and (proto is None or not proto.rr_features):
            raise ConfigError(f"data.atrial_lock_beats: protocol {self.protocol!r} has no RR features to add plock to; "
                              "use a protocol with RR features (aami_rr)")
        _nonnegative_int("data.split_seed", self.split_seed)
        splits.check_split_args(self.split, self.split_kwargs, where="data.split_kwargs of split")
        try:
            rhythm.check_kwargs(self.rhythm_aug)
        except ValueError as e:
            raise ConfigError(str(e)) from e


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """``ecgjax.models.build(name, **kwargs)``."""

    name: str = "jones2020_cnn"
    kwargs: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, stopping and checkpointing.

    Attributes:
      optimizer: ``adam`` | ``nadam`` (optax's) | ``keras2_nadam`` (Keras 2.x's Nadam,
        momentum schedule included; ``ecgjax.train.optim``); ``eps`` is Keras's 1e-7 by default.
      lr: initial learning rate.
      clip_global_norm: clip the gradients' global norm to this before the
        optimiser (``None``: no clipping).
      batch_size: global training batch; must be divisible by the device count.
        The last incomplete batch of an epoch is dropped (fixed shapes).
      eval_batch_size: evaluation batch (padded with a mask).
      epochs: maximum number of epochs.
      loss: ``ce`` (softmax cross-entropy) | ``focal`` (``focal_gamma``, ``focal_alpha``).
      class_weight_power: each example's loss (training and validation) times its class's
        weight ``(n / (C * n_c)) ** power`` over the training order, mean weight 1
        (``ecgjax.train.losses.class_weights``); 0: unweighted, 1: balanced, 0.5: square root.
      plateau: reduce the learning rate on a validation-loss plateau
        (``optax.contrib.reduce_on_plateau``; factor, patience in epochs, min lr,
        absolute min delta as Keras's ``min_delta``).
      early_stopping_patience: stop after this many epochs without a validation
        loss improvement (``None``: never). Never looks at the test set.
      eval_checkpoint: the model evaluated on the test set: ``best`` (lowest
        validation loss) or ``last``.
      checkpoint_every: save every N steps (and at every epoch end).
      log_every: log the training loss every N steps.
      seed: initialisation, dropout, balancing and data order.
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    eps: float = 1e-7
    clip_global_norm: float | None = None
    batch_size: int = 128
    eval_batch_size: int = 512
    epochs: int = 30
    loss: str = "ce"
    focal_gamma: float = 2.0
    focal_alpha: float = 1.0
    class_weight_power: float = 0.0
    plateau: bool = True
    plateau_factor: float = 0.1
    plateau_patience: int = 2
    plateau_min_lr: float = 1e-6
    plateau_min_delta: float = 1e-4
    early_stopping_patience: int | None = None
    eval_checkpoint: str = "best"
    checkpoint_every: int = 500
    log_every: int = 100
    seed: int = 0

    def __post_init__(self):
        _choice("train.optimizer", self.optimizer, OPTIMIZERS)
        _choice("train.loss", self.loss, LOSSES)
        _choice("train.eval_checkpoint", self.eval_checkpoint, EVAL_CHECKPOINTS)
        for k in ("lr", "eps", "batch_size", "eval_batch_size", "epochs", "checkpoint_every", "log_every"):
            _positive(f"train.{k}", getattr(self, k))
        _positive("train.early_stopping_patience", self.early_stopping_patience, allow_none=True)
        _positive("train.clip_global_norm", self.clip_global_norm, allow_none=True)
        _positive("train.plateau_patience", self.plateau_patience)
        _nonnegative_int("train.seed", self.seed)
        if not isinstance(self.class_weight_power, (int, float)) or not 0 <= self.class_weight_power <= 2:
            raise ConfigError(f"train.class_weight_power={self.class_weight_power!r}; must be in [0, 2] (0: no class weights)")
        if not isinstance(self.plateau_factor, (int, float)) or not 0 < self.plateau_factor < 1:
            raise ConfigError(f"train.plateau_factor={self.plateau_factor!r}; must be in (0, 1)")
        if isinstance(self.plateau_min_lr, (int, float)) and self.plateau_min_lr > self.lr:
            raise ConfigError(f"train.plateau_min_lr={self.plateau_min_lr!r} is above train.lr={self.lr!r}")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Test-set evaluation: bootstrap over records for confidence intervals."""

    bootstrap_samples: int = 1000
    bootstrap_seed: int = 0
    ci_level: float = 0.95

    def __post_init__(self):
        _nonnegative_int("eval.bootstrap_seed", self.bootstrap_seed)
        if self.bootstrap_samples < 0:
            raise ConfigError(f"eval.bootstrap_samples={self.bootstrap_samples!r}; must be >= 0")
        if not 0 < self.ci_level < 1:
            raise ConfigError(f"eval.ci_level={self.ci_level!r}; must be in (0, 1)")


@dataclasses.dataclass(frozen=True)
class Config:
    """One experiment: data, model, training, evaluation."""

    name: str = "unnamed"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)


# ---------------------------------------------------------------------------
# type checking


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(key: str, value, tp):
    """``value`` checked against the annotation ``tp`` (ints widen to float; JSON lists become tuples)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arm in typing.get_args(tp):
            try:
                return _coerce(key, value, arm)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is dict or origin is dict:
        if isinstance(value, dict):
            return {str(k): _freeze_lists(v) for k, v in value.items()}
    elif dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if isinstance(value, dict):
            return _from_dict(tp, value, key)
    else:  # pragma: no cover - a field type this module does not know
        raise TypeError(f"config field {key} has an unsupported type {tp}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}")


def _freeze_lists(v):
    """JSON lists inside free-form dicts become tuples (hashable, as protocols expect)."""
    if isinstance(v, list):
        return tuple(_freeze_lists(x) for x in v)
    if isinstance(v, dict):
        return {k: _freeze_lists(x) for k, x in v.items()}
    return v


def _unknown(key: str, name: str, known) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(f"unknown config key {key!r}{hint}")


def _from_dict(cls, d: dict, prefix: str = ""):
    hints = _hints(cls)
    kwargs = {}
    for name, value in d.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in hints:
            raise _unknown(key, name, hints)
        kwargs[name] = _coerce(key, value, hints[name])
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    """Re-check every field's type (config files can put anything anywhere)."""
    if not isinstance(cfg, Config):
        raise ConfigError(f"expected a Config, got {type(cfg).__name__}")
    return from_dict(to_dict(cfg))


# ---------------------------------------------------------------------------
# (de)serialisation


def to_dict(cfg) -> dict:
    """Nested plain dict (tuples stay tuples)."""
    return dataclasses.asdict(cfg)


def from_dict(d: dict) -> Config:
    return _from_dict(Config, d)


def to_json(cfg: Config) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)


def from_json(text: str) -> Config:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"config JSON is not valid: {e}") from e
    return from_dict(d)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}} -> {"train.lr": 1e-3}`` (lists and tuples compare equal)."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def diff(a: Config, b: Config) -> list[tuple[str, Any, Any]]:
    """``(key, value in a, value in b)`` for every key that differs."""
    fa, fb = flatten(json.loads(to_json(a))), flatten(json.loads(to_json(b)))
    missing = object()
    return [
        (k, fa.get(k, "<absent>"), fb.get(k, "<absent>"))
        for k in sorted(set(fa) | set(fb))
        if fa.get(k, missing) != fb.get(k, missing)
    ]


# ---------------------------------------------------------------------------
# overrides


def _parse_value(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string: ``data.protocol=aami``


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """``["train.lr=3e-4", "model.kwargs.hidden=8"]`` applied in order, type-checked.

    Values are Python literals (``3e-4``, ``None``, ``(1, 2)``, ``'x'``) or bare
    strings. Keys inside a ``dict`` field are free-form.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not key=value")
        key, text = item.split("=", 1)
        key = key.strip()
        cfg = _set(cfg, key.split("."), _parse_value(text.strip()), key)
    return cfg


def _set(node, parts: list[str], value, full_key: str):
    name, rest = parts[0], parts[1:]
    if isinstance(node, dict):
        if not rest:
            return {**node, name: _freeze_lists(value)}
        return {**node, name: _set(node.get(name, {}), rest, value, full_key)}
    if not dataclasses.is_dataclass(node):
        raise ConfigError(f"config key {full_key!r}: {name!r} is inside a {type(node).__name__}, not a section")
    hints = _hints(type(node))
    if name not in hints:
        done = full_key[: len(full_key) - len(".".join(parts))].rstrip(".")
        raise _unknown(f"{done}.{name}" if done else name, name, hints)
    if rest:
        child = getattr(node, name)
        if not (dataclasses.is_dataclass(child) or isinstance(child, dict)):
            raise ConfigError(f"config key {full_key!r}: {name!r} is a value, not a section")
        new = _set(child, rest, value, full_key)
    else:
        new = _coerce(full_key, value, hints[name])
    try:
        return dataclasses.replace(node, **{name: new})
    except ConfigError:
        raise
    except TypeError as e:  # pragma: no cover
        raise ConfigError(f"config key {full_key!r}: {e}") from e


# ---------------------------------------------------------------------------
# config files


def call_get_config(spec: str):
    """Import ``"path/to/file.py[:arg]"`` and return ``get_config(arg)`` (any type).

    Raises:
      ConfigError: missing file, import failure, no ``get_config``, or its failure.
    """
    path_s, _, arg = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    path = Path(path_s)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    if path.suffix != ".py":  # importlib finds no loader for it
        raise ConfigError(f"config file {path} is not a Python file: a config is a .py file with get_config(arg=None) "
                          "(e.g. experiments/configs/reproduce_jones2020.py)")
    mod_name = f"_ecgjax_config_{abs(hash(str(path.resolve())))}"
    spec_ = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec_)
    try:
        spec_.loader.exec_module(module)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"config file {path} failed to import: {type(e).__name__}: {e}") from e
    finally:
        sys.modules.pop(mod_name, None)
    get = getattr(module, "get_config", None)
    if get is None:
        raise ConfigError(f"config file {path} has no get_config(arg=None)")
    n_params = len(inspect.signature(get).parameters)
    if arg and n_params == 0:
        raise ConfigError(f"config file {path}: get_config takes no argument, got {arg!r}")
    try:
        return get(arg or None) if n_params else get()
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"config file {path}: get_config({arg or ''}) failed: {type(e).__name__}: {e}") from e


def load_config(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """``"path/to/file.py[:arg]"`` -> ``get_config(arg)``, then ``overrides``.

    Raises:
      ConfigError: missing file, no ``get_config``, not a ``Config``, or a bad value.
    """
    cfg = validate(call_get_config(spec))
    return apply_overrides(cfg, list(overrides))
