"""Jones et al. (2020) CNN, leave-patients-out: test records 104, 113, 119, 208, 210.

Command::

    ecgjax train --config experiments/configs/jones2020_cnn_lpo.py --workdir runs/jones2020_cnn_lpo

As ``jones2020_cnn_holdout.py`` (same ``:code``/``:paper`` variants) but the
paper's LPO split and 15 epochs. Validation: 4 other records drawn by seed
(the paper had none besides the V-only Keras split). The test set has no L, R
or j beats and one E beat (reference §2.3), so read the ``present`` macro and
the per-class supports, not only the paper's ``sklearn`` macro.

Expected wall time: ~20 min on one H100 (not yet measured).
Expected metric: sklearn-macro F1 ~0.36-0.39 (paper), dominated by the test
composition; accuracy is not reported by the paper for LPO.
"""

from pathlib import Path

from ecgjax.config import apply_overrides, load_config


def get_config(arg=None):
    base = load_config(str(Path(__file__).with_name("jones2020_cnn_holdout.py")) + (f":{arg}" if arg else ""))
    return apply_overrides(base, [f"name=jones2020_cnn_lpo_{arg or 'code'}", "data.split=lpo", "train.epochs=15"])
