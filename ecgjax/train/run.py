"""``load_run(workdir) -> Run``: a finished (or checkpointed) run, ready for attribution.

The attribution CLI (``ecgjax explain --workdir DIR``) starts here: the config,
the model restored from the checkpoint the test set was evaluated with, the
same BeatSet and Split, and the saved test predictions.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from flax import nnx

from ecgjax import config as config_lib
from ecgjax.config import Config
from ecgjax.data import BeatSet, Split
from ecgjax.errors import ConfigError, DataError, EcgjaxError
from ecgjax.io import load_npz, read_json

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Run:
    """Attributes:
    config: the run's Config.
    workdir: its folder.
    model: the restored nnx.Module (in training mode; use ``ecgjax.models.eval_view``).
    beats: the BeatSet (x f32[N, T, L]).
    split: the Split (indices into ``beats``).
    predictions: ``{"index": i64[M], "y_true": i32[M], "y_pred": i32[M], "logits": f32[M, C], "record": U[M]}``
      (empty dict before the run finished).
    results: the ``results.json`` dict, or None before the run finished.
    checkpoint: ``"best"`` or ``"last"`` (as ``train.eval_checkpoint``): where the model came from.
    """

    config: Config
    workdir: Path
    model: nnx.Module
    beats: BeatSet
    split: Split
    predictions: dict
    results: dict | None
    checkpoint: str


def load_run(workdir: str | Path, *, checkpoint: str | None = None, data_dir=None, cache=None) -> Run:
    """Load a run from ``workdir``.

    Args:
      checkpoint: ``"best"`` or ``"last"`` (the latest checkpoint; the old word
        ``"latest"`` is accepted with a deprecation line); default: the one the test
        set was evaluated with (``train.eval_checkpoint``).
    """
    import jax

    from ecgjax.train import data as data_lib
    from ecgjax import batched
    from ecgjax.train import loop
    from ecgjax.train.checkpoint import Checkpoints

    workdir = Path(workdir)
    path = workdir / "config.json"
    if not path.exists():
        raise EcgjaxError(f"{workdir} is not an ecgjax run (no config.json)")
    try:
        cfg = config_lib.from_json(path.read_text())
    except (ConfigError, OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not a readable ecgjax config ({e})") from e
    prep = data_lib.prepare(cfg.data, seed=cfg.train.seed, data_dir=data_dir, cache=cache)
    mesh = batched.make_mesh()
    # the checkpoint's template: shapes, dtypes and shardings only (no initialisation to compile and run)
    graphdef, _, _, state = loop.build(cfg, len(prep.beats.classes), prep.beats.x.shape[1:], prep.beats.fs, mesh,
                                       abstract=True)
    template = loop.pack(state, dict(loop._COUNTERS), 0.0, mesh)
    if checkpoint == "latest":
        log.warning("load_run(checkpoint='latest') is deprecated: it is now called 'last', as train.eval_checkpoint")
        checkpoint = "last"
    which = checkpoint or cfg.train.eval_checkpoint
    if which not in config_lib.EVAL_CHECKPOINTS:
        raise EcgjaxError(f"checkpoint must be one of {config_lib.EVAL_CHECKPOINTS}, got {checkpoint!r}")
    with Checkpoints(workdir, cfg.train.checkpoint_every) as ck:
        tree = ck.load_best(template) if which == "best" else ck.load_latest(template)
    st = jax.device_get(tree["state"])
    model = nnx.merge(graphdef, st["params"], st["rest"])
    preds = load_npz(workdir / "predictions.npz", "predictions file") if (workdir / "predictions.npz").exists() else {}
    results = read_json(workdir / "results.json", "results file") if (workdir / "results.json").exists() else None
    return Run(cfg, workdir, model, prep.beats, prep.split, preds, results, which)
