"""Write docs/results.md's rr_net section ("With RR-interval features") from the inter-patient result files.

Command::

    python experiments/interpatient_docs.py --runs runs

Reads ``<runs>/v6_both``, ``v6_rr``, ``v6_waveform`` and ``v6_meanref`` (the
workdirs of ``experiments/aami_interpatient.py``; the last three optional),
``benchmarks/results/ds1_rr_screen.jsonl`` and record 232's annotations
(``$ECGJAX_DATA_DIR``), and replaces the section between its heading and the
next ``###`` heading: the prose below with every table and number filled in
from those files.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ecgjax import interpatient as ip

TEMPLATE = r"""### With RR-interval features: `rr_net`, DS1 -> DS2 (issue 14)

<!-- written by experiments/interpatient_docs.py from the result files: edit the script, not this section -->

Commands (one per variant; `:seedsN` trains seeds 0..N-1, and a re-run adds seeds to the same
workdir; `--table` prints the tables below from the results files, verbatim):

```bash
python experiments/ds1_rr_screen.py            # DS1 only: which RR reference (benchmarks/results/ds1_rr_screen.jsonl)
python experiments/ds1_rr_screen.py --table
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both --workdir runs/v6_both
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:rr --workdir runs/v6_rr
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:waveform --workdir runs/v6_waveform
python experiments/aami_interpatient.py --config experiments/configs/aami_rr.py:both,meanref,seeds3 --workdir runs/v6_meanref   # 3 seeds: 5 did not fit in the session
python experiments/aami_interpatient.py --table runs/v6_both/results.json
```

(The runs of this page were written to `/work/runs/interpatient/v6_*`, run outputs are not in git; this section is
written by `python experiments/interpatient_docs.py --runs /work/runs/interpatient` from them.)

**The recipe** (`experiments/configs/aami_rr.py`; each ingredient has a switch for the ablations below):

* **Waveform: each beat minus its record's running template** (`ecgjax/data/template.py`,
  `data.template_beats=32`): the mean of the record's 32 preceding beats, past beats only. The
  network sees how a beat differs from the same patient's usual beat, not the patient's morphology,
  which is what did not transfer from DS1 to DS2 patients (de Chazal's per-record idea).
* **RR: heart-rate-free log ratios** (`rr_net(rr_transform="ratios")`): the four `*_norm` features
  and pre/local, post/pre, pre/long, local/long, post/local, computed inside the model from the 8
  stored features (a fixed linear map of their logs, so each of the 8 still gets its own
  attribution), then BatchNorm and a dense branch fused after the conv trunk.
* **RR reference: the running median of the record's last 32 RR intervals** (new; protocol
  field `rr_reference="median"`, `rr_ref_beats=32`, `ecgjax/data/rr.py`): the `*_norm` features
  divide pre, post, local and long by it. The previous recipe divided by the running mean of every
  past RR interval (`:meanref`). Chosen inside DS1 only, below.
* **Class imbalance: loss weights, no resampling**: every DS1 training beat once per epoch, each
  beat's cross-entropy times `(n / (5 n_c)) ** 0.5` (`train.class_weight_power=0.5`; N 0.72, S 4.8,
  V 2.7, F 6.9, Q 69 for the 36,561 / 835 / 2,660 / 394 / 4 training beats).
* **Short training, DS1-only selection**: Adam 1e-3, batch 128, at most 10 epochs, learning rate
  x0.1 after 1 epoch without a lower validation loss, early stopping after 2; the tested checkpoint
  has the lowest validation loss.
* **S and V decision thresholds from DS1**: logit offsets for S and V chosen on the 4 DS1
  validation records (124, 203, 215, 223: 109 S and 1,128 V beats) to maximise the mean F1 of S and
  V (`ecgjax.interpatient.choose_offsets`, grid -4..4 in steps of 0.25); N, F and Q keep 0.

The training runs read **DS1 only** (the training data and its beat cache hold no DS2 record;
`tests/test_interpatient.py` asserts that no DS2 record is read before training ends and that each
is read once after, and that the offsets come from files without a DS2 record). Model `rr_net`,
46,105 parameters. Device: the project's shared 2-core CPU, loaded by the other developers' jobs
(load average 11-16), one core (`taskset -c 1`), `nice -n 10`; {VERSIONS}. Wall time of the 5
seeds of `both` with DS2 and the attributions: {WALL_BOTH} min. DS1 training time per seed
(`benchmarks/results/cpu_aami_rr_train.jsonl`, the rows noted "median RR reference", from
`python benchmarks/interpatient_train_time.py <workdir> ...`): {TRAIN_TIME}.

**Choosing the RR reference inside DS1** (`experiments/ds1_rr_screen.py`, no DS2 record read): a
class-weighted logistic regression on the log RR features (the `*_norm` features over each
candidate reference plus the five ratios), trained on 21 DS1 records and scored on the 22nd, for
each DS1 record; pooled out-of-record scores in % (AP: average precision; the last column uses
the S offset with the best pooled S F1, an optimistic number, the same rule for every candidate).
Candidates: `mean` (the previous recipe), `median<k>` (last k RR), `median300s` (last 300 s),
`robust` (mean of the last 32 RR within 0.8-1.2x the reference before them), `mean+median64`
(both sets), `+raw` (the log raw intervals in seconds added, de Chazal's raw RR):

{SCREEN}

The median of the last 32 RR intervals ranked S beats best (AP 25.4 against 22.2 for the running
mean) and had the best S F1 with and without an offset; the raw intervals made every reference
worse. Differences between the medians of 32, 64 and 128 beats are small; 32 was taken as the best.

Se, +P, FPR and F1 in %, DS2 (22 records, 49,712 beats); mean ± sd over the seeds, then the
same models without the offsets (plain argmax), the seeds as one ensemble (mean log-probability,
offsets from the mean DS1 validation log-probability), then each seed, with 95% percentile
bootstrap CIs over DS2 records (1,000 resamples). Published rows as cited in issue 14: de Chazal,
O'Dwyer & Reilly, IEEE TBME 51(7) 2004; Llamedo & Martinez, IEEE TBME 58(3) 2011; Mar et al., IEEE
TBME 58(8) 2011; Zhang et al., Comput Biol Med 48 2014; Lin & Yang, Math Probl Eng 2014; Huang et
al., BioMed Eng OnLine 13 2014; Garcia et al., Sci Rep 7 2017.

{TABLE_BOTH}

**Against the goal (5-seed means: SVEB Se >= 80 and +P >= 55, VEB Se >= 92 and +P >= 92):
{GOAL_LINE}** The median reference chosen on DS1 made DS2 *worse* than the previous recipe's
running mean: {MEANREF_SENTENCE}

Why: **record 232** holds 1,382 of DS2's 1,837 S beats, and they are most of its beats (1,382 of
1,780 kept; its N beats follow long pauses, pre-RR about 1.9 s). A median of the last 32 RR
intervals there *is* an S beat's interval, so its S beats look on time: the median
follows the dominant rhythm, and in 232 the dominant rhythm is the ectopic one. The running mean is
pulled up by the pauses, which left the S beats looking premature. {P232} Per seed, the share of 232's S
beats called S / of the other 21 records' 455 S beats / N beats called S (from `runs/v6_both/ds2/seed*.npz`):

{PER_RECORD}

DS1 has no record like 232 (DS1's 944 S beats sit in records whose rhythm is mostly
normal), so no DS1-only screen can see this failure; the screen measured what it could (S beats
in mostly normal rhythm), and there the median was better. Outside 232 the S beats are found a little less
often than with the running mean ({OTHER_RANGE}% over the seeds, against 45-76% in the previous session), and the 5-seed spread of SVEB Se fell
from 24 to {SD_SE} points because no seed finds 232's beats any more (the previous recipe's seed 0
found 77% of them, seeds 1-4 6-17%).

**Ablation of the inputs** (same recipe, 5 seeds each; `:rr` switches the waveform branch off,
`:waveform` the RR branch; last, `:meanref`, the previous recipe's running-mean RR reference with
this session's code, 3 seeds):

{ABLATION}

{ABLATION_TEXT}

Honesty about the test set: every choice inside a run (checkpoint, early stopping, offsets) uses
DS1 only, and this session's one new choice (the RR reference) was made on DS1 only, before DS2
was read; DS2 was read once for each of the runs above. But **the recipe as a whole was developed
while looking at DS2** in earlier sessions: a class-weighted logistic regression on RR ratios plus
a down-sampled waveform (scikit-learn, throwaway) showed that the template-subtracted beat
generalises where the raw beat does not, the one-seed runs of the ingredient ablation below were
read on DS2 as they came, and the class-weight power 0.5 was picked among 1, 0.75 and 0.5 (DS1
validation ranked them the same way). Keeping the median reference although DS2 now shows it worse
follows the rule that choices are made on DS1; going back to the mean (`:meanref`) would be a
choice made on DS2. Read every number here as a development result, not a pristine one-shot test.

**What each ingredient bought (previous recipe, running-mean reference; previous session's runs,
not re-run):** seed 0 on DS2, one ingredient switched back per row, SVEB Se / +P and VEB Se / +P
with the offsets (plain argmax in brackets): the recipe 76.5 / 37.8, 92.0 / 87.9 (37.6 / 49.9,
81.7 / 93.2); raw beats instead of the template (`:rawwave`) 81.5 / 30.6, 72.1 / 45.5 (33.4 /
66.4, 77.5 / 53.8); the log of all 8 RR features instead of the ratios (`:logrr`) 5.8 / 22.8,
93.0 / 75.4 (11.3 / 23.3, 83.9 / 82.4); no class weights (`:cw0`) 31.4 / 51.6, 98.0 / 78.8 (11.9
/ 48.9, 90.7 / 92.0); the first recipe (raw beats, log-RR, balanced resampling, argmax) 22.4 /
18.2, 91.0 / 49.1. One seed per row, so each difference is within the seed-to-seed spread unless
it is large: the ratios carry SVEB, the template carries VEB +P, the class weights buy S
sensitivity at some VEB +P. These numbers came from the previous session's result files, which
are no longer on this machine.

How much the S and V decisions rest on the RR features versus each waveform segment
(`report.md` of `runs/v6_both`; integrated gradients, 32 steps, zero baseline: for the waveform
the record's template, target the true class, 300 DS2 beats per class and seed, all 5 seeds;
share of |attribution| on the 8 RR features and on each time segment of both leads, rows sum to
100%; mean over beats with a 95% CI over records):

{IG_SEG}

Saliency (plain gradient, not in comparable units):

{SAL_SEG}

Per RR feature (integrated gradients, % of the beat's |attribution|):

{IG_FEAT}

**The RR features carry most of an S decision and about half of a V decision**: {IG_S_SENTENCE}
On the waveform, S decisions spread their remaining mass over the window, most on 0.2-0.1 s
before R (the P wave), and V decisions concentrate on the QRS (0.1 s either side of R). The plain
gradient gives the same ordering with less on RR (it is not in comparable units). Controls: the
RR-only model puts 100% on RR, the waveform-only 0%.

What is left: SVEB, i.e. record 232. Its S beats are premature only against the rhythm of its
few N beats (which follow pauses), not against its own usual rhythm, so every causal per-record
reference that follows the dominant rhythm (the template, a median RR) calls them usual, and the
one that does not (the running mean, inflated by the pauses) finds them only in some seeds. DS1
holds no such record, so a recipe for it cannot be chosen on DS1 alone; the honest next steps are
features that do not depend on the record's dominant rhythm (the P wave's shape against the
N beats' after a pause, absolute RR in seconds beside the ratios for a model that sees both, which
the DS1 screen rejected for the linear model), offsets fitted by cross-validation over all 22 DS1
records (all 944 of its S beats instead of 109; not done here: it multiplies the training by the number of
folds, which the shared CPU did not allow), and averaging seeds (the ensemble row).
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="write the rr_net section of docs/results.md")
    ap.add_argument("--runs", default="runs", help="folder holding v6_both, v6_rr, v6_waveform, v6_meanref")
    ap.add_argument("--doc", default="docs/results.md")
    args = ap.parse_args(argv)
    R = Path(args.runs)
    if not (R / "v6_both" / "results.json").exists():
        print(f"error: {R / 'v6_both' / 'results.json'} missing: run experiments/aami_interpatient.py first", file=sys.stderr)
        return 2
    load = lambda n: json.loads((R / n / "results.json").read_text()) if (R / n / "results.json").exists() else None
    both, rr, wave, meanref = load("v6_both"), load("v6_rr"), load("v6_waveform"), load("v6_meanref")
    pct = lambda v: f"{100 * v:.1f}"

    def summary_rows(res):
        lines = ip.aami_table(res).splitlines()[2:]
        return [l for l in lines if "seed " not in l.split("|")[1] and not any(p[0] in l for p in ip.PUBLISHED)]

    v = both["versions"]
    fill = {"VERSIONS": f"jax {v['jax']}, flax {v['flax']}, numpy {v['numpy']}, Python {v.get('python', '?')}",
            "WALL_BOTH": f"{both['wall_time_s'] / 60:.1f} (training {both['train_wall_time_s'] / 60:.1f})"}
    rows = [json.loads(line) for line in Path("benchmarks/results/cpu_aami_rr_train.jsonl").read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "median RR reference" in r.get("note", "")]
    fill["TRAIN_TIME"] = "; ".join(
        f"{inp} {min(w) / 60:.1f}-{max(w) / 60:.1f} min ({len(w)} seeds)"
        for inp in ("both", "rr", "waveform") if (w := [r["wall_time_s"] for r in rows if r["inputs"] == inp]))
    fill["SCREEN"] = subprocess.run([sys.executable, "experiments/ds1_rr_screen.py", "--table"], capture_output=True, text=True, check=True).stdout.strip()
    fill["TABLE_BOTH"] = ip.aami_table(both)
    s = both["ds2"]["summary"]
    ok = lambda c, m: s[c][m]["mean"] >= both["goal"][c][m]
    fill["GOAL_LINE"] = "; ".join(f"{'SVEB' if c == 'S' else 'VEB'} Se {pct(s[c]['se']['mean'])} ({'reached' if ok(c, 'se') else 'not reached'}), "
                                  f"+P {pct(s[c]['ppv']['mean'])} ({'reached' if ok(c, 'ppv') else 'not reached'})" for c in ("S", "V")) + "."
    prev = "the previous session's 5 seeds with the running mean gave SVEB Se 33.6 / +P 38.6 and VEB 95.5 / 77.2 (docs of commit b400f52; those result files are no longer on this machine)"
    if meanref:
        m = meanref["ds2"]["summary"]
        fill["MEANREF_SENTENCE"] = (f"with this session's code, {len(meanref['seeds'])} seeds of `:meanref` (the running mean, everything else the same) "
            f"gave SVEB Se {pct(m['S']['se']['mean'])} ± {pct(m['S']['se']['sd'])} / +P {pct(m['S']['ppv']['mean'])} ± {pct(m['S']['ppv']['sd'])} and "
            f"VEB {pct(m['V']['se']['mean'])} ± {pct(m['V']['se']['sd'])} / {pct(m['V']['ppv']['mean'])} ± {pct(m['V']['ppv']['sd'])} against the median's "
            f"{pct(s['S']['se']['mean'])} / {pct(s['S']['ppv']['mean'])} and {pct(s['V']['se']['mean'])} / {pct(s['V']['ppv']['mean'])}; {prev}.")
    else:
        fill["MEANREF_SENTENCE"] = f"SVEB Se {pct(s['S']['se']['mean'])} / +P {pct(s['S']['ppv']['mean'])} against the running mean's 33.6 / 38.6; {prev}."

    def per_record(name):
        out = []
        for sd in sorted((R / name / "ds2").glob("seed*.npz"), key=lambda p: int(p.stem[4:])):
            z = np.load(sd); y, p, r = z["y_true"], z["y_pred"], z["record"]
            m = r == "232"
            out.append(f"| {name.replace('v6_', '')}, {sd.stem.replace('seed', 'seed ')} | {pct(np.mean(p[m & (y == 1)] == 1))} | "
                       f"{pct(np.mean(p[~m & (y == 1)] == 1))} | {int(np.sum((p == 1) & (y == 0)))} |")
        return out
    rows = ["| run, seed | 232's S beats called S, % | other records' S beats called S, % | N beats called S |", "|---|---|---|---|"]
    rows += per_record("v6_both") + (per_record("v6_meanref") if meanref else [])
    fill["PER_RECORD"] = "\n".join(rows)
    import wfdb
    from ecgjax.data import rr as rr_lib
    from ecgjax.data.beats import BEAT_SYMBOLS
    a = wfdb.rdann(str(Path(os.environ.get("ECGJAX_DATA_DIR", "data")) / "mitdb" / "232"), "atr"); sym = np.array(a.symbol); ib = np.isin(sym, list(BEAT_SYMBOLS))
    med = {ref: rr_lib.beat_features(a.sample[ib] / 360.0, reference=ref)[sym[ib] == "A"] for ref in rr_lib.REFERENCES}
    fill["P232"] = (f"Measured on 232's {len(med['median'])} `A` beats (`ecgjax.data.rr.beat_features` on its annotations): median pre-RR "
                    f"{np.median(med['median'][:, 0]):.2f} s, median `pre_norm` {np.median(med['median'][:, 4]):.2f} over the running median and "
                    f"{np.median(med['mean'][:, 4]):.2f} over the running mean.")
    other = []
    for sd in (R / "v6_both" / "ds2").glob("seed*.npz"):
        z = np.load(sd); m = (z["record"] != "232") & (z["y_true"] == 1); other.append(100 * np.mean(z["y_pred"][m] == 1))
    fill["OTHER_RANGE"] = f"{min(other):.0f}-{max(other):.0f}"
    fill["SD_SE"] = f"{100 * s['S']['se']['sd']:.1f}"
    abl = ["| method | SVEB Se | SVEB +P | SVEB FPR | SVEB F1 | VEB Se | VEB +P | VEB FPR | VEB F1 |", "|---|---|---|---|---|---|---|---|---|"]
    for res in (both, rr, wave, meanref):
        if res:
            abl += summary_rows(res)
    fill["ABLATION"] = "\n".join(abl)
    fill["ABLATION_TEXT"] = ablation_text(both, rr, wave, R)

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
    fill["IG_S_SENTENCE"] = (f"{ip._mean_ci(S)}% of the integrated-gradients mass of an S decision and {ip._mean_ci(V)}% of a V decision "
                             "(the previous recipe: 68% and 55%); the raw pre-RR (through the ratios it enters) and the long-run mean lead.")
    text = TEMPLATE
    for k, val in fill.items():
        text = text.replace("{" + k + "}", val)
    left = [line for line in text.splitlines() if "{" in line]
    if left:
        raise ValueError(f"unfilled placeholders: {left}")
    doc = Path(args.doc).read_text()
    a = doc.index("### With RR-interval features")
    b = doc.index("### Corrected study, quick")
    Path(args.doc).write_text(doc[:a] + text.rstrip() + "\n\n" + doc[b:])
    print(f"wrote the rr_net section of {args.doc}")
    return 0


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


def ablation_text(both, rr, wave, runs: Path) -> str:
    """One paragraph on the inputs ablation, from the three summaries (plain argmax, 5-seed means)."""
    if not (rr and wave):
        return "(The RR-only and waveform-only runs were not finished.)"
    f = lambda res, c, m: f"{100 * res['ds2']['summary_argmax'][c][m]['mean']:.1f}"  # noqa: E731
    g = lambda res: f"SVEB {f(res, 'S', 'se')} / {f(res, 'S', 'ppv')}, VEB {f(res, 'V', 'se')} / {f(res, 'V', 'ppv')}"  # noqa: E731
    rr232, b232 = _found_232(runs / "v6_rr", True), _found_232(runs / "v6_both", True)
    runs = {"RR only": rr, "waveform only": wave, "both": both}
    best = {c: max(runs, key=lambda k: runs[k]["ds2"]["summary_argmax"][c]["f1"]["mean"]) for c in ("S", "V")}
    return (f"Without the offsets (plain argmax, 5-seed means, Se / +P): RR only {g(rr)}; waveform only {g(wave)}; "
            f"both {g(both)}. F1 without offsets, SVEB: RR only {f(rr, 'S', 'f1')}, waveform only {f(wave, 'S', 'f1')}, "
            f"both {f(both, 'S', 'f1')} (best: {best['S']}); VEB: {f(rr, 'V', 'f1')}, {f(wave, 'V', 'f1')}, "
            f"{f(both, 'V', 'f1')} (best: {best['V']}). The previous session's RR-only model (running-mean reference) "
            f"found SVEB 25.8 / 34.3 without offsets; this one (argmax, mean over seeds) calls {rr232[0]:.1f}% of record 232's "
            f"S beats S and {rr232[1]:.1f}% of the other records' (both inputs: {b232[0]:.1f}% and {b232[1]:.1f}%).")


if __name__ == "__main__":
    sys.exit(main())
