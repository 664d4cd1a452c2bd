"""Inter-patient benchmark with RR-interval features: train on DS1, test once on DS2 (AAMI classes).

Command::

    python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py --workdir runs/aami_rr

Variants (``:a,b``): ``both`` (default: waveform + RR features), ``waveform``
(the same model with the RR branch off), ``rr`` (the RR branch only),
``quick`` (one seed, 2 epochs, 2,000 training beats, 200 explained beats per
class: a smoke test of the whole pipeline; scores are meaningless), ``seedsN``
(the first N of seeds 0..4), ``seedbaseB`` (seeds B..B+4 instead of 0..4: the
same folds, seed at position i validating on fold i, other initialisations and
batch orders; a rerun measures how much the pooled DS1 CV scores move between
trainings of one config). Ablations of the recipe, one ingredient each:
``rawwave`` (the beats themselves, no template subtraction), ``logrr`` (the
log of all 8 RR features instead of the ratios), ``cwP`` (class-weight power
P, e.g. ``cw0``: unweighted, ``cw1``: fully balanced), ``nooffsets`` (plain
argmax; changes no training, so it can re-test a workdir's seeds), ``focal``
(focal loss, gamma 2, unweighted), ``meanref`` (the ``*_norm`` RR features over
the running mean of all past RR intervals, the previous recipe's reference,
instead of the running median of the last 32), ``bn99`` (BatchNorm momentum
0.99, the previous recipe's, instead of 0.9: ``ecgjax.models.rr_net.BN_MOMENTUM``), ``legacy`` (the first recipe:
raw beats, log-RR, running-mean reference, balanced resampling, argmax,
patience 4), ``localrr`` (three more RR features, reference-free local context
of past beats: ``prev``, ``lmin``, ``lmax`` of ``ecgjax.data.rr``, entering
``rr_net`` as log(pre / prev), log(lmax / lmin), log(pre / lmin):
``ecgjax.models.rr_net.LOCAL_RATIOS``; chosen by the DS1-only
leave-one-record-out screen, ``experiments/ds1_rr_screen.py``), ``irreg``
(one more RR feature, the rhythm's irregularity before the beat, robust to
isolated ectopic beats: ``ecgjax.data.rr``'s ``irreg``, entering ``rr_net`` as
its log, ``ecgjax.models.rr_net.OWN_RATIOS``; aimed at the N beats of atrial
fibrillation called S), ``wavedrop`` (modality dropout: each training
beat's whole waveform embedding dropped with probability ``WAVE_DROPOUT``
before the fusion, ``rr_net``'s ``wave_dropout``; aimed at the S decisions
resting on patient-specific waveform detail), ``rate`` (the heart rate
beside the ratios: ``rr_transform="ratios+rate"``, the log of the local mean
RR interval in seconds as one more RR input, so every absolute interval is a
linear function of the inputs; aimed at S beats that are premature in seconds
but not against their record's running rhythm, as in DS2's record 232), ``lrX`` (Adam's learning rate X,
e.g. ``lr0.0003``, instead of ``LR``: a slower schedule, for the early,
initialisation-dependent checkpoints), ``aug``
(rhythm augmentation, ``RHYTHM_AUG``: each training record with enough S or V
beats also gives synthetic bigeminy / trigeminy / ectopic-run sequences of its
own real beats, the RR features and the running template of the leads
recomputed in the synthetic beat order with the same code: ``ecgjax.data.rhythm``;
off by default), ``augS`` (the same with
S sequences only), ``sinus`` (the leads' template from the 8 of the 32
preceding beats that followed the longest RR intervals, ``SINUS_BEATS`` of
``ecgjax.data.template``'s ``sinus`` reference; aimed at records whose ectopic
beats dominate, where the mean of the preceding beats is itself an ectopic
beat, as in DS2's record 232; with ``aug`` the synthetic sequences take the
sinus template too, recomputed in their own beat order), ``plock`` (one more
RR-branch input, the atrial activity locked to R over the 32 preceding beats:
``ecgjax.data.template.atrial_lock``, ``DataConfig.atrial_lock_beats``, entering as
its log, ``ecgjax.models.rr_net.OWN_RATIOS``; near 1 with P waves, near 1/32 in atrial
fibrillation, whose N beats the recipe calls S; the template subtraction removes
that context from the leads; not with ``aug``), ``plockrule`` (no S call where the
beat's ``plock`` is below 0.15, the S probability going to N: ``PLOCK_RULE``,
``InterpatientConfig.s_rule``, applied to the pooled DS1 predictions before the
offsets and to the DS2 logits; tau chosen on DS1 over five seed sets of
``:sinus`` in commit ebd84ca, the target N in adc9d15; docs/results.md §3).

Data: protocol ``aami_rr`` (the ``aami`` beats: paced records excluded, N/S/V/F/Q,
window 0.25 s before / 0.45 s after R, per-lead z-score, MLII first; plus the 8
RR features of ``ecgjax.data.rr``, appended as input channels after the two
leads). Each lead is then the beat minus the mean of its record's 32 preceding
beats (``TEMPLATE_BEATS``, ``ecgjax.data.template``: causal, per patient; the
network sees how a beat differs from the patient's usual beat, not the
patient's morphology). The training runs read **the DS1 records only** (the
beat cache they use holds no DS2 record) with split ``ds1``: 4 DS1 records
cut into 5 patient-wise folds (``CV_FOLDS``, permuted by ``VAL_SEED``): seed i
validates on fold i (early stopping, the learning-rate plateau, the evaluated
checkpoint: lowest validation loss) and trains on the other four, so the 5
seeds predict every DS1 beat once out of record; the S and V logit offsets
(decision thresholds, maximising the mean F1 of S and V:
``ecgjax.interpatient.choose_offsets``) are chosen once on those pooled
out-of-record predictions and applied to every seed. Nothing is chosen on
DS2: it is loaded once, after every seed has trained, for the final table
(``ecgjax.interpatient``).

Class imbalance: every DS1 training beat once per epoch (no resampling), the
cross-entropy of each beat weighted by ``(n / (5 n_c)) ** 0.5``
(``CLASS_WEIGHT_POWER``; mean weight 1: N 0.72, S 4.8, V 2.7, F 6.9, Q 69 for the
36,561 / 835 / 2,660 / 394 / 4 training beats).

Model ``rr_net`` (``ecgjax.models.rr_net``): 3 conv blocks (16, 32, 32 filters,
kernel 7, max-pool 2) -> dense 32 on the waveform; on the RR features the
heart-rate-free log ratios (``rr_transform="ratios"``: the 4 ``*_norm``
features, each interval over the running median of the record's last 32 RR
intervals (``RR_REFERENCE``, ``aami_rr``'s ``rr_ref_beats``; kept against the
running mean and the running 75th percentile by the RR-only network's 5-fold
CV inside DS1 and against medians of 64/128 beats or 300 s and a
premature-rejecting mean by a leave-one-record-out screen inside DS1:
``experiments/ds1_rr_screen.py``), and pre/local, post/pre, pre/long,
local/long, post/local) -> BatchNorm (momentum 0.9) -> dense 16; fused by dense
32 -> dense 5; 46,105 parameters (both). Adam 1e-3, batch 128, up to 10
epochs, plateau x0.1 after 1 epoch, early stopping after 2 (on the seed's DS1
validation fold).

Expected wall time on the project's shared, loaded 2-core CPU (one core): a
seed of ``both`` 3-5 min, of ``rr`` under 1 min
(benchmarks/results/cpu_aami_rr_train.jsonl); ``:quick`` about 1 min.
Measured metrics, against the goal (SVEB Se 80 / +P 55, VEB 92 / 92): docs/results.md
§3, "With RR-interval features" (written by experiments/interpatient_docs.py).
"""

import dataclasses

from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from ecgjax.data.protocols import DS1
from ecgjax.data.rr import DEFAULT_FEATURES
from ecgjax.interpatient import InterpatientConfig


# The permutation of the DS1 records cut into CV_FOLDS patient-wise folds (split ds1 with fold/k):
# the i-th seed validates on fold i % CV_FOLDS (early stopping, plateau, evaluated checkpoint) and the
# S/V offsets are chosen once on the seeds' pooled out-of-record DS1 predictions (ecgjax.interpatient).
# Seed 4: the first permutation whose 5 folds each hold >= 80 of DS1's 944 S and >= 250 of its 3,788 V
# beats (80-491 S, 258-1,545 V; 208's 373 F beats sit in one fold). Chosen on DS1 labels only.
VAL_SEED = 4
CV_FOLDS = 5
# Each beat minus the mean of its record's 32 preceding beats (ecgjax.data.template).
TEMPLATE_BEATS = 32
# Loss weights (n / (C n_c)) ** 0.5 over every DS1 training beat (ecgjax.train.losses.class_weights).
CLASS_WEIGHT_POWER = 0.5
# The *_norm features' running reference (ecgjax.data.rr.REFERENCES).
RR_REFERENCE = "median"
# :aug, rhythm augmentation (ecgjax.data.rhythm.augment): every training record with >= 10 S (V) training beats
# gives one synthetic 400-beat sequence per such class (bigeminy, trigeminy or runs of 30-85% ectopic beats) of its
# own real beats, RR features recomputed on the synthetic beat times; appended to the training part only.
# Adam's learning rate (:lrX overrides it).
LR = 1e-3
# :wavedrop, the probability that a training beat's waveform embedding is dropped (rr_net's wave_dropout).
WAVE_DROPOUT = 0.5
# :plock, the preceding beats over which the P window's locking to R is measured (ecgjax.data.template.atrial_lock).
ATRIAL_LOCK_BEATS = 32
# :plockrule, the P-wave rule on top of the trained model (ecgjax.interpatient.suppress_s): (rule, tau, S goes to).
PLOCK_RULE = ("plock", 0.15, "N")
RHYTHM_AUG = {"fraction": 1.0, "n_beats": 400, "min_ectopic": 10, "classes": ("S", "V")}


_FLAGS = ("both", "waveform", "rr", "quick", "focal", "legacy", "rawwave", "logrr", "nooffsets", "meanref", "bn99", "upper75", "medianref",
          "localrr", "irreg", "wavedrop", "rate", "aug", "augS", "sinus", "plock", "plockrule")


def get_config(arg=None):
    opts = [a for a in (arg or "").split(",") if a]
    inputs = next((a for a in opts if a in ("both", "waveform", "rr")), "both")
    quick = "quick" in opts
    n_seeds = next((int(a[5:]) for a in opts if a.startswith("seeds")), 1 if quick else 5)
    seed_base = next((int(a[8:]) for a in opts if a.startswith("seedbase")), 0)
    cw = next((float(a[2:]) for a in opts if a.startswith("cw")), None)
    lr = next((float(a[2:]) for a in opts if a.startswith("lr") and a[2:3].isdigit()), LR)
    unknown = [a for a in opts if a not in _FLAGS and not a.startswith(("seeds", "seedbase", "cw")) and not (a.startswith("lr") and a[2:3].isdigit())]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; use both|waveform|rr, quick, seedsN, seedbaseB, and for ablations "
                         "legacy, rawwave, logrr, cwP, nooffsets, focal, meanref, medianref, upper75, bn99, localrr, irreg, wavedrop, rate, lrX, aug, augS, "
                         "sinus, plock, plockrule")
    legacy = "legacy" in opts  # the first recipe: raw beats, log-RR, balanced resampling, argmax
    focal = "focal" in opts
    template = 0 if legacy or "rawwave" in opts else TEMPLATE_BEATS
    rr_transform = "log" if legacy or "logrr" in opts else "ratios+rate" if "rate" in opts else "ratios"
    reference = "mean" if legacy or "meanref" in opts else "upper75" if "upper75" in opts else "median" if "medianref" in opts else RR_REFERENCE
    if cw is None:
        cw = 0.0 if legacy or focal else CLASS_WEIGHT_POWER
    balance = "downsample_majority" if legacy else "none"
    # localrr: the 8 features plus the reference-free local context prev, lmin, lmax; irreg: plus the
    # rhythm's irregularity (ecgjax.data.rr)
    extra = ("prev", "lmin", "lmax") * ("localrr" in opts) + ("irreg",) * ("irreg" in opts)
    rr_features = DEFAULT_FEATURES + extra
    plock = "plock" in opts  # computed from the leads after the protocol's RR features (DataConfig.atrial_lock_beats)
    overrides = {"records": DS1, "rr_reference": reference, **({"rr_features": rr_features} if extra else {})}
    tune = () if legacy or "nooffsets" in opts else ("S", "V")
    tag = "".join(f"_{o}" for o in opts if o not in ("both", "waveform", "rr", "quick") and not o.startswith("seeds"))
    train = Config(
        # nooffsets and plockrule change no training: their workdirs can re-test the trained seeds
        name=f"aami_rr_{inputs}{tag.replace('_nooffsets', '').replace('_plockrule', '')}",
        data=DataConfig(protocol="aami_rr", protocol_overrides=overrides, split="ds1", split_seed=VAL_SEED,
                        split_kwargs={"n_val_records": 4}, balance=balance, template_beats=template,
                        template_reference="sinus" if "sinus" in opts else "mean", atrial_lock_beats=ATRIAL_LOCK_BEATS * plock,
                        rhythm_aug=RHYTHM_AUG if "aug" in opts else {**RHYTHM_AUG, "classes": ("S",)} if "augS" in opts else {}),
        model=ModelConfig(name="rr_net", kwargs={"inputs": inputs, "rr_features": rr_features + ("plock",) * plock, "rr_transform": rr_transform,
                                                 **({"bn_momentum": 0.99} if "bn99" in opts else {}),
                                                 **({"wave_dropout": WAVE_DROPOUT} if "wavedrop" in opts else {})}),
        train=TrainConfig(optimizer="adam", lr=lr, batch_size=128, eval_batch_size=1024, epochs=20 if legacy else 10,
                          loss="focal" if focal else "ce", focal_gamma=2.0, class_weight_power=cw,
                          plateau=True, plateau_factor=0.1, plateau_patience=2 if legacy else 1, plateau_min_lr=1e-5,
                          early_stopping_patience=4 if legacy else 2, eval_checkpoint="best", checkpoint_every=2000, log_every=100),
        eval=EvalConfig(bootstrap_samples=200 if quick else 1000),
    )
    name = f"rr_net ({inputs}{tag.replace('_', ', ')})"
    cfg = InterpatientConfig(name=name, train=train, seeds=tuple(range(seed_base, seed_base + n_seeds)), explain_max_beats=300, tune_offsets=tune,
                             cv_folds=CV_FOLDS, s_rule=PLOCK_RULE if "plockrule" in opts else ())
    if quick:
        train = dataclasses.replace(
            train, name=f"{train.name}_quick", data=dataclasses.replace(train.data, max_beats=2000),
            train=dataclasses.replace(train.train, epochs=2, batch_size=32, eval_batch_size=256),
        )
        if train.data.rhythm_aug:  # the tiny test records hold a few S and V beats each: short sequences from 2 beats on
            train = dataclasses.replace(train, data=dataclasses.replace(train.data, rhythm_aug={**train.data.rhythm_aug, "n_beats": 40, "min_ectopic": 2}))
        cfg = dataclasses.replace(cfg, name=f"rr_net ({inputs}{tag.replace('_', ', ')}, quick)", train=train, explain_max_beats=200,
                                  bootstrap_samples=200, methods=(("integrated_gradients", {"steps": 8}), ("saliency", {})))
    return cfg
