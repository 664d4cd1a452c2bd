"""Delineation methods on whole MIT-BIH records: the quality flag's pass rate and the QRS widths they give, per beat class.

One JSON line per record and method to ``--out``: beats, seconds of delineating lead 0 (``dwt``: read from the
project's cache when there, then not timed: ``seconds`` null), the share of beats passing
``ecgjax.data.delineation.quality`` (all beats, and V beats), the median QRS width (QRS_off - QRS_on) of the
passing N and V beats, and ``by_class``: per MIT-BIH beat symbol, the beats, the share passing and the median QRS
width of the passing ones. ``envelope`` is the project's default (``delineation.delineate``, called directly on
every beat annotation, timed); ``dwt`` is neurokit2's wavelet method through ``load_waves`` (cached).
``prominence`` (Emrich et al. 2023) is not one of ``delineation.METHODS``: it is called here directly, the same
way (``nk.ecg_clean`` then ``nk.ecg_delineate`` at the annotated R peaks), on the beats at least 1 s from the
record's ends (it returns fewer values for beats at the edges). Its "QRS" bounds are the R wave's base from
``scipy.signal.peak_prominences`` within ``max_r_basepoint_interval`` (100 ms by default), so its widths cannot
exceed 100 ms: a pass rate, not a QRS delineation. Needs the MIT-BIH records.

  python benchmarks/delineation_methods.py --records 100,103,105 --out benchmarks/results/cpu_delineation_methods.jsonl
  python benchmarks/delineation_methods.py --summary benchmarks/results/cpu_delineation_methods.jsonl   # the Markdown tables
  python benchmarks/delineation_methods.py --render benchmarks/results/cpu_delineation_methods.jsonl docs/results.md

``--closed-form`` needs no data: each method on the beats of ``ecgjax.data.closed_form.CASES``, whose six
boundaries are known by construction (the reference that stands in for expert-marked boundaries, which are not
available offline). One row per method and case: the inner beats' share passing the quality flag, P waves found
where planted and where not, per boundary the median error and the largest |error| (ms, measured - planted), and
per wave (P, PR, QRS, ST, T) the median over beats of the intersection over union of the measured and planted
spans (``analysis.waves.wave_masks`` on 1 s windows centred on R).

  python benchmarks/delineation_methods.py --closed-form --methods envelope,dwt --out benchmarks/results/cpu_delineation_closed_form.jsonl
  python benchmarks/delineation_methods.py --render-closed-form benchmarks/results/cpu_delineation_closed_form.jsonl docs/results.md
"""

from __future__ import annotations

import argparse
import time
import warnings

import _common as C


#: beat symbols of the per-class table, in its column order
CLASS_COLUMNS = ("N", "L", "R", "V", "A", "F")
BEGIN, END = "<!-- delineation-methods:begin -->", "<!-- delineation-methods:end -->"
CF_BEGIN, CF_END = "<!-- delineation-closed-form:begin -->", "<!-- delineation-closed-form:end -->"


def _latest(path: str, key: tuple[str, ...] = ("method", "record")) -> dict:
    """{(the row's values of ``key``): the latest such row} of ``path``."""
    import json

    last = {}
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            last[tuple(r[k] for k in key)] = r
    return last


def summary(path: str) -> str:
    """Markdown tables per method over the records of ``path`` (the latest row per record and method): the pass
    rates, then per beat class (rows that have ``by_class``) the median over records with at least 10 beats of the
    class of its share passing and of its passing beats' median QRS width."""
    import statistics as st

    last = _latest(path)
    out = ["| method | records | median share passing (min-max) | records with >= 50% passing | median share of V beats passing "
           "| median over records of the N beats' median QRS, ms (min-max) | median s per record |", "|---|---|---|---|---|---|---|"]
    methods = sorted({k[0] for k in last})
    for m in methods:
        rs = [r for k, r in last.items() if k[0] == m]
        q = [r["quality_share"] for r in rs]
        v = [r["quality_share_V"] for r in rs if r["quality_share_V"] is not None]
        n = [r["qrs_ms_median_N"] for r in rs if r["qrs_ms_median_N"] is not None]
        sec = [r["seconds"] for r in rs if r["seconds"] is not None]
        out.append(f"| {m.replace('delineation_', '')} | {len(rs)} | {st.median(q):.2f} ({min(q):.2f}-{max(q):.2f}) | "
                   f"{sum(x >= 0.5 for x in q)} | {st.median(v):.2f} | {st.median(n):.0f} ({min(n):.0f}-{max(n):.0f}) | "
                   + (f"{st.median(sec):.1f}" if sec else "not timed (cached)") + " |")
    per = [m for m in methods if any("by_class" in r for k, r in last.items() if k[0] == m)]
    if per:
        out += ["", "| method | " + " | ".join(CLASS_COLUMNS) + " |", "|---|" + "---|" * len(CLASS_COLUMNS)]
        for m in per:
            cells = []
            for c in CLASS_COLUMNS:
                cs = [r["by_class"][c] for k, r in last.items() if k[0] == m and c in r.get("by_class", {})
                      and r["by_class"][c]["beats"] >= 10]
                w = [x["qrs_ms_median"] for x in cs if x["qrs_ms_median"] is not None]
                cells.append("-" if not cs else f"{st.median(x['passing'] for x in cs):.2f} / "
                             + (f"{st.median(w):.0f}" if w else "-") + f" ({len(cs)})")
            out.append(f"| {m.replace('delineation_', '')} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def render(path: str) -> str:
    """The docs section (between ``BEGIN`` and ``END``): the command of the rows, versions, and the tables."""
    last = _latest(path)
    rows = list(last.values())
    cmds = sorted({r["command"] for r in rows})
    vers = sorted({f"neurokit2 {r.get('neurokit2')}, numpy {r.get('numpy', '?')}, scipy {r.get('scipy', '?')}, python {r.get('python')}"
                   for r in rows})
    dev = sorted({f"{r.get('device')} ({r.get('host_cpus')} CPUs, host {r.get('host')})" for r in rows})
    return "\n".join([
        BEGIN, "", "<!-- generated by `python benchmarks/delineation_methods.py --render " + path + " docs/results.md`; do not edit by hand -->", "",
        "Commands (the latest row per record and method):", "", *[f"* `{c}`" for c in cmds], "",
        "Device: " + "; ".join(dev) + ". Versions: " + "; ".join(vers) + ".", "",
        summary(path), "",
        "Per class: the median over records with at least 10 beats of the class of the share of its beats passing the "
        "quality flag / the median QRS width (ms) of the passing ones (records counted in brackets); MIT-BIH symbols: "
        "N normal, L and R left and right bundle branch block, V premature ventricular, A atrial premature, F fusion. "
        "prominence's QRS is the R wave's base within 100 ms (module docstring): its widths are not QRS widths.",
        "", END])


def closed_form_row(method: str, case: str) -> dict:
    """The measures of one method on one case of ``closed_form.CASES`` (module docstring), without the environment."""
    import numpy as np

    from ecgjax.analysis.waves import wave_masks
    from ecgjax.data import closed_form
    from ecgjax.data.delineation import BOUNDS, WAVES, delineate, quality

    fs = 360.0
    x, r, truth = closed_form.closed_form_beats(**closed_form.CASES[case], fs=fs)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurokit2 warns about beats without a wave
        b = delineate(x, r, fs, method=method)
    seconds = time.perf_counter() - t0
    b, r, truth = b[1:-1], r[1:-1], truth[1:-1]  # the first and last beats lack a neighbour
    has_p, found = np.isfinite(truth[:, 0]), np.isfinite(b[:, :2]).all(1)
    err = closed_form.boundary_errors_ms(b, truth, fs)
    start = r - int(0.5 * fs)
    got, want = (wave_masks(v - start[:, None], int(fs)) for v in (b, truth))
    inter, union = (got & want).sum(2), (got | want).sum(2)

    def stat(fn, v):
        v = v[np.isfinite(v)]
        return round(float(fn(v)), 1) if len(v) else None

    return {"method": f"closed_form_{method}", "case": case, "beats": int(len(r)), "seconds": seconds,
            "quality_share": float(quality(b, r, fs).mean()), "p_planted": int(has_p.sum()),
            "p_found": int((found & has_p).sum()), "p_spurious": int((found & ~has_p).sum()),
            "error_ms_median": {k: stat(np.median, err[:, j]) for j, k in enumerate(BOUNDS)},
            "error_ms_max_abs": {k: stat(np.max, np.abs(err[:, j])) for j, k in enumerate(BOUNDS)},
            "iou_median": {w: (round(float(np.median(inter[union[:, j] > 0, j] / union[union[:, j] > 0, j])), 2)
                               if (union[:, j] > 0).any() else None) for j, w in enumerate(WAVES)}}


def render_closed_form(path: str) -> str:
    """The docs section between ``CF_BEGIN`` and ``CF_END``: what the offline reference is, and its table."""
    from ecgjax.data import closed_form
    from ecgjax.data.delineation import BOUNDS, ENVELOPE, WAVES

    rows = list(_latest(path, ("method", "case")).values())
    cmds = sorted({r["command"] for r in rows})
    vers = sorted({f"neurokit2 {r.get('neurokit2')}, numpy {r.get('numpy')}, scipy {r.get('scipy')}, python {r.get('python')}" for r in rows})
    dev = sorted({f"{r.get('device')} ({r.get('host_cpus')} CPUs, host {r.get('host')})" for r in rows})

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    table = ["| method | case | beats | passing the quality flag | P found / planted (found, not planted) | "
             + " | ".join(BOUNDS) + " | IoU " + ", ".join(WAVES) + " |", "|---|---|---|---|---|" + "---|" * (len(BOUNDS) + 1)]
    order = list(closed_form.CASES)
    for r in sorted(rows, key=lambda r: (r["method"], order.index(r["case"]) if r["case"] in order else len(order))):
        errs = [f"{num(r['error_ms_median'][k], '+.1f')} ({num(r['error_ms_max_abs'][k], '.1f')})" for k in BOUNDS]
        table.append(f"| {r['method'].replace('closed_form_', '')} | {r['case']} | {r['beats']} | {r['quality_share']:.2f} | "
                     f"{r['p_found']} / {r['p_planted']} ({r['p_spurious']}) | " + " | ".join(errs) + " | "
                     + ", ".join(num(r["iou_median"][w], ".2f") for w in WAVES) + " |")
    inset_p = closed_form.hann_edge_inset_ms(closed_form.P_BEFORE_MS[0] - closed_form.P_BEFORE_MS[1], ENVELOPE["beta"])
    inset_t = closed_form.hann_edge_inset_ms(closed_form.T_AFTER_MS[1] - closed_form.T_AFTER_MS[0], ENVELOPE["beta"])
    return "\n".join([
        CF_BEGIN, "", "<!-- generated by `python benchmarks/delineation_methods.py --render-closed-form " + path
        + " docs/results.md`; do not edit by hand -->", "",
        "**No expert-marked wave boundaries are available offline.** The project's data folder holds MIT-BIH (beat "
        "annotations only: no P, QRS or T boundaries) and the noise stress test's nstdb; the QT database and LUDB, the "
        "usual references for a delineator, are not in it, and this machine reaches only package registries. So the "
        "delineator is not validated against a cardiologist's boundaries. What stands in for them: beats whose six "
        "boundaries are known by construction (`ecgjax.data.closed_form`: a piecewise-linear QRS of exact support "
        f"[R - W/2, R + W/2], a Hann P wave {closed_form.P_BEFORE_MS[0]:.0f}-{closed_form.P_BEFORE_MS[1]:.0f} ms before "
        f"the QRS onset or none, a Hann T wave {closed_form.T_AFTER_MS[0]:.0f}-{closed_form.T_AFTER_MS[1]:.0f} ms after "
        "its offset, upright or discordant, noise and baseline wander), so all five waves P, PR, QRS, ST and T are "
        "checked, not only the QRS width. `tests/data/test_delineation.py` asserts, per case, every inner beat passing "
        "the quality flag, P found exactly on the beats that have one, each boundary's median |error| within 20 ms (P), "
        "8 / 16 ms (QRS onset / offset) and 35 ms (T) (every beat within 10 ms more), the P and T edges at the inset "
        f"the method's threshold predicts on a Hann wave (within 5 ms: {inset_p:.1f} ms for P, {inset_t:.1f} ms for T, "
        "`closed_form.hann_edge_inset_ms`), and each wave's intersection over union with its planted span at least "
        "0.6 (QRS 0.75); on real records it asserts only physiology (record 100's waves in their normal ranges; V, L "
        "and R beats of records 119, 109 and 118 at least 30 ms wider than N beats).", "",
        "Commands (the latest row per method and case):", "", *[f"* `{c}`" for c in cmds], "",
        "Device: " + "; ".join(dev) + ". Versions: " + "; ".join(vers) + ".", "",
        *table, "",
        "Inner beats of each case (the first and last are left out). Per boundary: the median error, measured minus "
        "planted, ms (positive: later), and in brackets the largest |error|; '-' where none was found or none was "
        "planted. IoU: per wave, the median over beats of the intersection over union of the measured and the planted "
        "span. In the bigeminy each N beat's planted T wave ends 325 ms after R, past the end of the envelope method's "
        f"T search ({ENVELOPE['t_end_rr']:.0%} of the 0.5 s to the premature beat): its T offset is measured at that "
        "cut, which the T_off column's largest error shows. Not covered by this reference: notched, fused, biphasic "
        "or low-amplitude real waves, flutter and fibrillation waves, U waves, and how far a cardiologist's marks "
        "would differ from these planted edges.", "", CF_END])


def main(argv=None):
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--summary"]:
        print(summary(argv[1]))
        return
    renders = {"--render": (render, BEGIN, END), "--render-closed-form": (render_closed_form, CF_BEGIN, CF_END)}
    if argv[:1] and argv[0] in renders:
        from pathlib import Path

        from ecgjax.io import atomic_write_text, replace_section

        fn, begin, end = renders[argv[0]]
        if len(argv) != 3:
            raise SystemExit(f"usage: delineation_methods.py {argv[0]} RESULTS.jsonl DOCS.md")
        docs = Path(argv[2])
        atomic_write_text(docs, replace_section(docs.read_text(), fn(argv[1]), begin, end, where=str(docs)))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--records", default="100,103,105")
    p.add_argument("--methods", default="envelope,dwt,prominence")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--cache-dir", default=None, help="the beat cache holding the dwt delineation (default: $ECGJAX_CACHE_DIR)")
    p.add_argument("--closed-form", action="store_true", help="the closed-form cases (no data) instead of --records")
    p.add_argument("--note", default="")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    import numpy as np

    if args.closed_form:
        import neurokit2
        import scipy

        from ecgjax.data import closed_form
        from ecgjax.data.delineation import METHODS

        bad = [m for m in args.methods.split(",") if m not in METHODS]
        if bad:
            p.error(f"--closed-form runs the methods of ecgjax.data.delineation ({', '.join(METHODS)}), not {', '.join(bad)}")
        rows = []
        for method in args.methods.split(","):
            for case in closed_form.CASES:
                row = {**C.env_record(), "neurokit2": neurokit2.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
                       "model": None, **closed_form_row(method, case), "note": args.note}
                C.log(f"closed form {case!r} {method}: quality {row['quality_share']:.2f}, errors {row['error_ms_median']}")
                rows.append(row)
        C.append_jsonl(args.out, rows)
        return

    from ecgjax.data import load_beats, locate, protocols, wfdb_io
    from ecgjax.data.beats import BEAT_SYMBOLS
    from ecgjax.data.dataset import _order_leads
    from ecgjax.data.delineation import _NK_KEYS, delineate, load_waves, quality

    folder = locate.find_database("mitdb", args.data_dir, download=False)
    proto = protocols.get("aami")
    rows = []
    for rec_name in args.records.split(","):
        rec = wfdb_io.read_record(folder, rec_name, fs=float(proto.fs))
        sig, names = _order_leads(rec, proto.lead_order)
        keep = np.isin(rec.ann_symbols, list(BEAT_SYMBOLS))
        r, sym = rec.ann_samples[keep], rec.ann_symbols[keep]
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            if method == "envelope":  # the default method, on every beat annotation
                b, rr, ss = delineate(sig[:, 0], r, rec.fs, method="envelope"), r, sym
                seconds = time.perf_counter() - t0
            elif method == "dwt":  # neurokit2's wavelets through the project's path, cached
                beats = load_beats(protocols.get("aami", records=(rec_name,)), args.data_dir, cache=args.cache_dir)
                w = load_waves(beats, args.data_dir, cache=args.cache_dir, method="dwt", download=False)
                b, rr, ss = w.bounds + (beats.sample - beats.r)[:, None], beats.sample, beats.symbol
                seconds = None
            elif method == "prominence":
                import neurokit2 as nk

                inner = (r > rec.fs) & (r < len(sig) - rec.fs)
                rr, ss = r[inner], sym[inner]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clean = nk.ecg_clean(np.asarray(sig[:, 0], np.float64), sampling_rate=int(round(rec.fs)))
                    _, d = nk.ecg_delineate(clean, rpeaks=rr, sampling_rate=int(round(rec.fs)), method="prominence")
                b = np.stack([np.asarray(d[k], np.float64) for k in _NK_KEYS], 1)
                seconds = time.perf_counter() - t0
            else:
                raise SystemExit(f"delineation_methods: unknown method {method!r}; use envelope, dwt or prominence")
            q = quality(b, rr, rec.fs)
            width = (b[:, 3] - b[:, 2]) / rec.fs * 1000

            def med(k):
                return float(np.median(width[k])) if k.any() else None

            import neurokit2
            import scipy

            row = {**C.env_record(), "neurokit2": neurokit2.__version__, "numpy": np.__version__, "scipy": scipy.__version__, "method": f"delineation_{method}", "model": None, "record": rec_name, "lead": names[0],
                   "beats": int(len(rr)), "seconds": seconds, "quality_share": float(q.mean()),
                   "quality_share_V": float(q[ss == "V"].mean()) if (ss == "V").any() else None,
                   "qrs_ms_median_N": med(q & (ss == "N")), "qrs_ms_median_V": med(q & (ss == "V")),
                   "by_class": {str(c): {"beats": int((ss == c).sum()), "passing": float(q[ss == c].mean()), "qrs_ms_median": med(q & (ss == c))}
                                for c in np.unique(ss)}, "note": args.note}
            C.log(f"record {rec_name} {method}: quality {row['quality_share']:.2f}, QRS N {row['qrs_ms_median_N']} ms")
            rows.append(row)
    C.append_jsonl(args.out, rows)


if __name__ == "__main__":
    main()
