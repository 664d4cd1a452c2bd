"""Is a recipe change better than a reseed? Two inter-patient recipes compared on DS1 only, over several seed sets.

Command::

    python experiments/interpatient_gate.py --label irreg \\
        --base runs/cv_both runs/cv_both_seedbase5 runs/cv_both_seedbase10 \\
        --new runs/cv_both_irreg runs/cv_both_irreg_seedbase5 runs/cv_both_irreg_seedbase10
    python experiments/interpatient_gate.py --table [--doc docs/results.md]
    python experiments/interpatient_gate.py --table --only LABEL ... [--ds2 ...] --doc docs/results.md --block NAME

Each workdir is one seed set of ``experiments/aami_interpatient.py ... --ds1-only`` (seeds ``B..B+4`` on
the same 5 DS1 folds); its ``ds1_cv.json`` holds the pooled out-of-record DS1 scores (every DS1 beat
predicted once by a model that never trained on its record; no DS2 record read). Retraining one recipe
with other seeds moves those scores by as much as a recipe change (docs/results.md §3), so one seed set
per arm cannot decide; this compares the arms' means over their seed sets, with the spread between
seed sets as the noise; beside the scores, where the N beats called S are (per record, from each seed's
``predictions.npz`` at the seed set's offsets). The rule (``gate``): the new recipe's mean S F1 (at the DS1-CV offsets) beats
the base's by ``d >= --min-diff`` points and ``d >= --min-z`` standard errors (``se = sqrt(var_a / n_a
+ var_b / n_b)``, sample variances over seed sets), with a mean S average precision not lower and a mean V
average precision not lower by more than ``--max-v-drop`` points. When both arms have the same seed sets
(the same seeds, in the same order), the paired differences (new minus base, seed set by seed set, and
their standard error) are reported beside it: one seed trains both recipes' waveform branches from the
same initialisation and batch order, so their scores move together. With ``--paired`` the rule uses those
(the mean paired difference and its standard error, ``sd(differences) / sqrt(n)``) instead; it needs the same
seed sets in both arms. Appends one JSON line to ``--out``
(with versions and the command); ``--table`` prints the markdown of every line, then (``--ds2
results.json ...``) the AAMI table of the DS2 evaluations that a met rule let run, each with its goal line,
and (``--ds2-sets LABEL=results.json,...``) how those recipes' DS2 scores move between seed sets;
``--doc`` writes it between the ``<!-- interpatient_gate -->`` markers of that file. Bad input exits 2
with one line.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"  # the repo's result files, from any folder

# The per-seed-set scores compared, in %, from each workdir's ds1_cv.json: (name, class, path in the class's dict).
SCORES = (("S F1", "S", ("offsets", "f1")), ("S AP", "S", ("ap",)), ("S Se", "S", ("offsets", "se")),
          ("S +P", "S", ("offsets", "ppv")), ("V AP", "V", ("ap",)), ("V F1", "V", ("offsets", "f1")))
MARK_BEGIN, MARK_END = "<!-- interpatient_gate: begin -->", "<!-- interpatient_gate: end -->"


def seed_set_scores(workdir: Path) -> dict:
    """``{score name: value in %}`` of one seed set's pooled out-of-record DS1 predictions, plus its seeds."""
    from ecgjax.errors import DataError

    path = workdir / "ds1_cv.json"
    try:
        cv = json.loads(path.read_text())
        out = {}
        for name, c, keys in SCORES:
            v = cv[c]
            for k in keys:
                v = v[k]
            out[name] = 100.0 * float(v)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: not a finished DS1 cross-validation ({type(e).__name__}: {e}); run "
                        "experiments/aami_interpatient.py --ds1-only with that workdir first") from None
    from ecgjax.interpatient import workdir_seeds

    seeds = workdir_seeds(workdir)
    return {"workdir": workdir.name, "seeds": seeds, "n_records": len(cv.get("records", [])), **out,
            "n_called_s": false_s_by_record(workdir, seeds, list(cv["offsets"]), np.array(list(cv["offsets"].values())))}


def false_s_by_record(workdir: Path, seeds: list[int], classes: list[str], offsets: np.ndarray) -> dict[str, int]:
    """``{record: N beats called S}`` of the pooled out-of-record predictions at the seed set's offsets, most first
    (``ecgjax.interpatient.pooled_predictions``; logits f32[M, C] in ``classes`` order)."""
    from collections import Counter

    from ecgjax.errors import DataError
    from ecgjax.interpatient import pooled_predictions

    try:
        cv = pooled_predictions(workdir, seeds)
    except (OSError, KeyError, ValueError) as e:
        raise DataError(f"{workdir}: a seed's runs/seed*/predictions.npz is missing or damaged ({type(e).__name__}: {e})") from None
    called = (cv["y"] == classes.index("N")) & ((cv["logits"] + offsets).argmax(-1) == classes.index("S"))
    return dict(Counter(cv["record"][called].tolist()).most_common())


def gate(base: list[dict], new: list[dict], *, min_diff: float = 3.0, min_z: float = 2.0, max_v_drop: float = 2.0,
         paired: bool = False) -> dict:
    """The rule of the module docstring on per-seed-set scores (``seed_set_scores``; at least 2 per arm).

    Returns ``{"d": {score: new mean - base mean (with ``paired``: the mean paired difference)}, "se": {...}, "mean"/"sd": {"base"/"new": {...}},
    "paired": {"d", "se"} or None (the arms' seed sets differ), "passed": bool, "reasons": [the failed conditions]}``.
    """
    if len(base) < 2 or len(new) < 2:
        raise ValueError(f"need at least 2 seed sets per arm to measure the noise, got {len(base)} and {len(new)}")
    names = [n for n, *_ in SCORES]
    arr = {arm: np.array([[r[n] for n in names] for r in rows]) for arm, rows in (("base", base), ("new", new))}
    mean = {arm: dict(zip(names, a.mean(0).tolist())) for arm, a in arr.items()}
    sd = {arm: dict(zip(names, a.std(0, ddof=1).tolist())) for arm, a in arr.items()}
    d = {n: mean["new"][n] - mean["base"][n] for n in names}
    se = {n: float(np.sqrt(sd["base"][n] ** 2 / len(base) + sd["new"][n] ** 2 / len(new))) for n in names}
    paired_scores = None
    if [r["seeds"] for r in base] == [r["seeds"] for r in new]:
        diff = arr["new"] - arr["base"]
        paired_scores = {"d": dict(zip(names, diff.mean(0).tolist())),
                         "se": dict(zip(names, (diff.std(0, ddof=1) / np.sqrt(len(diff))).tolist()))}
    if paired:
        if paired_scores is None:
            raise ValueError("a paired rule needs the same seed sets (the same seeds, in order) in both arms")
        d, se = paired_scores["d"], paired_scores["se"]
    reasons = []
    if d["S F1"] < min_diff:
        reasons.append(f"S F1 {d['S F1']:+.1f} points < {min_diff:+.1f}")
    if d["S F1"] < min_z * se["S F1"]:
        reasons.append(f"S F1 {d['S F1']:+.1f} points < {min_z:g} se ({min_z * se['S F1']:.1f})")
    if d["S AP"] < 0:
        reasons.append(f"S AP {d['S AP']:+.1f} points < 0")
    if d["V AP"] < -max_v_drop:
        reasons.append(f"V AP {d['V AP']:+.1f} points < {-max_v_drop:+.1f}")
    return {"d": d, "se": se, "mean": mean, "sd": sd, "paired": paired_scores, "passed": not reasons, "reasons": reasons,
            "rule": {"min_diff": min_diff, "min_z": min_z, "max_v_drop": max_v_drop, "paired": paired}}


def table(rows: list[dict]) -> str:
    """Markdown of the gate lines: per comparison, each seed set, each arm's mean ± sd, the difference and the verdict."""
    from ecgjax import interpatient as ip

    names = [n for n, *_ in SCORES]
    out = []
    for row in rows:
        g, rule = row["gate"], row["gate"]["rule"]
        out += [f"**`{row['label']}`** ({row['when']}): `{row['command']}`", "",
                "| arm | seed set | " + " | ".join(names) + " | N beats called S: all (most in records) |", "|---" * (len(names) + 3) + "|"]
        for arm in ("base", "new"):
            for r in row[arm]:
                top = ip.most_counts(r["n_called_s"], 3)
                out.append(f"| {arm} | `{r['workdir']}` (seeds {r['seeds'][0]}-{r['seeds'][-1]}) | "
                           + " | ".join(f"{r[n]:.1f}" for n in names) + f" | {sum(r['n_called_s'].values())} ({top}) |")
            out.append(f"| {arm} | mean ± sd over {len(row[arm])} | "
                       + " | ".join(f"{g['mean'][arm][n]:.1f} ± {g['sd'][arm][n]:.1f}" for n in names) + " | |")
        is_paired = rule.get("paired", False)
        if not is_paired:
            out.append("| new - base | (se) | " + " | ".join(f"{g['d'][n]:+.1f} ({g['se'][n]:.1f})" for n in names) + " | |")
        if g.get("paired"):
            out.append(f"| new - base, paired by seed set{'' if is_paired else ' (not the rule)'} | (se) | "
                       + " | ".join(f"{g['paired']['d'][n]:+.1f} ({g['paired']['se'][n]:.1f})" for n in names) + " | |")
        verdict = "**met**" if g["passed"] else "**not met** (" + "; ".join(g["reasons"]) + ")"
        out += ["", f"Rule{' (paired by seed set)' if is_paired else ''}: S F1 +{rule['min_diff']:g} points and {rule['min_z']:g} se, "
                f"S AP not lower, V AP not lower by more than {rule['max_v_drop']:g} points: {verdict}.", ""]
    return "\n".join(out).rstrip() + "\n"


def ds2_text(paths: list[Path]) -> str:
    """The AAMI table of finished benchmarks' ``results.json`` (``ecgjax.interpatient.aami_table``) and each one's goal line."""
    from ecgjax import interpatient as ip
    from ecgjax.errors import DataError

    results = []
    for path in paths:
        try:
            results.append(json.loads(path.read_text()))
            results[-1]["ds2"]["summary"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}: not a finished inter-patient results.json ({type(e).__name__}: {e})") from None
    out = ["DS2 (each read once, after its decision on DS1; `python experiments/aami_interpatient.py --table "
           + " ".join(str(p) for p in paths) + "`):", "", ip.aami_table(*results), ""]
    for path, r in zip(paths, results):
        out += [f"**{r['name']}** against the goal (5-seed means: SVEB Se >= 80 and +P >= 55, VEB Se >= 92 and +P >= 92): "
                f"{ip.goal_line(r)}", ""]
    out += ["DS2 N beats called S and called V, and S beats missed (not called S), summed over the seeds (with the offsets), "
            "and the records holding most of them:", ""]
    for path, r in zip(paths, results):
        calls = ds2_false_calls(path.parent, r["seeds"], r["classes"])
        out.append(f"* {r['name']}: " + "; ".join(f"{'S missed' if c == 'S missed' else 'called ' + c}: {sum(n.values())} ("
                                                  + ip.most_counts(n, 4) + ")" for c, n in calls.items()))
    return "\n".join(out) + "\n"


def seed_sets_text(groups: dict[str, list[Path]]) -> str:
    """Per recipe, the DS2 scores of each seed set's ``results.json`` (5-seed means with the offsets, and the
    seed set's ensemble), then over every seed of all its sets (mean ± sd) and over its ensembles: how far a
    5-seed DS2 number of one recipe moves between seed sets."""
    from ecgjax.errors import DataError

    cols = [(c, m) for c in ("S", "V") for m in ("se", "ppv", "f1")]
    head = " | ".join(f"{'SVEB' if c == 'S' else 'VEB'} {dict(se='Se', ppv='+P', f1='F1')[m]}" for c, m in cols)
    out = [f"| recipe | seeds | {head} | ensemble: SVEB Se / +P | ensemble: VEB Se / +P |", "|---" * (len(cols) + 4) + "|"]
    f = lambda v: f"{100 * v:.1f}"  # noqa: E731
    for label, paths in groups.items():
        per_seed, ens = {k: [] for k in cols}, []
        for path in paths:
            try:
                r = json.loads(path.read_text())
                summ, e = r["ds2"]["summary"], r["ds2"]["ensemble"]["report"]["per_class"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise DataError(f"{path}: not a finished inter-patient results.json ({type(err).__name__}: {err})") from None
            for k in cols:
                per_seed[k] += summ[k[0]][k[1]]["values"]
            ens.append([e[c][m] for c in ("S", "V") for m in ("se", "ppv")])
            out.append(f"| {label} | {r['seeds'][0]}-{r['seeds'][-1]} | " + " | ".join(f(summ[c][m]["mean"]) for c, m in cols)
                       + f" | {f(ens[-1][0])} / {f(ens[-1][1])} | {f(ens[-1][2])} / {f(ens[-1][3])} |")
        ens_a = np.array(ens)
        ms = lambda v: f"{100 * np.mean(v):.1f} ± {100 * np.std(v, ddof=1):.1f}"  # noqa: E731
        out.append(f"| **{label}** | all {len(per_seed[cols[0]])} seeds, mean ± sd | " + " | ".join(ms(per_seed[k]) for k in cols)
                   + f" | {ms(ens_a[:, 0])} / {ms(ens_a[:, 1])} | {ms(ens_a[:, 2])} / {ms(ens_a[:, 3])} |")
    return "\n".join(out) + "\n"


def ds2_false_calls(workdir: Path, seeds: list[int], classes: list[str]) -> dict[str, dict[str, int]]:
    """``{"S": {record: N beats called S}, "V": {...}, "S missed": {record: S beats not called S}}`` over the seeds'
    ``ds2/seed<s>.npz`` (y_true, y_pred with the offsets, record), most first."""
    from collections import Counter

    from ecgjax.errors import DataError

    n, s_ = classes.index("N"), classes.index("S")
    counts = {c: Counter() for c in ("S", "V", "S missed")}
    for seed in seeds:
        path = workdir / "ds2" / f"seed{seed}.npz"
        try:
            with np.load(path, allow_pickle=False) as z:
                for c in ("S", "V"):
                    counts[c].update(z["record"][(z["y_true"] == n) & (z["y_pred"] == classes.index(c))].tolist())
                counts["S missed"].update(z["record"][(z["y_true"] == s_) & (z["y_pred"] != s_)].tolist())
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{path}: not a finished seed's DS2 predictions ({type(e).__name__}: {e})") from None
    return {c: dict(cnt.most_common()) for c, cnt in counts.items()}


def write_doc(doc: Path, text: str, marks: tuple[str, str] = (MARK_BEGIN, MARK_END)) -> None:
    """Replace what lies between the ``marks`` lines (begin, end) of ``doc`` with ``text`` (atomic)."""
    from ecgjax.errors import DataError
    from ecgjax.io import atomic_write_text

    begin, end = marks
    src = doc.read_text()
    if src.count(begin) != 1 or src.count(end) != 1 or src.index(begin) > src.index(end):
        raise DataError(f"{doc}: needs one {begin} and one {end} line, in that order")
    head, rest = src.split(begin)
    _, tail = rest.split(end)
    atomic_write_text(doc, f"{head}{begin}\n{text}{end}{tail}")


def main(argv=None) -> int:
    from ecgjax.errors import DataError
    from ecgjax.io import append_jsonl, environment_info, read_jsonl

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label", help="name of the comparison (e.g. the variant)")
    ap.add_argument("--base", nargs="+", type=Path, default=[], help="the base recipe's workdirs, one per seed set")
    ap.add_argument("--new", nargs="+", type=Path, default=[], help="the new recipe's workdirs, one per seed set")
    ap.add_argument("--min-diff", type=float, default=3.0)
    ap.add_argument("--min-z", type=float, default=2.0)
    ap.add_argument("--max-v-drop", type=float, default=2.0)
    ap.add_argument("--paired", action="store_true", help="the rule on the paired differences (same seed sets in both arms)")
    ap.add_argument("--out", type=Path, default=RESULTS / "interpatient_gates.jsonl")
    ap.add_argument("--table", action="store_true", help="print the markdown of --out and exit")
    ap.add_argument("--doc", type=Path, help="with --table: also write it between the markers of this file")
    ap.add_argument("--ds2", nargs="+", type=Path, default=[], help="with --table: results.json of DS2 evaluations to append")
    ap.add_argument("--ds2-sets", action="append", default=[], metavar="LABEL=RESULTS,...",
                    help="with --table: one recipe's seed sets on DS2 (results.json of each), compared across sets")
    ap.add_argument("--only", nargs="*", metavar="LABEL", help="with --table: only the gate lines of these labels (none: only --ds2 ...)")
    ap.add_argument("--block", help="with --doc: write between the <!-- interpatient_gate BLOCK: begin/end --> markers instead")
    args = ap.parse_args(argv)
    try:
        if args.table:
            rows = read_jsonl(args.out, "interpatient_gate result file")
            if args.only is not None:
                rows = [r for r in rows if r["label"] in args.only]
                missing = sorted(set(args.only) - {r["label"] for r in rows})
                if missing:
                    raise DataError(f"--only: no gate line labelled {missing[0]!r} in {args.out}")
            text = table(rows) if rows else ""
            if args.ds2:
                text += ("\n" if text else "") + ds2_text(args.ds2)
            if args.ds2_sets:
                groups = {}
                for spec in args.ds2_sets:
                    label, _, paths = spec.partition("=")
                    if not paths:
                        raise DataError(f"--ds2-sets {spec!r}: write LABEL=RESULTS.json,RESULTS.json,...")
                    groups[label] = [Path(q) for q in paths.split(",")]
                text += ("\nThe same recipes over more seed sets on DS2 (`--ds2-sets`; each row a seed set's 5 seeds, "
                         "with the offsets of its own DS1 cross-validation; read after the evaluations above, to measure how far "
                         "a 5-seed DS2 number moves between seed sets: nothing is chosen from it):\n\n" + seed_sets_text(groups))
            print(text, end="")
            if args.doc:
                write_doc(args.doc, text, (f"<!-- interpatient_gate {args.block}: begin -->", f"<!-- interpatient_gate {args.block}: end -->")
                          if args.block else (MARK_BEGIN, MARK_END))
            return 0
        if not args.label or len(args.base) < 2 or len(args.new) < 2:
            print("error: need --label and at least 2 seed-set workdirs for each of --base and --new", file=sys.stderr)
            return 2
        base, new = [seed_set_scores(w) for w in args.base], [seed_set_scores(w) for w in args.new]
    except (DataError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        g = gate(base, new, min_diff=args.min_diff, min_z=args.min_z, max_v_drop=args.max_v_drop, paired=args.paired)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import time

    row = {"label": args.label, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "base": base, "new": new, "gate": g,
           "command": "python experiments/interpatient_gate.py " + shlex.join(sys.argv[1:] if argv is None else argv),
           "versions": environment_info().get("versions")}
    append_jsonl(args.out, [row])
    print(table([row]), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
