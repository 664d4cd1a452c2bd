"""Checkpoints with orbax-checkpoint v1: the only module importing orbax.

A workdir holds two checkpoint series:

* ``checkpoints/<step>/``: every ``checkpoint_every`` steps and at every epoch
  end (the last 3 kept): the full training state plus the loop's counters
  (step, epoch, position in the epoch, early-stopping bookkeeping), so a
  killed run resumes bit-exactly;
* ``best/<step>/``: the state at the lowest validation loss (the last one kept).

Typed PRNG keys (NNX's dropout streams) are stored as their ``key_data`` and
re-wrapped on load. Loading is against an abstract state whose leaves carry
shardings, so arrays come back placed (replicated) as the loop expects. A
checkpoint that cannot be read raises ``CheckpointError`` naming its path; the
loop then stops without writing anything.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jax
import numpy as np

from ecgjax.errors import EcgjaxError

log = logging.getLogger(__name__)


class CheckpointError(EcgjaxError):
    """A checkpoint that exists but cannot be read."""


def _is_key(a) -> bool:
    return hasattr(a, "dtype") and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key)


def encode(state):
    """Typed key arrays -> their uint32 key data (orbax stores plain arrays)."""
    return jax.tree.map(lambda a: jax.random.key_data(a) if _is_key(a) else a, state)


def decode(restored, template):
    """Re-wrap key data where ``template`` holds typed keys (an abstract template's keys take the default key
    implementation, the one ``jax.eval_shape`` gave them when it built the template)."""
    def leaf(r, t):
        if not _is_key(t):
            return r
        return jax.random.wrap_key_data(r, impl=None if isinstance(t, jax.ShapeDtypeStruct) else jax.random.key_impl(t))

    return jax.tree.map(leaf, restored, template)


def abstract_like(state):
    """ShapeDtypeStructs (with the leaves' shardings) of ``encode(state)``; ``state`` may itself be abstract
    (ShapeDtypeStructs with shardings, as ``loop.build(..., abstract=True)`` makes), so nothing is computed."""
    def leaf(a):
        if isinstance(a, jax.ShapeDtypeStruct):
            s = jax.eval_shape(jax.random.key_data, a) if _is_key(a) else a
            return jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=a.sharding)
        a = jax.numpy.asarray(a) if isinstance(a, (np.ndarray, np.generic, int, float)) else a
        a = jax.random.key_data(a) if _is_key(a) else a
        return jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding)

    return jax.tree.map(leaf, state)


class Checkpoints:
    """The periodic and the best-so-far checkpoint series of one workdir.

    Use as a context manager. ``every``: the periodic save interval in steps.
    """

    def __init__(self, workdir: Path, every: int, *, keep: int = 3):
        from orbax.checkpoint import v1 as ocp

        workdir = Path(workdir).absolute()  # orbax refuses relative checkpoint paths
        self.main_dir = workdir / "checkpoints"
        self.best_dir = workdir / "best"
        pol = ocp.training.save_decision_policies
        keep_pol = ocp.training.preservation_policies
        try:
            self.main = ocp.training.Checkpointer(
                self.main_dir,
                save_decision_policy=pol.FixedIntervalPolicy(every),
                preservation_policy=keep_pol.LatestN(keep),
                cleanup_tmp_directories=True,
            )
            self.best = ocp.training.Checkpointer(
                self.best_dir,
                save_decision_policy=pol.FixedIntervalPolicy(1),
                preservation_policy=keep_pol.LatestN(1),
                cleanup_tmp_directories=True,
            )
        except Exception as e:
            raise CheckpointError(f"cannot open the checkpoints in {workdir}: {type(e).__name__}: {e}") from e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.main.close()
        self.best.close()

    @staticmethod
    def _step(ck) -> int | None:
        latest = ck.latest
        return None if latest is None else int(latest.step)

    def latest_step(self) -> int | None:
        return self._step(self.main)

    def best_step(self) -> int | None:
        return self._step(self.best)

    def should_save(self, step: int) -> bool:
        return bool(self.main.should_save(step))

    def save(self, step: int, state, *, force: bool = False) -> bool:
        """Save ``state`` at ``step`` when the interval policy says so (or ``force``)."""
        return bool(self.main.save(step, encode(state), force=force))

    def save_best(self, step: int, state) -> None:
        """Replace the best checkpoint (a resumed run may re-save the same step)."""
        self.best.save(step, encode(state), force=True, overwrite=True)

    def _load(self, ck, directory: Path, template, step: int | None):
        step = self._step(ck) if step is None else step
        if step is None:
            raise CheckpointError(f"no checkpoint in {directory}")
        path = directory / str(step)
        try:
            restored = ck.load(step, abstract_state=abstract_like(template))
        except Exception as e:
            raise CheckpointError(
                f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                "move it away to resume from an earlier one, or use a new workdir"
            ) from e
        log.info("restored %s", path)
        return decode(restored, template)

    def load_latest(self, template, step: int | None = None):
        """The latest periodic checkpoint, shaped and placed like ``template``."""
        return self._load(self.main, self.main_dir, template, step)

    def load_best(self, template):
        return self._load(self.best, self.best_dir, template, None)
