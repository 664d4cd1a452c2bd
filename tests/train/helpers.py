"""Tiny synthetic configs for the training tests, and a subprocess entry point.

``python tests/train/helpers.py CONFIG.json WORKDIR SLEEP_S`` trains the
config in WORKDIR, sleeping SLEEP_S after every step (so a test can kill it
mid-run), and prints the test accuracy.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig


def tiny_config(**train_overrides) -> Config:
    """A jones2020_lstm (hidden 4) on 8 synthetic records of 30 beats, T=16: ~5 s to compile on CPU."""
    train = dict(
        optimizer="nadam", loss="focal", lr=1e-2, plateau_min_lr=1e-4, plateau_patience=1, batch_size=16,
        eval_batch_size=32, epochs=3, checkpoint_every=5, log_every=4, seed=3,
    )
    train.update(train_overrides)
    return Config(
        name="tiny",
        data=DataConfig(
            protocol="synthetic", protocol_overrides={"n_records": 8, "beats_per_record": 30, "t": 16, "noise": 0.8},
            split="kfold", split_kwargs={"fold": 0, "k": 4, "n_val_records": 2}, balance="upsample",
        ),
        model=ModelConfig(name="jones2020_lstm", kwargs={"hidden": 4}),
        train=TrainConfig(**train),
        eval=EvalConfig(bootstrap_samples=30, bootstrap_seed=1),
    )


def with_train(cfg: Config, **kw) -> Config:
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **kw))


if __name__ == "__main__":
    import logging

    from ecgjax.config import from_json
    from ecgjax.train import train_and_evaluate

    logging.basicConfig(level=logging.INFO)
    cfg = from_json(Path(sys.argv[1]).read_text())
    delay = float(sys.argv[3])
    res = train_and_evaluate(cfg, sys.argv[2], on_step=lambda s: time.sleep(delay))
    print("ACCURACY", res["test"]["accuracy"])
