"""A rule on top of the trained inter-patient recipe, screened on DS1 only: no S call inside an irregular rhythm,
or without P waves locked to R.

Command::

    python experiments/ds1_af_rule_screen.py runs/cv_both runs/cv_both_seedbase5 runs/cv_both_seedbase10 \\
        runs/cv_both_seedbase15 runs/cv_both_seedbase20 [--taus 1.1 1.15 1.2 1.3] [--out benchmarks/results/ds1_af_rule_screen.jsonl]
    python experiments/ds1_af_rule_screen.py --rule plock runs/cv_both_sinus runs/cv_both_sinus_seedbase5 ...   # taus 0.05 0.1 0.15 0.2
    python experiments/ds1_af_rule_screen.py --table [--rule plock]

Atrial fibrillation has no premature atrial beats (its beats are labelled N), but its irregular RR
intervals look premature to an RR model: on DS1 and on DS2 most of the recipe's N beats called S sit
in the atrial fibrillation and flutter records (docs/results.md, "Recipe changes gated on DS1"). The
rule: a beat whose ``irreg`` (``ecgjax.data.rr``: the median ratio of successive intervals among the 10
before it) exceeds ``tau`` is not called S (``ecgjax.interpatient.suppress_s``). Each
workdir is one seed set of ``experiments/aami_interpatient.py --ds1-only``; on its pooled out-of-record
DS1 predictions the S/V offsets are chosen again as the benchmark chooses them (``choose_offsets``), and
S F1, AP, Se, +P and V F1 are scored without and with the rule (``rule_scores``). Its cost where S beats
come in runs, as in an ectopic-dominant record: the share of S beats with ``irreg > tau`` in synthetic
rhythms (``ecgjax.data.rhythm.synthetic_record``, S fractions 10-85%). No DS2 record is read.

``--rule plock``: a beat whose ``plock`` (``ecgjax.data.template.atrial_lock`` over its 32 preceding beats:
the share of the P window's energy locked to R, near 1 with P waves and near 1/32 in atrial fibrillation)
is below ``tau`` is not called S. The intervals do not enter it, so it has no synthetic-rhythm column;
what it costs shows in the DS1 S beats it suppresses (last column). ``--to N``: the suppressed S
probability is added to N's (``suppress_s``'s ``to``), instead of leaving the beat to the model's next
choice (V, in the fibrillation records of DS2).

One JSON line per invocation in ``--out`` (with versions and the command); ``--table`` prints the
markdown of the last line of ``--rule``, ``--doc`` also writes it between that rule's markers of that
file (``<!-- ds1_af_rule_screen -->``, ``<!-- ds1_af_rule_screen plock -->``).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"  # the repo's result files, from any folder

TAUS = {"irreg": (1.10, 1.15, 1.20, 1.30), "plock": (0.05, 0.10, 0.15, 0.20)}
SYNTHETIC_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.85)


def rule_scores(logits: np.ndarray, y: np.ndarray, values: np.ndarray, tau: float | None, rule: str = "irreg",
                to: str | None = None) -> dict:
    """S F1, AP, Se, +P and V F1 (%) of pooled predictions after the rule (``tau`` None: no rule), offsets chosen
    on those same predictions. logits f32[M, C] (classes N, S, V, ...), y i64[M], values f32[M]: the rule's feature."""
    from sklearn.metrics import average_precision_score

    from ecgjax.interpatient import _f1, _log_softmax, choose_offsets, suppress_s

    lp = _log_softmax(np.asarray(logits, np.float64))
    if tau is not None:
        lp = suppress_s(lp, values, tau, ["N", "S", "V", "F", "Q"][: lp.shape[1]], rule, to)
    pred = (lp + choose_offsets(lp, y, [1, 2])).argmax(-1)
    tp = int(np.sum((pred == 1) & (y == 1)))
    return {"S F1": 100 * _f1(y, pred, 1), "S AP": 100 * float(average_precision_score(y == 1, np.exp(lp[:, 1]))),
            "S Se": 100 * tp / max(int(np.sum(y == 1)), 1), "S +P": 100 * tp / max(int(np.sum(pred == 1)), 1),
            "V F1": 100 * _f1(y, pred, 2)}


def synthetic_share(tau: float, fraction: float, n: int = 20, seed: int = 0) -> float:
    """% of the S beats of ``n`` synthetic rhythms with this S fraction whose ``irreg`` exceeds ``tau``."""
    from ecgjax.data.rhythm import synthetic_record
    from ecgjax.data.rr import FEATURES, beat_features

    rng = np.random.default_rng(seed)
    hit = total = 0
    for _ in range(n):
        t, lab = synthetic_record(rng, fraction)
        irreg = beat_features(t)[:, FEATURES.index("irreg")]
        hit += int(np.sum(irreg[lab == 1] > tau))
        total += int(np.sum(lab == 1))
    return 100.0 * hit / max(total, 1)


def pooled(workdir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(logits, y, beat index, record) of one seed set's out-of-record DS1 predictions (every runs/seed*:
    ``ecgjax.interpatient.pooled_predictions``)."""
    from ecgjax.errors import DataError
    from ecgjax.interpatient import pooled_predictions, workdir_seeds

    seeds = workdir_seeds(workdir)
    if not seeds:
        raise DataError(f"{workdir}: no runs/seed*/predictions.npz; run experiments/aami_interpatient.py --ds1-only there first")
    try:
        cv = pooled_predictions(workdir, seeds)
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{workdir}: a seed's runs/seed*/predictions.npz is missing or damaged ({type(e).__name__}: {e})") from None
    return cv["logits"], cv["y"], cv["index"], cv["record"]


def table(rows: list[dict], rule: str = "irreg", to: str | None = None) -> str:
    """Markdown of the last line of ``rule`` (with ``to``): per tau, the mean ± sd over seed sets and the paired change
    against no rule."""
    from ecgjax import interpatient as ip

    rows = [r for r in rows if r.get("rule", "irreg") == rule and r.get("to") == to]
    if not rows:
        raise KeyError(f"no screen of the rule {rule!r}{f' with S to {to}' if to else ''} in the result file")
    row = rows[-1]
    names = ["S F1", "S AP", "S Se", "S +P", "V F1"]
    op = ip.S_RULES[rule]
    fr = list(next(iter(row["synthetic"].values()), {}))
    out = [f"`{row['command']}` ({row['when']}; {len(row['workdirs'])} seed sets; no DS2 record read)", "",
           "| rule | " + " | ".join([*names, *(f"synthetic {100 * float(f):.0f}% S: S beats suppressed" for f in fr)])
           + " | DS1 S beats suppressed (most in records) |", "|---" * (len(names) + len(fr) + 2) + "|"]
    base = np.array([[s[n] for n in names] for s in row["scores"]["none"]])
    for key in ["none", *sorted((k for k in row["scores"] if k != "none"), key=float)]:  # the line's keys may be sorted as text
        sets = row["scores"][key]
        a = np.array([[s[n] for n in names] for s in sets])
        cells = [f"{m:.1f} ± {sd:.1f}" for m, sd in zip(a.mean(0), a.std(0, ddof=1))]
        if key != "none":
            d = a - base
            cells = [f"{c} ({dm:+.1f}, se {dse:.1f})" for c, dm, dse in zip(cells, d.mean(0), d.std(0, ddof=1) / np.sqrt(len(d)))]
        syn = [f"{row['synthetic'][key][f]:.1f}" if key != "none" else "" for f in fr]
        lost = row["s_suppressed"].get(key, {})
        lost_txt = "" if key == "none" else f"{lost['share']:.1f}% (" + ip.most_counts(lost["by_record"], 3) + ")"
        name = "no rule" if key == "none" else f"{rule} {op} {key}" + (f", S to {row['to']}" if row.get("to") else "")
        out.append(f"| {name} | " + " | ".join([*cells, *syn]) + f" | {lost_txt} |")
    out += ["", "Mean ± sd over the seed sets; in brackets the change against no rule, paired by seed set, with its standard error."]
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    from ecgjax.errors import DataError
    from ecgjax.io import append_jsonl, environment_info, read_jsonl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workdirs", nargs="*", type=Path, help="--ds1-only workdirs of one recipe, one per seed set")
    ap.add_argument("--rule", default="irreg", choices=list(TAUS), help="no S where irreg > tau (default), or where plock < tau")
    ap.add_argument("--taus", nargs="+", type=float, help="thresholds (default: TAUS of the rule)")
    ap.add_argument("--to", choices=["N"], help="the suppressed S probability goes to this class (default: to none, "
                    "the beat takes the model's next choice)")
    ap.add_argument("--out", type=Path, default=RESULTS / "ds1_af_rule_screen.jsonl")
    ap.add_argument("--data-dir", default=os.environ.get("ECGJAX_DATA_DIR"))
    ap.add_argument("--table", action="store_true", help="print the markdown of --out's last line and exit")
    ap.add_argument("--doc", type=Path, help="with --table: also write it between the markers of this file")
    args = ap.parse_args(argv)
    taus = args.taus or list(TAUS[args.rule])
    try:
        if args.table:
            text = table(read_jsonl(args.out, "ds1_af_rule_screen result file"), args.rule, args.to)
            print(text, end="")
            if args.doc:
                from interpatient_gate import write_doc

                mark = "ds1_af_rule_screen" + ("" if args.rule == "irreg" else f" {args.rule}") + (f" to {args.to}" if args.to else "")
                write_doc(args.doc, text, (f"<!-- {mark}: begin -->", f"<!-- {mark}: end -->"))
            return 0
        if len(args.workdirs) < 2 or not args.data_dir:
            print("error: need at least 2 seed-set workdirs and the data (--data-dir or ECGJAX_DATA_DIR)", file=sys.stderr)
            return 2
        sets = [pooled(w) for w in args.workdirs]
    except (DataError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from ecgjax.data.protocols import DS1
    from ecgjax.interpatient import S_RULES, rule_feature

    # the recipe's DS1 beats (same cache order as its training: the same protocol), with the rule's feature
    values_all, y_all, record_all = rule_feature(args.rule, DS1, args.data_dir)
    keys = ["none", *(f"{t:g}" for t in taus)]
    scores = {k: [] for k in keys}
    for logits, y, index, record in sets:
        if not np.array_equal(y_all[index], y):
            print("error: the workdirs' beat indices do not match the aami_rr DS1 beats; were they trained with another protocol?",
                  file=sys.stderr)
            return 2
        for k, tau in zip(keys, (None, *taus)):
            scores[k].append(rule_scores(logits, y, values_all[index], tau, args.rule, args.to))
    s_mask = y_all == 1
    suppressed = {}
    for t in taus:
        lost = s_mask & (values_all > t if S_RULES[args.rule] == ">" else values_all < t)
        recs, counts = np.unique(record_all[lost], return_counts=True)
        # stored by record (the line's keys are sorted); the table lists the largest first (most_counts)
        suppressed[f"{t:g}"] = {"share": 100.0 * lost.sum() / s_mask.sum(), "by_record": dict(zip(map(str, recs), map(int, counts)))}
    # the irregularity's cost where S beats come in runs (plock does not read the intervals: no such column)
    synthetic = {f"{t:g}": {str(f): synthetic_share(t, f) for f in SYNTHETIC_FRACTIONS} for t in taus} if args.rule == "irreg" else {}
    row = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "workdirs": [w.name for w in args.workdirs], "rule": args.rule, "to": args.to,
           "scores": scores, "s_suppressed": suppressed, "synthetic": synthetic,
           "command": "python experiments/ds1_af_rule_screen.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           "versions": environment_info().get("versions")}
    append_jsonl(args.out, [row])
    print(table([row], args.rule, args.to), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
