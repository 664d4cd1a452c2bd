"""Corrected protocol: the Jones et al. CNN architecture on AAMI classes, DS1 -> DS2.

Command::

    ecgjax train --config experiments/configs/aami_jones_cnn.py --workdir runs/aami_jones_cnn

The paper's CNN (jones2020_cnn, leads concatenated: 504 samples for the
252-sample ``aami`` window) under the corrected protocol of
``aami_ribeiro.py``: DS1 (minus 4 validation records) -> DS2, no resampling,
focal loss gamma 2, Adam 1e-3, batch 128, plateau x0.1 patience 2 (min 1e-6),
early stopping patience 5, up to 30 epochs, best-validation checkpoint tested.
``:seedN`` sets the training seed.

Expected wall time: ~10-20 min on one H100 (not yet measured).
Expected metric (not yet measured): VEB Se/+P ~0.85-0.95; SVEB Se well below
the hold-out numbers (the architecture sees no RR context beyond the window).
"""

from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig


def get_config(arg=None):
    seed = int(arg[4:]) if arg and arg.startswith("seed") else 0
    return Config(
        name=f"aami_jones_cnn_seed{seed}",
        data=DataConfig(protocol="aami", split="ds1ds2", split_seed=0, split_kwargs={"n_val_records": 4}, balance="none"),
        model=ModelConfig(name="jones2020_cnn"),
        train=TrainConfig(
            optimizer="adam", lr=1e-3, eps=1e-7, batch_size=128, eval_batch_size=1024, epochs=30,
            loss="focal", focal_gamma=2.0, focal_alpha=1.0, plateau=True, plateau_factor=0.1, plateau_patience=2,
            plateau_min_lr=1e-6, early_stopping_patience=5, eval_checkpoint="best", checkpoint_every=2000,
            log_every=200, seed=seed,
        ),
        eval=EvalConfig(bootstrap_samples=1000),
    )
