"""Smoke run: a REAL but tiny training on five MIT-BIH records (CI runs it).

Command::

    ECGJAX_DATA_DIR=/work/shared/data ecgjax train --config experiments/configs/smoke.py --workdir /tmp/smoke

Data: the ``aami`` protocol restricted to DS1 records 106, 119, 208 (validation:
one of them, by seed) and DS2 records 100, 105 (test); at most 600 beats per
split part. Model: a ribeiro_cnn with 8 filters per unit and the two leads as
channels. 2 epochs of Adam 3e-3, batch 32, checkpoints every 8 steps,
bootstrap with 50 resamples.

Expected wall time: ~26-30 s on the project's shared 2-core CPU (measured,
jax 0.12, beat cache warm; the first extraction of the 5 records adds ~1.5 s);
about half of it is compiling the train step.
Expected metric: training loss falls (~1.29 -> ~0.92); test accuracy 0.560
(measured, CPU, seed 0) -- meaningless as a score: 36 steps on 2 training
records, BatchNorm running averages (momentum 0.99) barely warmed up, and
DS2 records 100/105 are almost all N. The smoke run checks the pipeline
(train, checkpoint, resume, evaluate), not the number.
"""

from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig


def get_config(arg=None):
    return Config(
        name="smoke",
        data=DataConfig(
            protocol="aami", protocol_overrides={"records": ("100", "105", "106", "119", "208")},
            split="ds1ds2", split_kwargs={"n_val_records": 1}, balance="none", max_beats=600,
        ),
        model=ModelConfig(name="ribeiro_cnn", kwargs={"filters": (8, 8, 8, 8), "lead_layout": "channels", "dropout": 0.1}),
        train=TrainConfig(
            optimizer="adam", lr=3e-3, batch_size=32, eval_batch_size=256, epochs=2, loss="ce",
            plateau=True, plateau_patience=1, plateau_min_lr=3e-5, checkpoint_every=8, log_every=8, seed=0,
        ),
        eval=EvalConfig(bootstrap_samples=50),
    )
