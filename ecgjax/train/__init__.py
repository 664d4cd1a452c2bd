"""Training: ``train_and_evaluate(cfg, workdir)`` and ``load_run(workdir)``.

Submodules: ``loop`` (the trainer), ``steps`` (jitted steps, sharding),
``optim`` (optimisers, Keras 2.x Nadam), ``losses``, ``metrics`` (pure numpy), ``checkpoint`` (the only orbax
importer), ``writers``, ``data`` (beats, split, balancing for a run), ``run``
(``load_run``), ``cli`` (``ecgjax train``). Imported lazily so that
``import ecgjax.train.metrics`` stays light.
"""

from __future__ import annotations


def train_and_evaluate(cfg, workdir, **kwargs):
    from ecgjax.train.loop import train_and_evaluate as f

    return f(cfg, workdir, **kwargs)


def load_run(workdir, **kwargs):
    from ecgjax.train.run import load_run as f

    return f(workdir, **kwargs)


__all__ = ["load_run", "train_and_evaluate"]
