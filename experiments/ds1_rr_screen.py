"""Which RR reference to normalise by, chosen inside DS1 only: a leave-one-record-out logistic-regression screen.

Command::

    python experiments/ds1_rr_screen.py [CANDIDATE ...] [--out benchmarks/results/ds1_rr_screen.jsonl]
    python experiments/ds1_rr_screen.py --table   # the markdown table of docs/results.md from that file

The ``*_norm`` RR features divide a beat's intervals by a per-record reference
(``ecgjax.data.rr``). Each candidate reference (and whether the raw intervals in
seconds are added) is scored by the same cheap model, a class-weighted
multinomial logistic regression on the log RR features (the ``*_norm`` ones
plus the five heart-rate-free log ratios of ``ecgjax.models.rr_net.RATIOS``;
loss weights ``(n / (5 n_c)) ** 0.5`` as in ``experiments/configs/aami_rr.py``),
trained on 21 DS1 records and scored on the 22nd, for each of the 22 DS1
records (features standardised on the training records). **No DS2 record is
read.** Scores, pooled over the out-of-record predictions: the average
precision of S and of V (threshold-free), Se / +P / F1 of S and V at the
argmax, and S at the S logit offset (grid -4..4, step 0.25) with the best
pooled S F1 (an optimistic number, the same rule for every candidate).

Candidates (the reference is causal: past beats and this one):
``mean`` the running mean of every RR so far (the previous recipe),
``median<k>`` the running median of the last k RR, ``median300s`` the median of the
last 300 s, ``robust`` the mean of the last 32 RR accepted as within 0.8-1.2x
the reference before them, ``mean+median64`` both sets of ``*_norm``, and
``<ref>+raw`` adding the log of the raw pre, post, local and long intervals, and
reference-free local columns (``LOCAL``, from ``ecgjax.data.rr``'s ``prev``,
``lmin``, ``lmax``): ``+prev`` log(pre / previous pre), ``+spread``
log(longest / shortest of the 10 intervals before the beat), ``+pmin``
log(pre / that shortest); ``prev+spread+pmin`` has no running reference at all;
``+irreg`` the log of ``ecgjax.data.rr``'s ``irreg`` (the median ratio of successive
intervals among those 10: the rhythm's irregularity, robust to isolated ectopic beats).
One JSON line per candidate in ``--out`` (with versions and the command).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"  # the repo's result files, from any folder

CANDIDATES = ("mean", "mean+raw", "median32", "median64", "median64+raw", "median128", "median300s", "robust",
              "mean+median64", "upper75", "upper90", "median32+prev", "median32+prev+spread", "median32+prev+spread+pmin",
              "upper90+prev+spread+pmin", "prev+spread+pmin", "median32+pmin", "median32+prev+pmin", "median32+spread",
              "median32+irreg", "median32+spread+irreg", "median32+prev+spread+pmin+irreg")
# Reference-free local columns a candidate may add (log ratios of ecgjax.data.rr's prev, lmin, lmax; past beats only):
# prematurity against the previous interval, the spread of the last 10 intervals, pre against their shortest.
LOCAL = {"prev": ("pre", "prev"), "spread": ("lmax", "lmin"), "pmin": ("pre", "lmin")}
# Columns a candidate may add that are already ratios (their own log): the rhythm's irregularity.
OWN = ("irreg",)
# The log intervals (and ratios) of a record's ``raw`` array, in its column order.
RAW = ("pre", "post", "local", "long", "prev", "lmin", "lmax", "irreg")
# Synthetic ectopic-dominant rhythms (``ecgjax.data.rhythm.synthetic_record``): the fractions of S beats tried.
SYNTHETIC_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.85)


def references(t: np.ndarray, pre: np.ndarray) -> dict[str, np.ndarray]:
    """Every candidate reference of one record's beats: f64[K] each."""
    from ecgjax.data.rr import running_median

    k = np.arange(1, len(pre) + 1)
    ref = {"mean": np.cumsum(pre) / k}
    for n in (32, 64, 128):
        ref[f"median{n}"] = running_median(pre, n)
    i0 = np.searchsorted(t, t - 300.0)
    ref["median300s"] = np.array([np.median(pre[a : b + 1]) for a, b in zip(i0, range(len(pre)))])
    robust, buf = np.empty(len(pre)), [pre[0]]
    for i, p in enumerate(pre):
        if 0.8 <= p / np.mean(buf[-32:]) <= 1.2:
            buf.append(p)
        robust[i] = np.mean(buf[-32:])
    ref["robust"] = robust
    # upper quantiles of the last 32 RR: premature beats only shorten intervals, so while fewer than
    # 25% (10%) of the last 32 beats are sinus-length the quantile stays on the sinus cycle
    win = np.lib.stride_tricks.sliding_window_view(np.concatenate([np.full(31, np.nan), pre]), 32)
    for q in (75, 90):
        ref[f"upper{q}"] = np.nanpercentile(win, q, axis=1)
    return ref


def synthetic_features(t: np.ndarray):
    """Like ``record_features`` for synthetic beat times (every beat kept): (raw log f64[K, 8], {reference: log f64[K]})."""
    from ecgjax.data.rr import FEATURES, beat_features

    f = beat_features(t).astype(np.float64)[:, [FEATURES.index(n) for n in RAW]]
    log = lambda v: np.log(np.clip(v, 0.05, 20.0))  # noqa: E731
    return log(f), {k: log(v) for k, v in references(t, f[:, 0]).items()}


def record_features(data_dir: str, rec: str):
    """(raw log intervals f64[N, 8] (``RAW``), {reference: log f64[N]}, labels i64[N]) of one record's kept aami beats."""
    import wfdb

    from ecgjax.data.beats import BEAT_SYMBOLS
    from ecgjax.data.protocols import get
    from ecgjax.data.rr import FEATURES, beat_features

    proto = get("aami")
    smap = dict(proto.symbol_map)
    ann = wfdb.rdann(f"{data_dir}/mitdb/{rec}", "atr")
    sym = np.asarray(ann.symbol)
    is_beat = np.isin(sym, list(BEAT_SYMBOLS))
    t = np.asarray(ann.sample)[is_beat] / 360.0
    f = beat_features(t).astype(np.float64)[:, [FEATURES.index(n) for n in RAW]]  # pre, post, local, long, prev, lmin, lmax (s), irreg
    keep = np.array([s in smap for s in sym[is_beat]])
    y = np.array([proto.classes.index(smap[s]) for s in sym[is_beat][keep]])
    log = lambda v: np.log(np.clip(v, 0.05, 20.0))  # noqa: E731 (rr_net's clip)
    return log(f[keep]), {k: log(v[keep]) for k, v in references(t, f[:, 0]).items()}, y


def design(raw: np.ndarray, refs: dict, candidate: str) -> np.ndarray:
    """f64[N, D]: the candidate's log features."""
    col = dict(zip(RAW, raw.T))
    pre, post, local, long = (col[n] for n in RAW[:4])
    cols = [pre - local, post - pre, pre - long, local - long, post - local]  # rr_net.RATIOS
    parts = candidate.split("+")
    for ref in (p for p in parts if p != "raw" and p not in LOCAL and p not in OWN):
        cols += [c - refs[ref] for c in (pre, post, local, long)]
    if "raw" in parts:
        cols += [pre, post, local, long]
    cols += [col[a] - col[b] for a, b in (LOCAL[p] for p in parts if p in LOCAL)]
    cols += [col[p] for p in parts if p in OWN]
    return np.stack(cols, axis=1)


def _se_ppv_f1(y, pred, c):
    tp = np.sum((pred == c) & (y == c))
    return (float(tp / max(np.sum(y == c), 1)), float(tp / max(np.sum(pred == c), 1)),
            float(2 * tp / max(np.sum(pred == c) + np.sum(y == c), 1)))


def screen(candidate: str, data: dict, synthetic: dict | None = None) -> dict:
    """Leave-one-DS1-record-out scores of one candidate (module docstring); with ``synthetic``
    ({fraction: [(raw, refs, y), ...]}), also the S Se and the share of N beats called S on those rhythms of a
    model fitted on all DS1 records, at the argmax and at the pooled-DS1 best S offset."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    recs = sorted(data)
    x = {r: design(data[r][0], data[r][1], candidate) for r in recs}
    logits, ys = [], []
    for r in recs:
        xtr = np.concatenate([x[q] for q in recs if q != r])
        ytr = np.concatenate([data[q][2] for q in recs if q != r])
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
        w = (len(ytr) / (5 * np.maximum(np.bincount(ytr, minlength=5), 1))) ** 0.5
        clf = LogisticRegression(max_iter=300, C=1.0).fit((xtr - mu) / sd, ytr, sample_weight=w[ytr])
        z = np.full((len(x[r]), 5), -30.0)
        z[:, clf.classes_] = clf.decision_function((x[r] - mu) / sd)
        logits.append(z)
        ys.append(data[r][2])
    z, y = np.concatenate(logits), np.concatenate(ys)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    pred = z.argmax(1)
    best = max((_se_ppv_f1(y, (z + np.eye(5)[1] * b).argmax(1), 1)[2], float(b)) for b in np.arange(-4, 4.01, 0.25))
    s_best = _se_ppv_f1(y, (z + np.eye(5)[1] * best[1]).argmax(1), 1)
    syn = {}
    if synthetic:
        xtr, ytr = np.concatenate([x[q] for q in recs]), np.concatenate([data[q][2] for q in recs])
        mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
        w = (len(ytr) / (5 * np.maximum(np.bincount(ytr, minlength=5), 1))) ** 0.5
        clf = LogisticRegression(max_iter=300, C=1.0).fit((xtr - mu) / sd, ytr, sample_weight=w[ytr])
        for frac, records in synthetic.items():
            zs = np.concatenate([clf.decision_function((design(r[0], r[1], candidate) - mu) / sd) for r in records])
            ys = np.concatenate([r[2] for r in records])
            z5 = np.full((len(ys), 5), -30.0)
            z5[:, clf.classes_] = zs
            row = {}
            for name, b in (("argmax", 0.0), ("best_offset", best[1])):
                ps = (z5 + np.eye(5)[1] * b).argmax(1)
                row[name] = {"S_se": float(np.mean(ps[ys == 1] == 1)), "N_called_S": float(np.mean(ps[ys == 0] == 1)),
                             "N_called_N": float(np.mean(ps[ys == 0] == 0))}
            syn[str(frac)] = row
    return {"synthetic": syn, "candidate": candidate, "ap_S": float(average_precision_score(y == 1, p[:, 1])),
            "ap_V": float(average_precision_score(y == 2, p[:, 2])),
            "S_argmax": dict(zip(("se", "ppv", "f1"), _se_ppv_f1(y, pred, 1))),
            "V_argmax": dict(zip(("se", "ppv", "f1"), _se_ppv_f1(y, pred, 2))),
            "S_best_offset": {"offset": best[1], **dict(zip(("se", "ppv", "f1"), s_best))},
            "n_beats": int(len(y)), "n_S": int(np.sum(y == 1)), "n_V": int(np.sum(y == 2))}


def table(rows: list[dict]) -> str:
    """Markdown: one row per candidate (the last line of each in the file), scores in %; with the synthetic
    rhythms' S Se at the candidate's DS1 best S offset (per S fraction) where the row has them."""
    last = {r["candidate"]: r for r in rows}
    fracs = sorted({f for r in last.values() for f in r.get("synthetic", {})}, key=float)
    out = ["| reference | AP S | AP V | S Se / +P / F1 (argmax) | V Se / +P / F1 (argmax) | S Se / +P / F1 (best pooled S offset) |"
           + "".join(f" synthetic, {100 * float(f):.0f}% S: S Se |" for f in fracs),
           "|---|---|---|---|---|---|" + "---|" * len(fracs)]
    f = lambda d: f"{100 * d['se']:.1f} / {100 * d['ppv']:.1f} / {100 * d['f1']:.1f}"  # noqa: E731
    for c, r in last.items():
        syn = r.get("synthetic", {})
        out.append(f"| {c} | {100 * r['ap_S']:.1f} | {100 * r['ap_V']:.1f} | {f(r['S_argmax'])} | {f(r['V_argmax'])} | "
                   f"{f(r['S_best_offset'])} (offset {r['S_best_offset']['offset']:+.2f}) |"
                   + "".join(f" {100 * syn[k]['best_offset']['S_se']:.1f} |" if k in syn else " |" for k in fracs))
    return "\n".join(out)


def main(argv=None) -> int:
    import os

    from ecgjax.data.rhythm import synthetic_record

    from ecgjax.data.protocols import DS1
    from ecgjax.errors import DataNotFoundError
    from ecgjax.io import append_jsonl, environment_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--out", type=Path, default=RESULTS / "ds1_rr_screen.jsonl")
    ap.add_argument("--data-dir", default=os.environ.get("ECGJAX_DATA_DIR"))
    ap.add_argument("--table", action="store_true", help="print the markdown table of --out and exit")
    ap.add_argument("--synthetic", type=int, default=0, metavar="N",
                    help="also score N synthetic ectopic-dominant rhythms per S fraction (synthetic_record)")
    args = ap.parse_args(argv)
    if args.table:
        from ecgjax.errors import DataError
        from ecgjax.io import read_jsonl

        try:
            print(table(read_jsonl(args.out, "ds1_rr_screen result file")))
        except (DataError, KeyError) as e:  # KeyError: rows of another file
            print(f"error: {args.out}: not a readable ds1_rr_screen result file ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
        return 0
    bad = [c for c in args.candidates if c not in CANDIDATES]
    if bad or not args.data_dir:
        print(f"error: unknown candidate(s) {bad}; use {list(CANDIDATES)}" if bad
              else "error: no data: pass --data-dir or set ECGJAX_DATA_DIR (the folder holding mitdb/)", file=sys.stderr)
        return 2
    from ecgjax.data.locate import find_database

    try:
        mitdb = find_database("mitdb", args.data_dir, download=False)
    except DataNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    data = {str(r): record_features(mitdb.parent, str(r)) for r in DS1}
    synthetic = None
    if args.synthetic:
        rng = np.random.default_rng(0)
        synthetic = {f: [(*synthetic_features(t), y) for t, y in (synthetic_record(rng, f) for _ in range(args.synthetic))]
                     for f in SYNTHETIC_FRACTIONS}
    env = environment_info()
    for c in args.candidates:
        t0 = time.time()
        row = {**screen(c, data, synthetic), "wall_s": time.time() - t0, "command": "python experiments/ds1_rr_screen.py " + " ".join(args.candidates)
               + (f" --synthetic {args.synthetic}" if args.synthetic else ""),
               "versions": env.get("versions")}
        append_jsonl(args.out, [row])
        s, v, b = row["S_argmax"], row["V_argmax"], row["S_best_offset"]
        for frac, r in row["synthetic"].items():
            print(f"  synthetic S fraction {frac}: " + "; ".join(f"{k} S Se {100 * v['S_se']:.1f}, N called S {100 * v['N_called_S']:.1f}"
                                                             for k, v in r.items()), flush=True)
        print(f"{c:14s} AP S {row['ap_S']:.3f} V {row['ap_V']:.3f} | argmax S {100 * s['se']:.1f}/{100 * s['ppv']:.1f}/"
              f"{100 * s['f1']:.1f} V {100 * v['se']:.1f}/{100 * v['ppv']:.1f}/{100 * v['f1']:.1f} | best S offset "
              f"{b['offset']:+.2f}: {100 * b['se']:.1f}/{100 * b['ppv']:.1f}/{100 * b['f1']:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
