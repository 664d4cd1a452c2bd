"""Write docs/results.md's rr_net section ("With RR-interval features") from the inter-patient result files.

Command::

    python experiments/interpatient_docs.py --runs runs

Reads ``<runs>/cv_both`` (this recipe: 5-fold CV inside DS1), the other ``cv_*``
workdirs (``cv_rr``, ``cv_waveform``, ``cv_rr_meanref``, ``cv_rr_upper75``,
``cv_rr_bn99``, ``cv_both_meanref``, ``cv_both_localrr``, ``cv_both_repro``, ``cv_both_seedbase5``, ``cv_both_aug``, ``cv_both_aug_seedbase5``, ``cv_both_augS`` with their
training logs ``cv_both_aug*.ds1.log``) and the previous recipe's ``v6_*`` (all of
``experiments/aami_interpatient.py``; a missing one is refused with exit 2, as the section would lose its rows,
unless ``--allow-missing``: ``SOURCES``),
``benchmarks/results/ds1_rr_screen.jsonl``, ``ds1_rhythm_screen.jsonl``, ``rr_only_diagnosis.jsonl``,
``cpu_aami_rr_train.jsonl`` and record 232's annotations (``$ECGJAX_DATA_DIR``),
and replaces the section between its heading and the next ``###`` heading: the
prose below with every table and number filled in from those files.
"""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from ecgjax import interpatient as ip

TEMPLATE = r"""### With RR-interval features: `rr_net`, DS1 -> DS2 (issue 14)

<!-- written by experiments/interpatient_docs.py from the result files: edit the script, not this section -->

Commands (one per variant; `:seedsN` trains seeds 0..N-1; `--table` prints the tables below from the
results files, verbatim):

```bash
python experiments/ds1_rr_screen.py mean median32 upper75 upper90 --synthetic 10   # DS1 only: which RR reference
python experiments/ds1_rr_screen.py median32 upper90 median32+prev median32+prev+spread median32+prev+spread+pmin upper90+prev+spread+pmin prev+spread+pmin --synthetic 10
python experiments/ds1_rr_screen.py median32+pmin median32+prev+pmin median32+spread --synthetic 10   # DS1 only: reference-free local RR context
python experiments/ds1_rr_screen.py --table
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both --workdir runs/cv_both
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:rr --workdir runs/cv_rr
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:waveform --workdir runs/cv_waveform
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:rr,meanref --workdir runs/cv_rr_meanref   # likewise rr,upper75 / rr,bn99 / both,meanref
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both,localrr --workdir runs/cv_both_localrr --ds1-only   # DS1 CV only (likewise rr,localrr)
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both,localrr --workdir runs/cv_both_localrr   # then DS2, only if the rule below says so
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both,aug --workdir runs/cv_both_aug --ds1-only   # rhythm augmentation, DS1 CV only
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both,augS --workdir runs/cv_both_augS --ds1-only   # S sequences only, DS1 CV only
python experiments/ds1_rhythm_screen.py --run experiments/configs/aami_rr.py:both runs/cv_both --run experiments/configs/aami_rr.py:both,aug runs/cv_both_aug
python experiments/ds1_rhythm_screen.py --run experiments/configs/aami_rr.py:both,augS runs/cv_both_augS
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both --workdir runs/cv_both_repro --ds1-only   # the recipe retrained, same seeds (noise floor)
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both,seedbase5 --workdir runs/cv_both_seedbase5 --ds1-only   # the recipe retrained, other seeds
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both,aug,seedbase5 --workdir runs/cv_both_aug_seedbase5 --ds1-only   # :aug, other seeds
python experiments/rr_only_diagnosis.py runs/v6_rr runs/cv_rr   # why the previous RR-only model failed (DS1 only)
python experiments/interpatient_combine.py runs/cv_both runs/cv_rr --out runs/cv_combined/results.json   # product of experts, weight from DS1
python experiments/aami_interpatient.py --table runs/cv_both/results.json
```

(The runs of this page were written to `/work/runs/interpatient/cv_*` (this recipe) and `v6_*` (the
previous one); run outputs are not in git. This section is written by
`python experiments/interpatient_docs.py --runs /work/runs/interpatient` from them.)

**The recipe** (`experiments/configs/aami_rr.py`; each ingredient has a switch for the ablations):

* **Waveform: each beat minus its record's running template** (`ecgjax/data/template.py`,
  `data.template_beats=32`): the mean of the record's 32 preceding beats, past beats only.
* **RR: heart-rate-free log ratios** (`rr_net(rr_transform="ratios")`): the four `*_norm` features
  and pre/local, post/pre, pre/long, local/long, post/local, then BatchNorm (momentum 0.9, new:
  below) and a dense branch fused after the conv trunk.
* **RR reference: the running median of the record's last 32 RR intervals** (`rr_reference="median"`),
  kept after this session's DS1-only comparison with the running mean and a premature-beat-excluding
  75th percentile (below).
* **Class imbalance: loss weights, no resampling**: each beat's cross-entropy times
  `(n / (5 n_c)) ** 0.5` (`train.class_weight_power=0.5`).
* **Patient-wise 5-fold cross-validation inside DS1 (new)**: the 22 DS1 records, permuted by
  `split_seed` 4, are cut into 5 folds (split `ds1` with `fold`/`k`; {FOLDS}); seed i trains on 4 folds and validates on fold i: early
  stopping (patience 2), the learning-rate plateau (x0.1 after 1 epoch) and the tested checkpoint
  (lowest validation loss) use that fold. The 5 seeds therefore predict every DS1 beat once, out of
  record; **one** pair of S and V logit offsets is chosen on those 51,021 pooled out-of-record
  predictions (maximising the mean F1 of S and V, grid -4..4 in steps of 0.25:
  `ecgjax.interpatient.cv_offsets`) and applied to every seed. Before, each seed validated, stopped
  and chose its offsets on the same 4 DS1 records ({V6_VAL_RECORDS}: {V6_VAL_S} S beats).

**DS2 was read only for the final evaluation of the recipe fixed on DS1.** The training runs read DS1
only (their data and beat cache hold no DS2 record; `tests/test_interpatient.py` asserts that no DS2
record is read before training ends, that each is read once after, that each seed's validation
predictions are its DS1 fold's and that the offsets come from files without a DS2 record). Every
choice made in this session (cross-validated offsets and early stopping, the BatchNorm momentum, the RR
reference) was made on DS1 numbers (and synthetic rhythms) before the DS2 numbers of that recipe were
looked at. Device: the project's shared 2-core CPU, loaded by the other developers' jobs, one core
(`taskset -c 0`), `nice -n 10`; {VERSIONS}. Wall time of the 5 seeds of `both` with DS2 and the
attributions: {WALL_BOTH} min. DS1 training time per seed (`benchmarks/results/cpu_aami_rr_train.jsonl`,
the rows noted "5-fold CV", from `python benchmarks/interpatient_train_time.py <workdir> ...`): {TRAIN_TIME}.

#### Why the RR-only model failed (DS1 only)

The previous RR-only model (`v6_rr`) found {V6_RR_SE}% of DS2's S beats (plain argmax; {V6_RR_SE_OFF}% with its offsets). From its weights, activations and DS1
predictions (`python experiments/rr_only_diagnosis.py runs/v6_rr runs/cv_rr`,
`benchmarks/results/rr_only_diagnosis.jsonl`; per seed: the epoch whose checkpoint was tested, the S
offset its tuning chose, the RR BatchNorm's running variance over the variance of its input on the
training beats (mean and range over the 9 inputs; 1 = converged), dead ReLU units, and the S average
precision of the model and of a class-weighted logistic regression on the same 9 inputs, fitted on the
same training beats, on the run's validation records):

{DIAG}

* **The RR branch was not dead** (no dead unit in `v6_rr`) and **the class weights and feature scaling
  were not the problem**: on its training beats each seed ranked S beats with AP {V6_TRAIN_AP}%, and on
  its validation records the network and the logistic regression were equally bad.
* **The 4 validation records were the problem.** Their {V6_VAL_S} S beats are not separable by RR
  (S AP {V6_VAL_AP}% for the network, {V6_LR_AP}% for the logistic regression), so the validation loss
  was lowest after the first epoch in every seed (tested epoch: {V6_EPOCHS}): early stopping kept a model
  after ~300 steps, and the offsets tuned on those records switched S off in {V6_OFF4} of the 5 seeds
  (offset -4).
* **The BatchNorm statistics** followed from that: with momentum 0.99, 300 steps leave
  0.99^300 = 5% of the initial variance 1 in the running variance, which for these small inputs is
  {V6_BN} times their variance, so the evaluated RR branch saw its inputs shrunk {V6_SHRINK}x. Fixed
  (momentum 0.9, `ecgjax.models.rr_net.BN_MOMENTUM`, tested), but with cross-validated early stopping
  (tested epochs {CV_EPOCHS}) it no longer matters: `:bn99` (the old momentum) scores the same below.

Pooled out-of-record DS1 predictions of the 5 seeds (5-fold CV; every DS1 beat once; %), RR-only
variants and the recipe, against the logistic-regression screen's leave-one-record-out scores
(`ds1_rr_screen.py`, median32):

{DS1_CV}

With cross-validation the RR-only network ranks DS1's S beats better than the logistic regression
(AP {RR_AP} against 25.4).

#### Choosing the RR reference inside DS1

Record 232 of DS2 (below) shows why the reference matters: when ectopic beats are most of a record's
beats, a running median of the RR intervals *is* the ectopic interval and the S beats look on time.
Physiologically, a premature beat only shortens the interval before it, so a reference that excludes
premature beats is an **upper** quantile of the recent intervals: the 75th percentile of the last 32
stays on the sinus cycle as long as a quarter of those intervals are sinus-length (`upper75`, new in
`ecgjax.data.rr`; `upper90` in the screen only). DS1 has no record whose S beats outnumber its N beats,
so the screen (`experiments/ds1_rr_screen.py`: class-weighted logistic regression on the log RR ratios,
leave-one-DS1-record-out) now also scores **synthetic ectopic-dominant rhythms** (`synthetic_record`:
10 per S fraction, 1,500 beats each; sinus cycle 0.75-1.25 s with jitter and drift, runs of S beats at
60-80% of the cycle, each run ended by a sinus beat after a pause of 1.0-1.4 cycles): the last columns
are the share of their S beats called S by the model fitted on all 22 DS1 records, at its DS1 best S
offset (no N beat of these rhythms was called S by any candidate):

{SCREEN}

Every reference fails on the 85% rhythm (at most {SYN85}% of S beats found) because the other ratio features
(pre/local, pre/long) follow the dominant rhythm too; the running mean is the most robust at 50-70%,
the median the least. The rule, fixed before the network run: take `upper75` if its RR-only network
(5-fold CV, as the recipe) ranks DS1's S beats within 2 AP points of the median's, else keep the
median. It did not (DS1 out-of-record S AP {AP_UPPER} against the median's {RR_AP}; the running mean
{AP_MEAN}), so **the median stays**, knowing from the synthetic rhythms that it cannot see a 232.
{BOTH_REF_SENTENCE}

#### Reference-free local RR context (`:localrr`), chosen and gated on DS1

One more attempt at SVEB, chosen on DS1 only: three RR features that need no running reference,
from past beats only (`ecgjax.data.rr`: `prev`, the previous beat's pre-RR; `lmin` / `lmax`, the
shortest and longest of the 10 intervals before the beat; tested against a direct loop, also on real
records), entering `rr_net` as log(pre / prev) (prematurity against the interval just before),
log(lmax / lmin) (local RR variability) and log(pre / lmin) (`ecgjax.models.rr_net.LOCAL_RATIOS`),
beside the 8 features (`aami_rr.py:localrr`; the default is unchanged). In the screen above (rows
with `prev`, `spread`, `pmin`) the three together rank DS1's S beats best ({LOCAL_SCREEN}), but on the
synthetic ectopic-dominant rhythms they find *fewer* S beats than the median alone: this is an attempt
at DS1-like S beats (the +P side and the S beats outside 232), not a fix for a 232-like record.

**Decision rule, written in the message of the commit that added the variant ("RR features prev, lmin, lmax ...", authored 18:03 UTC 2026-12-06, while its DS1 cross-validation was still training) before any DS2 number of it
existed:** run the 5-seed DS2 evaluation of `both,localrr` only if its pooled out-of-record DS1
predictions (the same 5 folds as `cv_both`, trained with `--ds1-only`, which reads no DS2 record) beat
`cv_both`'s by S AP >= +3.0 points, with a higher S F1 (offsets) and a V AP not lower by more than 2.0
points; otherwise DS2 is not read. Pooled out-of-record DS1 predictions, %:

{LOCAL_CV}

{LOCAL_OUTCOME}

#### Rhythm augmentation (`:aug`), gated on DS1

DS1 has no ectopic-dominant record, so this attempt gives training such rhythms from DS1's own beats
(`ecgjax.data.rhythm`, `aami_rr.py:aug`; off by default): every training record with at least 10 S
(V) training beats gives one synthetic 400-beat sequence per such class, its pattern drawn from
bigeminy, trigeminy and runs of 30-85% ectopic beats, on the record's own sinus cycle (median N
interval x 0.85-1.15, 3% jitter, 5% drift), ectopic beats at 0.55-0.85 cycles, the sinus beat after
an S run after a non-compensatory pause of 1.0-1.5 cycles, after a V run after a full compensatory
pause. Each position takes a real beat of that record and class (with replacement); the waveform
channels are the real beat's (in these trainings the beat minus the mean of its own record's 32
preceding beats, as the screen below; since commit eeb3698 the template is recomputed in each
sequence's own order: the `:aug` re-gate in the next section), and the RR features are recomputed on the synthetic beat times with
`ecgjax.data.rr.beat_features` (running references included; tested against the direct loop). The
beats are appended to the training part only (validation, early stopping and the offsets stay on real
beats), seeded per training seed; the class weights count them. {AUG_SIZE}

**Decision rule, written in the message of the commit that added the variant ("Rhythm augmentation
for rr_net ...", authored 20:23 UTC 2026-12-06) before its DS1 cross-validation was run:** run the
5-seed DS2 evaluation of `both,aug` only if its pooled out-of-record DS1 predictions (the same 5 folds
as `cv_both`, `--ds1-only`) beat `cv_both`'s by S AP >= +3.0 points, with a higher S F1 (offsets) and
a V AP not lower by more than 2.0 points, and only if all 5 DS2 seeds could finish before the
session's deadline; the synthetic-rhythm screen below is reported beside it and does not enter the
rule. After `:aug` missed it, a second variant was tried with the same rule, also fixed in its commit
message before its cross-validation ran ("aami_rr.py:augS ...", authored 20:48 UTC 2026-12-06):
`:augS`, the same augmentation with S sequences only, asking whether the V sequences cost the V AP
(chosen after seeing `:aug`'s DS1 numbers). Pooled out-of-record DS1 predictions, %:

{AUG_CV}

{AUG_OUTCOME}

Synthetic-rhythm screen of the trained seeds (`python experiments/ds1_rhythm_screen.py --run
experiments/configs/aami_rr.py:both runs/cv_both --run experiments/configs/aami_rr.py:both,aug
runs/cv_both_aug`, and `--run experiments/configs/aami_rr.py:both,augS runs/cv_both_augS`;
`benchmarks/results/ds1_rhythm_screen.jsonl`; no DS2 record read): each seed's
validation-fold records with at least 10 S and 10 N beats (records it never trained on; {AUG_SCREEN_RECS})
are re-sequenced into the screen's ectopic-dominant rhythms (`ecgjax.data.rhythm.synthetic_record`, as
in the reference screen above: {AUG_SCREEN_N}), N positions filled with random N beats and S positions
with random S beats of that record, each beat's waveform input its source record's (`--table --template-order
source`: the screen before commit eeb3698). Per S fraction: % of S beats called S with each run's DS1-CV offsets /
at the plain argmax / % of N beats called S with the offsets:

{AUG_SCREEN}

{AUG_SCREEN_TEXT}

#### DS2

Se, +P, FPR and F1 in %, DS2 (22 records, 49,712 beats); mean ± sd over the 5 seeds, then the same
models without the offsets (plain argmax), the seeds as one ensemble (mean log-probability, the same
offsets), then each seed, with 95% percentile bootstrap CIs over DS2 records (1,000 resamples).
Published rows as cited in issue 14: de Chazal, O'Dwyer & Reilly, IEEE TBME 51(7) 2004; Llamedo &
Martinez, IEEE TBME 58(3) 2011; Mar et al., IEEE TBME 58(8) 2011; Zhang et al., Comput Biol Med 48
2014; Lin & Yang, Math Probl Eng 2014; Huang et al., BioMed Eng OnLine 13 2014; Garcia et al., Sci Rep
7 2017.

{TABLE_BOTH}

**Against the goal (5-seed means: SVEB Se >= 80 and +P >= 55, VEB Se >= 92 and +P >= 92):
{GOAL_LINE}**

A recipe change gated on DS1 after this table was made, `:sinus` (each beat's waveform template from
the 8 of its 32 preceding beats that followed the longest RR intervals, so that it stays a sinus beat
where ectopic beats dominate a record, as in 232), met its pre-registered rule and scores higher on
DS2 than this recipe in every one of the same five seed sets (SVEB F1); the goal is still not reached.
Its rule, DS1 and DS2 tables: the next section ("Recipe changes gated on DS1 over several seed sets",
the `:sinus` bullet and the tables below it). The config default is still this recipe.

Record 232 holds 1,382 of DS2's 1,837 S beats, most of its beats (1,382 of 1,780 kept; its N beats
follow long pauses). {P232} Per seed, the share of 232's S beats called S / of the other 21 records'
455 S beats / N beats called S:

{PER_RECORD}

**Ablation of the inputs, and the previous recipe** (5 seeds each unless noted; `:rr` switches the
waveform branch off, `:waveform` the RR branch; `cv_*`: this recipe; `v6_*`: the previous one, 4 DS1
validation records per seed and BatchNorm momentum 0.99, with the same median reference, and `v6_meanref`
with the running mean, 3 seeds):

{ABLATION}

{ABLATION_TEXT}

So repairing the RR-only model's validation lifted it on DS2 but left it far from a linear model on RR
features with morphology (de Chazal's 76% SVEB Se, with a ±5 min average RR window that includes future
beats, which this project does not allow): most of DS2's S beats are record 232's, which no causal RR
reference here exposes, and outside 232 the RR-only model finds far fewer S beats than the two-input one.
On DS1 the order is the other way round (the table of pooled out-of-record predictions above: the
waveform branch lowers the S average precision), so DS1 cross-validation does not predict which input
carries S on DS2.

{COMBINE_TEXT}

Honesty about the test set: this session chose nothing on DS2. But the recipe as a whole was developed
while looking at DS2 in earlier sessions (the template subtraction, the ratios and the class-weight
power were read on DS2 one seed at a time, and the previous session saw DS2 fail on record 232 with the
median before this session compared references on DS1); read every number here as a development result,
not a pristine one-shot test.

How much the S and V decisions rest on the RR features versus each waveform segment (`report.md` of
`runs/cv_both`; integrated gradients, 32 steps, zero baseline: for the waveform the record's template,
target the true class, 300 DS2 beats per class and seed, all 5 seeds; share of |attribution| on the 8 RR
features and on each time segment of both leads, rows sum to 100%; mean over beats with a 95% CI over
records):

{IG_SEG}

Saliency (plain gradient, not in comparable units):

{SAL_SEG}

Per RR feature (integrated gradients, % of the beat's |attribution|):

{IG_FEAT}

{IG_S_SENTENCE}

What is left: SVEB. Record 232's S beats are premature only against the rhythm of its few N beats, and
no causal per-record RR statistic tried here (median, mean, upper quantiles) keeps them premature once
they dominate: on synthetic rhythms with 85% S beats every reference found at most {SYN85}% of them. DS1 has no such
record, so a recipe for it cannot be chosen on DS1's own beats; the synthetic rhythms can serve as the
DS1-side check of the next candidates (a reference over the beats the *waveform* calls normal, absolute RR
in seconds beside the ratios, P-wave shape against the post-pause beats). VEB: the two-input model's 5-seed
means are below the goal on both Se and +P; its ensemble of the 5 seeds is closer (table above). And the 5
seeds' SVEB Se spreads over {SE_RANGE}%: whether a seed finds record 232's S beats decides it.

The variants gated on DS1 since (`:irreg`, `:wavedrop`), and this recipe's DS2 scores over five seed sets
(25 seeds), retrained by later code: the next section.
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="write the rr_net section of docs/results.md")
    ap.add_argument("--runs", default="runs", help="folder holding the cv_* and v6_* workdirs")
    ap.add_argument("--doc", default="docs/results.md")
    ap.add_argument("--allow-missing", action="store_true",
                    help="write the section even if some of its source runs are missing (their rows become '(not run)')")
    args = ap.parse_args(argv)
    R = Path(args.runs)
    if not (R / "cv_both" / "results.json").exists():
        print(f"error: {R / 'cv_both' / 'results.json'} missing: run experiments/aami_interpatient.py first", file=sys.stderr)
        return 2
    missing = missing_sources(R)
    if missing and not args.allow_missing:
        print(f"error: {R}: {', '.join(missing)} missing; the section would lose their rows (rerun them, or pass "
              "--allow-missing to write it without them)", file=sys.stderr)
        return 2
    load = lambda n: json.loads((R / n / "results.json").read_text()) if (R / n / "results.json").exists() else None  # noqa: E731
    both, rr, wave = load("cv_both"), load("cv_rr"), load("cv_waveform")
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731

    def summary_rows(res, label):
        lines = ip.aami_table(res).splitlines()[2:]
        lines = [l for l in lines if "seed " not in l.split("|")[1] and not any(p[0] in l for p in ip.PUBLISHED)]
        return [l.replace(f"**{res['name']}**", f"**{label}** {res['name']}", 1) for l in lines]

    v = both["versions"]
    folds = []
    for seed in both["seeds"]:
        with np.load(R / "cv_both" / "runs" / f"seed{seed}" / "predictions.npz") as z:
            folds.append((np.sum(z["y_true"] == 1), np.sum(z["y_true"] == 2), len(set(z["record"].tolist()))))
    n_s, n_v = (sum(f[i] for f in folds) for i in (0, 1))
    fill = {"FOLDS": f"{min(f[2] for f in folds)}-{max(f[2] for f in folds)} records each, holding {min(f[0] for f in folds)}-{max(f[0] for f in folds)} "
                     f"of DS1's {n_s:,} S and {min(f[1] for f in folds):,}-{max(f[1] for f in folds):,} of its {n_v:,} V beats",
            "VERSIONS": f"jax {v['jax']}, flax {v['flax']}, numpy {v['numpy']}, Python {v.get('python', '?')}",
            "WALL_BOTH": f"{both['wall_time_s'] / 60:.1f} (training {both['train_wall_time_s'] / 60:.1f})"}
    rows = [json.loads(line) for line in Path("benchmarks/results/cpu_aami_rr_train.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "5-fold CV" in r.get("note", "") and "_aug" not in r.get("config_name", "")]
    fill["TRAIN_TIME"] = "; ".join(
        f"{inp} {min(w) / 60:.1f}-{max(w) / 60:.1f} min ({len(w)} seeds)"
        for inp in ("both", "rr", "waveform") if (w := [r["wall_time_s"] for r in rows if r["inputs"] == inp])) or "(not yet recorded)"

    # the RR-only diagnosis
    diag = [json.loads(line) for line in Path("benchmarks/results/rr_only_diagnosis.jsonl").read_text().splitlines() if line.strip()]
    last = {(d["workdir"], d["seed"]): d for d in diag}
    lines = ["| run, seed | validation records (S beats) | tested epoch | S offset | BN variance ratio, mean [min, max] | dead units | S AP train | S AP validation | logistic regression S AP validation |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (wd, seed), d in sorted(last.items()):
        r = np.array(d["bn_var_ratio"])
        lines.append(f"| {wd}, seed {seed} | {', '.join(d['val_records'])} ({d['val_S']}) | {d['best_epoch']} of {d['epochs_run']} | {d['S_offset']:+.2f} | "
                     f"{r.mean():.2f} [{r.min():.2f}, {r.max():.2f}] | {d['dead_rr_units'] + d['dead_fuse_units']} | {pct(d['train_ap_S'])} | "
                     f"{pct(d['val_ap_S'])} | {pct(d['lr_val_ap_S'])} |")
    fill["DIAG"] = "\n".join(lines)
    old = [d for (wd, _), d in sorted(last.items()) if wd == "v6_rr"]
    new = [d for (wd, _), d in sorted(last.items()) if wd == "cv_rr"]
    rng = lambda vals, k=1: f"{min(vals):.{k}f}" + (f"-{max(vals):.{k}f}" if f"{min(vals):.{k}f}" != f"{max(vals):.{k}f}" else "")  # noqa: E731
    ratios = np.concatenate([d["bn_var_ratio"] for d in old])
    fill.update({"V6_TRAIN_AP": rng([100 * d["train_ap_S"] for d in old], 0), "V6_VAL_S": str(old[0]["val_S"]), "V6_VAL_RECORDS": ", ".join(old[0]["val_records"]),
                 "V6_VAL_AP": rng([100 * d["val_ap_S"] for d in old]), "V6_LR_AP": f"{100 * old[0]['lr_val_ap_S']:.1f}",
                 "V6_EPOCHS": rng([d["best_epoch"] for d in old], 0), "V6_OFF4": str(sum(d["S_offset"] <= -4 for d in old)),
                 "V6_BN": rng(ratios), "V6_SHRINK": rng(np.sqrt(ratios)), "CV_EPOCHS": rng([d["best_epoch"] for d in new], 0)})

    def ds1_cv_of(wd):
        """A workdir's pooled out-of-record DS1 scores: from results.json, or ds1_cv.json of a --ds1-only run."""
        res = load(wd)
        if res and "ds1_cv" in res:
            return res["ds1_cv"]
        f = R / wd / "ds1_cv.json"
        return json.loads(f.read_text()) if f.exists() else None

    cvs = [("cv_rr", "RR only (median)"), ("cv_rr_bn99", "RR only, BatchNorm momentum 0.99 (`:bn99`)"),
           ("cv_rr_meanref", "RR only, running mean (`:meanref`)"), ("cv_rr_upper75", "RR only, upper75 (`:upper75`)"),
           ("cv_rr_localrr", "RR only, + local context (`:rr,localrr`)"),
           ("cv_both", "both (the recipe)"), ("cv_both_meanref", "both, running mean"),
           ("cv_both_localrr", "both, + local context (`:localrr`)"), ("cv_waveform", "waveform only")]
    lines = ["| run | S AP | S Se / +P / F1 (argmax) | S Se / +P / F1 (offsets) | V AP | V Se / +P / F1 (offsets) | offsets S, V |",
             "|---|---|---|---|---|---|---|"]
    f3 = lambda d: f"{pct(d['se'])} / {pct(d['ppv'])} / {pct(d['f1'])}"  # noqa: E731
    for wd, label in cvs:
        c = ds1_cv_of(wd)
        if c:
            lines.append(f"| {label} | {pct(c['S']['ap'])} | {f3(c['S']['argmax'])} | {f3(c['S']['offsets'])} | {pct(c['V']['ap'])} | "
                         f"{f3(c['V']['offsets'])} | {c['offsets']['S']:+.2f}, {c['offsets']['V']:+.2f} |")
    screen = {json.loads(l)["candidate"]: json.loads(l) for l in Path("benchmarks/results/ds1_rr_screen.jsonl").read_text().splitlines() if l.strip()}
    m32 = screen["median32"]
    lines.append(f"| logistic regression, median32, leave-one-record-out (screen) | {pct(m32['ap_S'])} | {f3(m32['S_argmax'])} | "
                 f"{f3(m32['S_best_offset'])} (best S offset) | {pct(m32['ap_V'])} | | |")
    fill["DS1_CV"] = "\n".join(lines)
    ap_of = lambda wd: pct(load(wd)["ds1_cv"]["S"]["ap"]) if load(wd) else "-"  # noqa: E731
    bm = load("cv_both_meanref")
    fill["BOTH_REF_SENTENCE"] = (f"The two-input model, trained afterwards with each reference (5-fold CV), agrees on DS1: S AP "
                                 f"{pct(both['ds1_cv']['S']['ap'])} with the median, {pct(bm['ds1_cv']['S']['ap'])} with the running mean." if bm else "")
    fill["RR_AP"], fill["AP_UPPER"], fill["AP_MEAN"] = ap_of("cv_rr"), ap_of("cv_rr_upper75"), ap_of("cv_rr_meanref")
    fill.update(local_context(R, load, ds1_cv_of, screen, summary_rows))
    fill.update(aug_context(R, load, ds1_cv_of))
    fill["SYN85"] = f"{max(100 * r['synthetic']['0.85']['best_offset']['S_se'] for r in screen.values() if r.get('synthetic')):.1f}"
    fill["SCREEN"] = subprocess.run([sys.executable, "experiments/ds1_rr_screen.py", "--table"], capture_output=True, text=True, check=True).stdout.strip()
    fill["TABLE_BOTH"] = ip.aami_table(both)
    s = both["ds2"]["summary"]
    fill["GOAL_LINE"] = ip.goal_line(both)

    def per_record(name):
        out = []
        for sd in sorted((R / name / "ds2").glob("seed*.npz"), key=lambda p: int(p.stem[4:])):
            z = np.load(sd)
            y, p, r = z["y_true"], z["y_pred"], z["record"]
            m = r == "232"
            out.append(f"| {name}, {sd.stem.replace('seed', 'seed ')} | {pct(np.mean(p[m & (y == 1)] == 1))} | "
                       f"{pct(np.mean(p[~m & (y == 1)] == 1))} | {int(np.sum((p == 1) & (y == 0)))} |")
        return out
    rows = ["| run, seed | 232's S beats called S, % | other records' S beats called S, % | N beats called S |", "|---|---|---|---|"]
    for name in ("cv_both", "cv_both_meanref", "cv_both_localrr"):
        if load(name):
            rows += per_record(name)
    fill["PER_RECORD"] = "\n".join(rows)
    import wfdb
    from ecgjax.data import rr as rr_lib
    from ecgjax.data.beats import BEAT_SYMBOLS
    a = wfdb.rdann(str(Path(os.environ.get("ECGJAX_DATA_DIR", "data")) / "mitdb" / "232"), "atr")
    sym = np.array(a.symbol)
    ib = np.isin(sym, list(BEAT_SYMBOLS))
    med = {ref: rr_lib.beat_features(a.sample[ib] / 360.0, reference=ref)[sym[ib] == "A"] for ref in rr_lib.REFERENCES}
    fill["P232"] = (f"Measured on 232's {len(med['median'])} `A` beats (`ecgjax.data.rr.beat_features` on its annotations): median pre-RR "
                    f"{np.median(med['median'][:, 0]):.2f} s, median `pre_norm` {np.median(med['median'][:, 4]):.2f} over the running median, "
                    f"{np.median(med['upper75'][:, 4]):.2f} over the running 75th percentile and {np.median(med['mean'][:, 4]):.2f} over the running mean.")
    abl = ["| method | SVEB Se | SVEB +P | SVEB FPR | SVEB F1 | VEB Se | VEB +P | VEB FPR | VEB F1 |", "|---|---|---|---|---|---|---|---|---|"]
    for wd in ("cv_both", "cv_rr", "cv_waveform", "cv_both_meanref", "cv_both_localrr", "cv_combined", "v6_both", "v6_rr", "v6_waveform", "v6_meanref"):
        res = load(wd)
        if res:
            abl += summary_rows(res, wd)
    fill["ABLATION"] = "\n".join(abl)
    fill["SE_RANGE"] = f"{100 * min(s['S']['se']['values']):.0f}-{100 * max(s['S']['se']['values']):.0f}"
    v6rr = load("v6_rr")
    fill["V6_RR_SE"] = pct(v6rr["ds2"]["summary_argmax"]["S"]["se"]["mean"]) if v6rr else "-"
    fill["V6_RR_SE_OFF"] = pct(v6rr["ds2"]["summary"]["S"]["se"]["mean"]) if v6rr else "-"
    fill["ABLATION_TEXT"] = ablation_text(both, rr, wave, R, load("v6_rr"))
    comb = load("cv_combined")
    if comb:
        ws = comb["ds1_cv"]["weights"]
        f1 = {d["w"]: d["mean_f1_S_V"] for d in ws}
        cs = comb["ds2"]["summary"]
        fill["COMBINE_TEXT"] = (
            "**Combining the two models, chosen on DS1** (`experiments/interpatient_combine.py`): on the pooled out-of-record "
            f"DS1 predictions the RR-only model ranks S beats better than the two-input one (AP {pct(rr['ds1_cv']['S']['ap'])} against "
            f"{pct(both['ds1_cv']['S']['ap'])}), so a product of the two (log p = log p_both + w log p_rr) was tried, w and the offsets chosen "
            "on those DS1 predictions by the mean F1 of S and V: " + ", ".join(f"w={w:g} {pct(v)}" for w, v in f1.items())
            + f" (chosen: w={comb['ds1_cv']['chosen_w']:g}). On DS2 it did not carry over: SVEB {pct(cs['S']['se']['mean'])} / "
            f"{pct(cs['S']['ppv']['mean'])}, VEB {pct(cs['V']['se']['mean'])} / {pct(cs['V']['ppv']['mean'])} (row `cv_combined` above) "
            f"against the two-input model's {pct(s['S']['se']['mean'])} / {pct(s['S']['ppv']['mean'])} and {pct(s['V']['se']['mean'])} / "
            f"{pct(s['V']['ppv']['mean'])}. (This combination was tried after the two-input model's DS2 numbers had been seen; its weight "
            "came from DS1 only.)")
    else:
        fill["COMBINE_TEXT"] = ""

    def seg(res, method):
        lines = ip.rr_versus_segments_table(res, method)
        return "\n".join(l for l in lines if l.startswith("|"))
    fill["IG_SEG"], fill["SAL_SEG"] = seg(both, "integrated_gradients"), seg(both, "saliency")
    d = both["attribution"]["integrated_gradients"]
    feats = d["rr_features"]
    lines = ["| class | RR share | " + " | ".join(feats) + " |", "|---|---|" + "---|" * len(feats)]
    for c in ("S", "V"):
        rs = d[c]["rr_share"]
        lines.append(f"| {c} (n={rs['n_beats']}, {rs['n_records']} records) | {ip._mean_ci(rs)} | " + " | ".join(pct(x) for x in d[c]["per_feature"]["mean"]) + " |")
    fill["IG_FEAT"] = "\n".join(lines)
    S, V = d["S"]["rr_share"], d["V"]["rr_share"]
    prev = load("v6_both")
    prev_txt = ""
    if prev:
        pd_ = prev["attribution"]["integrated_gradients"]
        prev_txt = f" (the previous recipe: {pct(pd_['S']['rr_share']['mean'])}% and {pct(pd_['V']['rr_share']['mean'])}%)"
    fill["IG_S_SENTENCE"] = (f"The RR features carry {ip._mean_ci(S)}% of the integrated-gradients mass of an S decision and "
                             f"{ip._mean_ci(V)}% of a V decision{prev_txt}. Controls: the RR-only model puts 100% on RR, the waveform-only 0%.")
    text = TEMPLATE
    for k, val in fill.items():
        text = text.replace("{" + k + "}", val)
    left = [line for line in text.splitlines() if "{" in line]
    if left:
        raise ValueError(f"unfilled placeholders: {left}")
    Path(args.doc).write_text(replace_section(Path(args.doc).read_text(), text))
    print(f"wrote the rr_net section of {args.doc}")
    return 0


def replace_section(doc: str, text: str) -> str:
    """``doc`` with its rr_net section (from the heading ``### With RR-interval features`` to the next ``### ``
    heading, which the sections after it own, e.g. the hand-written gated recipe changes) replaced by ``text``."""
    a = doc.index("### With RR-interval features")
    nxt = doc.find("\n### ", a + 1)
    return doc[:a] + text.rstrip() + "\n\n" + (doc[nxt + 1:] if nxt >= 0 else "")


# The :localrr decision rule (fixed in the message of the commit "RR features prev, lmin, lmax ..." before any DS2 number of the variant): DS2 is run only if
# the pooled out-of-record DS1 predictions beat cv_both's by S AP >= +3 points, a higher S F1 (offsets) and a
# V AP at most 2 points lower.
LOCAL_RULE = {"ds_ap": 0.03, "dv_ap": -0.02}


def pooled_ds1(workdir: Path):
    """The seeds' out-of-record DS1 predictions, in seed order: (probabilities f64[M, C], y i[M], record U[M])."""
    parts = []
    for f in sorted((workdir / "runs").glob("seed*/predictions.npz"), key=lambda p: int(p.parent.name[4:])):
        with np.load(f) as z:
            parts.append((np.exp(ip._log_softmax(z["logits"])), z["y_true"], z["record"]))
    return tuple(np.concatenate(v) for v in zip(*parts))


def paired_ap_difference(a: Path, b: Path, k: int, *, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """AP of class k of workdir b minus that of a, on the same pooled out-of-record DS1 beats, with a 95%
    percentile CI from resampling DS1 records (the same records for both: paired). Returns (diff, lo, hi)."""
    from sklearn.metrics import average_precision_score

    pa, ya, ra = pooled_ds1(a)
    pb, yb, rb = pooled_ds1(b)
    if not (np.array_equal(ya, yb) and np.array_equal(ra, rb)):
        raise ValueError(f"{a} and {b} do not predict the same DS1 beats")
    recs = np.unique(ra)
    rows = {r: np.flatnonzero(ra == r) for r in recs}
    diff = lambda i: average_precision_score(ya[i] == k, pb[i, k]) - average_precision_score(ya[i] == k, pa[i, k])  # noqa: E731
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        i = np.concatenate([rows[r] for r in rng.choice(recs, len(recs))])
        if np.any(ya[i] == k):
            boot.append(diff(i))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return float(diff(np.arange(len(ya)))), float(lo), float(hi)


def local_context(R: Path, load, ds1_cv_of, screen: dict, summary_rows) -> dict:
    """The placeholders of the :localrr subsection: the screen sentence, the DS1 CV table with paired
    record-bootstrap CIs of the AP differences, the rule's outcome and (if run) the DS2 rows."""
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    loc, m32 = screen.get("median32+prev+spread+pmin"), screen["median32"]
    syn = lambda r, f: pct(r["synthetic"][f]["best_offset"]["S_se"])  # noqa: E731
    out = {"LOCAL_SCREEN": "(not screened)", "LOCAL_CV": "(not run)", "LOCAL_OUTCOME": ""}
    if loc:
        out["LOCAL_SCREEN"] = (f"`median32+prev+spread+pmin`: S AP {pct(loc['ap_S'])} against `median32`'s {pct(m32['ap_S'])}, S F1 at the "
                               f"best offset {pct(loc['S_best_offset']['f1'])} against {pct(m32['S_best_offset']['f1'])}, V AP {pct(loc['ap_V'])} "
                               f"against {pct(m32['ap_V'])}; synthetic rhythms with 10 / 30 / 50% S beats: S Se {syn(loc, '0.1')} / "
                               f"{syn(loc, '0.3')} / {syn(loc, '0.5')} against {syn(m32, '0.1')} / {syn(m32, '0.3')} / {syn(m32, '0.5')}")
    lines = ["| run | S AP | S AP - baseline [95% CI over DS1 records, paired] | S Se / +P / F1 (offsets) | V AP | V AP - baseline [95% CI] | V Se / +P / F1 (offsets) |",
             "|---|---|---|---|---|---|---|"]
    f3 = lambda d: f"{pct(d['se'])} / {pct(d['ppv'])} / {pct(d['f1'])}"  # noqa: E731
    verdict, cis = None, []
    for base, new in (("cv_both", "cv_both_localrr"), ("cv_rr", "cv_rr_localrr")):
        cb, cn = ds1_cv_of(base), ds1_cv_of(new)
        if not (cb and cn):
            continue
        d = {k: paired_ap_difference(R / base, R / new, k) for k in (1, 2)}
        cis += list(d.values())
        ci = lambda t: f"{100 * t[0]:+.1f} [{100 * t[1]:+.1f}, {100 * t[2]:+.1f}]"  # noqa: E731
        lines.append(f"| {base} | {pct(cb['S']['ap'])} | | {f3(cb['S']['offsets'])} | {pct(cb['V']['ap'])} | | {f3(cb['V']['offsets'])} |")
        lines.append(f"| {new} | {pct(cn['S']['ap'])} | {ci(d[1])} | {f3(cn['S']['offsets'])} | {pct(cn['V']['ap'])} | {ci(d[2])} | {f3(cn['V']['offsets'])} |")
        if new == "cv_both_localrr":
            ds, dv, df1 = cn["S"]["ap"] - cb["S"]["ap"], cn["V"]["ap"] - cb["V"]["ap"], cn["S"]["offsets"]["f1"] - cb["S"]["offsets"]["f1"]
            verdict = (ds >= LOCAL_RULE["ds_ap"] - 1e-12 and df1 > 0 and dv >= LOCAL_RULE["dv_ap"] - 1e-12, ds, df1, dv)
    if len(lines) > 2:
        out["LOCAL_CV"] = "\n".join(lines)
    if verdict is None:
        out["LOCAL_OUTCOME"] = "The two-input `:localrr` run has not finished its DS1 cross-validation; DS2 was not read for it."
        return out
    met, ds, df1, dv = verdict
    txt = (f"Against the rule: S AP {100 * ds:+.1f} points (needed >= +{100 * LOCAL_RULE['ds_ap']:.1f}), S F1 (offsets) {100 * df1:+.1f} "
           f"(needed > 0), V AP {100 * dv:+.1f} (needed >= {100 * LOCAL_RULE['dv_ap']:+.1f}): **the rule is {'met' if met else 'not met'}**")
    res = load("cv_both_localrr")
    zero = all(lo <= 0 <= hi for _, lo, hi in cis)
    txt_ci = (f" Every paired 95% CI in the table {'contains 0' if zero else 'does not contain 0 for some difference'}"
              + (f": DS1's {ds1_cv_of('cv_both')['S']['n']:,} S beats sit in a few records, so DS1 cannot resolve differences of this size either way "
                 "(the rule's thresholds are point estimates)." if zero else "."))
    if not met:
        out["LOCAL_OUTCOME"] = txt + ", so DS2 was not read for this variant." + txt_ci
    elif not res:
        out["LOCAL_OUTCOME"] = txt + "; the DS2 evaluation has not been run (no `cv_both_localrr/results.json`)." + txt_ci
    else:
        both = load("cv_both")
        s, b = res["ds2"]["summary"], both["ds2"]["summary"]
        g = lambda x: f"SVEB {pct(x['S']['se']['mean'])} / {pct(x['S']['ppv']['mean'])}, VEB {pct(x['V']['se']['mean'])} / {pct(x['V']['ppv']['mean'])}"  # noqa: E731
        rows = ["| method | SVEB Se | SVEB +P | SVEB FPR | SVEB F1 | VEB Se | VEB +P | VEB FPR | VEB F1 |", "|---|---|---|---|---|---|---|---|---|"]
        rows += summary_rows(both, "cv_both") + summary_rows(res, "cv_both_localrr")
        a232, o232 = _found_232(R / "cv_both_localrr", False)
        out["LOCAL_OUTCOME"] = (
            txt + f", so its 5 seeds were tested once on DS2 (5-seed means, Se / +P, with the DS1-CV offsets): {g(s)}, against "
            f"`cv_both`'s {g(b)}; per-seed SVEB Se {', '.join(pct(v) for v in s['S']['se']['values'])}. It found {a232:.1f}% of record "
            f"232's S beats and {o232:.1f}% of the other records' (seed means; per seed in the 232 table below). The config default "
            "is unchanged whatever these numbers say.\n\n" + "\n".join(rows))
    return out


# The :aug decision rule (fixed in the message of the commit "Rhythm augmentation for rr_net ..." before its DS1
# cross-validation ran): the same thresholds as LOCAL_RULE, against cv_both.
AUG_RULE = {"ds_ap": 0.03, "dv_ap": -0.02}


# The augmentation variants, in the order they were tried (each rule fixed in its commit message before its CV ran).
AUG_VARIANTS = (("cv_both_aug", "both,aug"), ("cv_both_augS", "both,augS"))

# The workdirs whose rows the section shows (a missing one's rows would become "(not run)" or be left out), and the
# :aug variants' training logs.
SOURCES = ("cv_both", "cv_rr", "cv_waveform", "cv_rr_meanref", "cv_rr_upper75", "cv_rr_bn99", "cv_rr_localrr", "cv_both_meanref",
           "cv_both_localrr", "cv_both_repro", "cv_both_seedbase5", "cv_combined", "v6_both", "v6_rr", "v6_waveform", "v6_meanref",
           *(wd for wd, _ in AUG_VARIANTS), "cv_both_aug_seedbase5")


def missing_sources(R: Path) -> list[str]:
    """The section's sources absent under ``R``: ``SOURCES``' workdirs, the ``AUG_VARIANTS``' training logs."""
    want = [f"{wd}/" for wd in SOURCES] + [f"{wd}.ds1.log" for wd, _ in AUG_VARIANTS]
    return [w for w in want if not (R / w).exists()]


def aug_context(R: Path, load, ds1_cv_of) -> dict:
    """The placeholders of the :aug subsection: the variants' size, the DS1 CV table with paired record-bootstrap
    CIs of the AP differences against cv_both, each rule's outcome, and the synthetic-rhythm screen."""
    import importlib.util

    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    f3 = lambda d: f"{pct(d['se'])} / {pct(d['ppv'])} / {pct(d['f1'])}"  # noqa: E731
    out = {"AUG_SIZE": "", "AUG_CV": "(not run)", "AUG_OUTCOME": "The `:aug` DS1 cross-validation has not finished; DS2 was not read for it.",
           "AUG_SCREEN": "(not run)", "AUG_SCREEN_RECS": "-", "AUG_SCREEN_N": "-", "AUG_SCREEN_TEXT": ""}
    rows = [json.loads(l) for l in Path("benchmarks/results/cpu_aami_rr_train.jsonl").read_text().splitlines() if l.strip()]
    size = []
    for wd, spec in AUG_VARIANTS:
        log = R / f"{wd}.ds1.log"
        if not log.exists():
            continue
        text = log.read_text().splitlines()  # the training log's augmentation lines, one per seed
        nums = [(int(l.split("augmentation: ")[1].split()[0]), int(l.split("sequences, ")[1].split()[0])) for l in text if "rhythm augmentation:" in l]
        train = [int(l.split(" train ")[1].split()[0]) for l in text if "ecgjax.train: data:" in l]
        if not nums or len(train) != len(nums):
            continue
        real = [t - b for t, (_, b) in zip(train, nums)]
        w = [r["wall_time_s"] for r in rows if re.fullmatch(f"aami_rr_{spec.replace(',', '_')}_seed[0-9]+", r.get("config_name", ""))]
        size.append(f"`{spec}` per seed (`{wd}.ds1.log`): {min(n for n, _ in nums)}-{max(n for n, _ in nums)} sequences, "
                    f"{min(b for _, b in nums):,}-{max(b for _, b in nums):,} synthetic beats beside {min(real):,}-{max(real):,} real training beats"
                    + (f"; DS1 training {min(w) / 60:.1f}-{max(w) / 60:.1f} min per seed (`cpu_aami_rr_train.jsonl`)" if w else ""))
    if size:
        out["AUG_SIZE"] = "; ".join(size) + "."
    cb = ds1_cv_of("cv_both")
    lines = ["| run | S AP | S AP - cv_both [95% CI over DS1 records, paired] | S Se / +P / F1 (offsets) | V AP | V AP - cv_both [95% CI] | V Se / +P / F1 (offsets) | offsets S, V |",
             "|---|---|---|---|---|---|---|---|"]
    if cb:
        lines.append(f"| cv_both | {pct(cb['S']['ap'])} | | {f3(cb['S']['offsets'])} | {pct(cb['V']['ap'])} | | {f3(cb['V']['offsets'])} | "
                     f"{cb['offsets']['S']:+.2f}, {cb['offsets']['V']:+.2f} |")
    outcomes = []
    ci = lambda t: f"{100 * t[0]:+.1f} [{100 * t[1]:+.1f}, {100 * t[2]:+.1f}]"  # noqa: E731

    def row(name: str, cv: dict, d: dict) -> str:
        """One table row: a DS1 CV result ``cv`` and its paired AP differences ``d`` against cv_both."""
        return (f"| {name} | {pct(cv['S']['ap'])} | {ci(d[1])} | {f3(cv['S']['offsets'])} | {pct(cv['V']['ap'])} | {ci(d[2])} | "
                f"{f3(cv['V']['offsets'])} | {cv['offsets']['S']:+.2f}, {cv['offsets']['V']:+.2f} |")

    for wd, spec in AUG_VARIANTS:
        ca = ds1_cv_of(wd)
        if not (cb and ca):
            continue
        d = {k: paired_ap_difference(R / "cv_both", R / wd, k) for k in (1, 2)}
        lines.append(row(wd, ca, d))
        ds, dv, df1 = ca["S"]["ap"] - cb["S"]["ap"], ca["V"]["ap"] - cb["V"]["ap"], ca["S"]["offsets"]["f1"] - cb["S"]["offsets"]["f1"]
        met = ds >= AUG_RULE["ds_ap"] - 1e-12 and df1 > 0 and dv >= AUG_RULE["dv_ap"] - 1e-12
        txt = (f"`{spec}` against its rule: S AP {100 * ds:+.1f} points (needed >= +{100 * AUG_RULE['ds_ap']:.1f}), S F1 (offsets) {100 * df1:+.1f} "
               f"(needed > 0), V AP {100 * dv:+.1f} (needed >= {100 * AUG_RULE['dv_ap']:+.1f}): **the rule is {'met' if met else 'not met'}**")
        res = load(wd)
        if not met:
            outcomes.append(txt + ", so DS2 was not read for it.")
        elif not res:
            outcomes.append(txt + f"; the DS2 evaluation has not been run (no `{wd}/results.json`), so DS2 was not read for it.")
        else:
            s = res["ds2"]["summary"]
            outcomes.append(txt + f", so its 5 seeds were tested once on DS2: SVEB {pct(s['S']['se']['mean'])} / {pct(s['S']['ppv']['mean'])}, "
                            f"VEB {pct(s['V']['se']['mean'])} / {pct(s['V']['ppv']['mean'])} (5-seed means, Se / +P).")
    # the noise floor: the recipe itself, retrained on the same folds (same seeds with this session's code; other seeds)
    for wd, label, what in (("cv_both_repro", "the recipe retrained, seeds 0-4", "with the same seeds 0-4 (`cv_both_repro`)"),
                            ("cv_both_seedbase5", "the recipe retrained, seeds 5-9", "with seeds 5-9 (`:seedbase5`)")):
        rerun = ds1_cv_of(wd)
        if not (cb and rerun):
            continue
        d = {k: paired_ap_difference(R / "cv_both", R / wd, k) for k in (1, 2)}
        lines.append(row(f"{wd} ({label})", rerun, d))
        outcomes.append(f"For scale, the recipe itself (no augmentation, DS2 not read) retrained on the same folds {what} "
                        f"moves S AP by {100 * d[1][0]:+.1f} and V AP by {100 * d[2][0]:+.1f} points and the S F1 (offsets) by "
                        f"{100 * (rerun['S']['offsets']['f1'] - cb['S']['offsets']['f1']):+.1f} against `cv_both`.")
    rep, other = ds1_cv_of("cv_both_repro"), ds1_cv_of("cv_both_seedbase5")
    if cb and rep and other:
        same = all(abs(rep[c]["ap"] - cb[c]["ap"]) < 1e-9 for c in ("S", "V"))
        ds, dv = other["S"]["ap"] - cb["S"]["ap"], other["V"]["ap"] - cb["V"]["ap"]
        df1 = other["S"]["offsets"]["f1"] - cb["S"]["offsets"]["f1"]
        passes = ds >= AUG_RULE["ds_ap"] and df1 > 0 and dv >= AUG_RULE["dv_ap"]
        _, lo, hi = paired_ap_difference(R / "cv_both", R / "cv_both_seedbase5", 1)
        outcomes.append(
            ("Training is deterministic (the retraining with seeds 0-4 reproduces `cv_both`'s scores exactly), so the seeds 5-9 "
             "difference is what a new initialisation and batch order alone do. " if same else
             "The retraining with seeds 0-4 does not reproduce `cv_both` exactly, so part of these differences is not the seeds. ")
            + (f"Its S AP difference ({100 * ds:+.1f} points) is larger than the rule's {100 * AUG_RULE['ds_ap']:+.1f}-point threshold"
               + (" and the recipe would pass the rule against itself" if passes else "") + ": a single 5-seed training per arm cannot "
               "tell a recipe change of this size from a reseed, on either side of the threshold (this holds for the `:localrr` rule above "
               "too, which made the same comparison). A DS1 decision needs several seed sets per arm (their mean, with the spread "
               "between seed sets as the noise)." if abs(ds) > AUG_RULE["ds_ap"] else "")
            + (f" Its paired 95% CI over DS1 records ({100 * lo:+.1f} to {100 * hi:+.1f}) excludes 0 for two trainings of one recipe: "
               "those CIs resample records, not trainings, so they do not cover the seed noise either." if lo > 0 or hi < 0 else ""))
    arms = {"cv_both": ("cv_both", "cv_both_seedbase5"), "`:aug`": ("cv_both_aug", "cv_both_aug_seedbase5")}
    cvs = {k: [ds1_cv_of(w) for w in v] for k, v in arms.items()}
    if all(all(c) for c in cvs.values()):  # two seed sets per arm (seeds 0-4 and 5-9, the same folds)
        for wd in ("cv_both_aug_seedbase5",):
            c = ds1_cv_of(wd)
            lines.append(f"| {wd} (`:aug`, seeds 5-9) | {pct(c['S']['ap'])} | | {f3(c['S']['offsets'])} | {pct(c['V']['ap'])} | | "
                         f"{f3(c['V']['offsets'])} | {c['offsets']['S']:+.2f}, {c['offsets']['V']:+.2f} |")
        m = lambda k, f: np.mean([f(c) for c in cvs[k]])  # noqa: E731
        g = lambda k, f: " and ".join(pct(f(c)) for c in cvs[k])  # noqa: E731
        sap, vap, sf1 = (lambda c: c["S"]["ap"]), (lambda c: c["V"]["ap"]), (lambda c: c["S"]["offsets"]["f1"])
        outcomes.append(
            "With two seed sets per arm (seeds 0-4 and 5-9, the same folds; `:aug,seedbase5` trained after the rule's outcome, as a "
            f"check, not a new rule): S AP {g('cv_both', sap)} (mean {pct(m('cv_both', sap))}) for the recipe against {g('`:aug`', sap)} "
            f"(mean {pct(m('`:aug`', sap))}) with augmentation; V AP {g('cv_both', vap)} (mean {pct(m('cv_both', vap))}) against "
            f"{g('`:aug`', vap)} (mean {pct(m('`:aug`', vap))}); S F1 (offsets) {g('cv_both', sf1)} against {g('`:aug`', sf1)}.")
    if len(lines) > 3:
        out["AUG_CV"] = "\n".join(lines)
        out["AUG_OUTCOME"] = " ".join(outcomes) + " The config default is unchanged."
    path = Path("benchmarks/results/ds1_rhythm_screen.jsonl")
    if path.exists():
        spec_ = importlib.util.spec_from_file_location("ds1_rhythm_screen", Path(__file__).with_name("ds1_rhythm_screen.py"))
        mod = importlib.util.module_from_spec(spec_)
        spec_.loader.exec_module(mod)
        rows = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]
        rows = [r for r in rows if r.get("template_order", "source") == "source"]  # the screen these trainings had
        out["AUG_SCREEN"] = mod.table(rows, "source")
        last = {r["workdir"]: r for r in rows}
        r0 = next(iter(last.values()))
        out["AUG_SCREEN_RECS"] = "; ".join(f"seed {s}: {', '.join(v) or 'none'}" for s, v in r0["records"].items())
        out["AUG_SCREEN_N"] = f"{r0['n_rhythms']} rhythms of {r0['n_beats']} beats per record and S fraction"
        by = {Path(wd).name: r for wd, r in last.items()}
        texts = []
        for wd, spec in AUG_VARIANTS:
            if "cv_both" not in by or wd not in by:
                continue
            a, b = by["cv_both"]["fractions"], by[wd]["fractions"]
            fr = [f for f in a if f in b]
            more_argmax = all(b[f]["argmax"]["S_se"] > a[f]["argmax"]["S_se"] for f in fr)
            fewer_off = all(b[f]["offsets"]["S_se"] < a[f]["offsets"]["S_se"] for f in fr)
            texts.append(f"`{wd}` (S offset {by[wd]['offsets']['S']:+.2f}, `cv_both`'s {by['cv_both']['offsets']['S']:+.2f}) against `cv_both`: "
                         + ("more S beats found at the argmax at every fraction" if more_argmax else "not more S beats at the argmax at every fraction")
                         + (", fewer with the offsets at every fraction" if fewer_off else ", not fewer with the offsets at every fraction") + ".")
        out["AUG_SCREEN_TEXT"] = (" ".join(texts) + " The screen's rhythms (runs of S beats) are of the family the `runs` pattern trains on, "
                                  "so an augmented model is screened on rhythms of the kind it was trained on (with beats of records it never saw): "
                                  "a check that it learnt them, not evidence that it generalises to a new rhythm such as 232's.")
    return out


def _found_232(workdir: Path, argmax: bool) -> tuple[float, float]:
    """Mean over seeds of the share (%) of record 232's S beats and of the other records' S beats called S."""
    a, b = [], []
    for sd in sorted((workdir / "ds2").glob("seed*.npz")):
        with np.load(sd) as z:
            y, r = z["y_true"], z["record"]
            p = z["logits"].argmax(1) if argmax else z["y_pred"]
        m = r == "232"
        a.append(100 * np.mean(p[m & (y == 1)] == 1))
        b.append(100 * np.mean(p[~m & (y == 1)] == 1))
    return float(np.mean(a)), float(np.mean(b))


def ablation_text(both, rr, wave, runs: Path, old_rr=None) -> str:
    """One paragraph on the inputs ablation, from the three summaries (plain argmax and with offsets, 5-seed means)."""
    if not (rr and wave):
        return "(The RR-only and waveform-only runs were not finished.)"
    f = lambda res, c, m, k="summary_argmax": f"{100 * res['ds2'][k][c][m]['mean']:.1f}"  # noqa: E731
    g = lambda res, k="summary_argmax": f"SVEB {f(res, 'S', 'se', k)} / {f(res, 'S', 'ppv', k)}, VEB {f(res, 'V', 'se', k)} / {f(res, 'V', 'ppv', k)}"  # noqa: E731
    rr232, b232 = _found_232(runs / "cv_rr", False), _found_232(runs / "cv_both", False)
    out = (f"With the offsets (5-seed means, Se / +P): RR only {g(rr, 'summary')}; waveform only {g(wave, 'summary')}; both {g(both, 'summary')}. "
           f"Plain argmax: RR only {g(rr)}; waveform only {g(wave)}; both {g(both)}. With the offsets the RR-only model calls "
           f"{rr232[0]:.1f}% of record 232's S beats S and {rr232[1]:.1f}% of the other records' (both inputs: {b232[0]:.1f}% and {b232[1]:.1f}%).")
    if old_rr:
        out += f" The previous RR-only model (4 validation records) found {g(old_rr, 'summary')} with its offsets."
    return out


if __name__ == "__main__":
    sys.exit(main())
