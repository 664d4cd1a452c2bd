"""Classifiers for the generative explanations (``ecgjax traverse``): DS1 -> DS2 on AAMI beats, short CPU recipes.

Command::

    ecgjax train --config experiments/configs/traverse_aami.py:rr_net --workdir runs/traverse_rr_net
    ecgjax traverse --workdir runs/traverse_rr_net --target V --source N

Variants (``:name``): ``rr_net`` (the two-input model: waveform + the 8 RR
features of ``aami_rr``; small, trains on a CPU in minutes), ``jones2020_cnn``
and ``jones2020_lstm`` (the paper's models on the ``aami`` window;
``jones2020_lstm_corrected``: the corrected LSTM of ``jones2020_lstm_holdout.py``; GPU
recipes: the CNN's 11 full-length convolutions take seconds per step on a
2-core CPU). DS1's training records (4 held out for validation, split seed 4
as ``aami_rr.py``) -> DS2, at most ``max_beats`` beats per split part, N
downsampled to the second-largest class, cross-entropy, Adam 1e-3, best
validation checkpoint tested. ``:rr_net,full`` lifts the beat cap;
``:jones2020_cnn,quick`` (any model) caps each split part at 3,000 beats and
trains 4 epochs: what a shared CPU allows for the CNN and the LSTM
(``experiments/traverse_real.py``). ``natural`` keeps DS1's class frequencies
(no downsampling of N; the inter-patient benchmark's choice): ``:rr_net,full,natural``
and ``:rr_net_waveform,full,natural`` train on every DS1 training beat, the
classifiers ``experiments/traverse_real.py --recipe full,natural`` checks on
VAE reconstructions. ``rr_net_waveform``: ``rr_net`` reading the waveform only.
``jones2020win`` trains a waveform-only model (not ``rr_net``) on the paper's
window instead (protocol ``jones2020``: midpoint windows zero-padded to 430
samples, per-beat min-max, the 8 MIT-BIH classes) with the same DS1 -> DS2 split:
``:jones2020_lstm_corrected,full,natural,jones2020win`` is the jones2020-window
classifier the jones2020-window VAE is checked against.

Expected wall time: rr_net ~5 min on a shared 2-core CPU.
Expected metric: see docs/results.md (section 5b); a short recipe, not a tuned classifier.
"""

from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from ecgjax.data.rr import DEFAULT_FEATURES as FEATURES

_MODELS = {
    "rr_net": ("aami_rr", ModelConfig(name="rr_net", kwargs={"rr_features": FEATURES})),
    # the same CNN reading the waveform only (the RR channels ride in the input, unread): every bit of its
    # decision passes through the VAE, the strict test of the classifier on reconstructions
    "rr_net_waveform": ("aami_rr", ModelConfig(name="rr_net", kwargs={"rr_features": FEATURES, "inputs": "waveform"})),
    "jones2020_cnn": ("aami", ModelConfig(name="jones2020_cnn")),
    "jones2020_lstm": ("aami", ModelConfig(name="jones2020_lstm")),
    # the corrected LSTM of jones2020_lstm_holdout.py:corrected (leads as features, 8-sample frames, max
    # readout): the paper's LSTM collapses to one class on a short recipe
    "jones2020_lstm_corrected": ("aami", ModelConfig(name="jones2020_lstm", kwargs={"lead_layout": "channels", "frame": 8,
                                                                                     "readout": "max"})),
}


def get_config(arg=None):
    opts = [a for a in (arg or "rr_net").split(",") if a]
    name = next((a for a in opts if a in _MODELS), "rr_net")
    unknown = [a for a in opts if a not in _MODELS and a not in ("full", "quick", "natural", "jones2020win")]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; use {'|'.join(_MODELS)} and optionally full or quick, natural, "
                         "jones2020win")
    quick = "quick" in opts
    protocol, model = _MODELS[name]
    if "jones2020win" in opts:
        if protocol != "aami":
            raise ValueError(f"jones2020win: {name} reads RR features, which the jones2020 protocol has none of")
        protocol = "jones2020"
    return Config(
        name=f"traverse_aami_{name}" + ("_jones2020win" if "jones2020win" in opts else ""),
        data=DataConfig(protocol=protocol, split="ds1ds2", split_seed=4, split_kwargs={"n_val_records": 4},
                        balance="none" if "natural" in opts else "downsample_majority",
                        max_beats=None if "full" in opts else 3000 if quick else 20000),
        model=model,
        train=TrainConfig(optimizer="adam", lr=1e-3, batch_size=128, eval_batch_size=1024, epochs=4 if quick else 15, loss="ce",
                          plateau=True, plateau_factor=0.1, plateau_patience=2, plateau_min_lr=1e-5,
                          early_stopping_patience=3, eval_checkpoint="best", checkpoint_every=2000, log_every=100),
        eval=EvalConfig(bootstrap_samples=200),
    )
