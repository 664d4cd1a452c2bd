"""The report's sections of the checks by wave: expert rules and the ground-truth regressions.

Rendered from ``StudyResult.wave_checks`` only (the summaries the stages
stored), like every other section of ``ecgjax.study.report``.
"""

from __future__ import annotations

import numpy as np

from ecgjax.report import Report


def _f(v, nd=3) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (float, int)) and np.isfinite(v) else "-"


def _ci(v, ci, nd=3) -> str:
    return f"{_f(v, nd)} [{_f(ci[0], nd)}, {_f(ci[1], nd)}]" if ci else _f(v, nd)


def _p(v) -> str:
    return "-" if not isinstance(v, (float, int)) or not np.isfinite(v) else (f"{v:.1e}" if v < 1e-3 else f"{v:.3f}")


def _verdict(ci) -> str:
    """Where a difference's CI lies relative to 0."""
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "-"
    return "above" if lo > 0 else ("below" if hi < 0 else "not different")


def add_ground_truth_section(rep: Report, gt: dict) -> None:
    """The ground-truth check (``ecgjax.study.groundtruth.ground_truth_check``'s summary) as one section."""
    from ecgjax.analysis import plotting

    spec = gt["spec"]
    sec = rep.section("Ground truth: regressing known quantities (Wagner et al.)")
    sec.text(f"A {spec['model']} ({spec['model_kwargs']}) with one output was trained per target on beats of "
             f"{len(spec['train_records'])} records and explained on beats of {len(spec['test_records'])} other records "
             f"(window {spec['before_s']} s before to {spec['after_s']} s after R, {spec['T']} samples; beats whose "
             f"delineation ({spec.get('delineation', 'dwt')}, lead 0) passed the quality flag). Targets: RR interval to the previous beat (defining segment: +-50 ms "
             "around both R peaks), QRS width (the QRS), R amplitude on lead 0 of the model's input (+-25 ms around the "
             "largest lead-0 value in the QRS, lead 0). Share: the mean over test beats of |attribution| in the defining "
             "segment over |attribution| on all real samples; brackets: 95% bootstrap CI over test records. Random map: "
             "the segment's fraction of the samples (the expected share of any map with exchangeable values); "
             "|x|-proportional: the share of a map equal to |x| (a method at that level follows the signal's amplitude, "
             "the bias Wagner et al. found, not the question the model answers).")
    filters = []
    if spec.get("normal_qrs_max_s") and spec.get("normal_qrs_symbols"):
        filters.append(f"beats annotated {'/'.join(spec['normal_qrs_symbols'])} (normal conduction) whose delineated QRS is wider "
                       f"than {1000 * spec['normal_qrs_max_s']:.0f} ms (the delineation contradicts the annotation)")
    if spec.get("width_outlier_mad"):
        filters.append(f"beats whose width lies more than {spec['width_outlier_mad']:g} robust SDs (1.4826 MAD, at least one "
                       "sample) from the median of their record and beat symbol")
    if spec.get("min_record_quality"):
        filters.append(f"the beats of records where fewer than {spec['min_record_quality']:.0%} of the beats pass the quality flag")
    if filters:
        q = gt["targets"].get("qrs_width", {})
        counts = (f" ({q['usable']} of {q['usable_unfiltered']} quality-passing beats kept)"
                  if "usable_unfiltered" in q else "")
        sec.text("QRS width only, left out as delineation errors no model of the beat can learn: " + "; ".join(filters) + counts + ".")

    def _n(r, k):
        return f"{r[k]} ({r[k + '_records']})" if k + "_records" in r else r[k]

    rows = [[t, r["unit"], _n(r, "n_train"), _n(r, "n_test"), _f(r.get("r2_train", float("nan"))), _f(r["r2_test"]),
             _f(r["mae_test"], 4), _f(r.get("mae_test_mean_predictor", float("nan")), 4), _f(r.get("sd_test", float("nan")), 4),
             r["train_s"]] for t, r in gt["targets"].items()]
    sec.table(["target", "unit", "train beats (records)", "test beats (records)", "R² train", "R² test", "MAE test",
               "MAE of the training mean", "SD test", "train s"], rows,
              caption="The regressors (R² near 1: the model learned the quantity, so its explanations can be checked; "
                      "R² is relative to the test beats' spread, SD test)")
    targets = list(gt["targets"])
    rows = []
    for i, d in enumerate(gt["ranking"], 1):
        cells = []
        for t in targets:
            s = gt["targets"][t]["methods"].get(d["method"], {})
            cells.append(_ci(s["share"], s["share_ci"], 2) if "share" in s else "-")
        rows.append([i, d["method"], _f(d["mean_rank"], 1), *cells])
    for label, key in (("random map (expected)", "random"), ("abs(x)-proportional map", "amplitude")):
        ref = [next((s[key] for s in gt["targets"][t]["methods"].values() if key in s), float("nan")) for t in targets]
        rows.append(["", label, "", *[_f(v, 2) for v in ref]])
    sec.table(["rank", "method", "mean rank", *[f"share: {t}" for t in targets]], rows,
              caption="Methods ranked by their mean rank over the targets (rank 1: the largest share in the defining segment)")
    rows = []
    for t in targets:
        for m, s in gt["targets"][t]["methods"].items():
            if "share" not in s:
                rows.append([t, m, f"not applicable: {s['skipped']}", "", "", "", ""])
                continue
            rows.append([t, m, _ci(s["share"], s["share_ci"]), _ci(s["vs_random"], s["vs_random_ci"]), _verdict(s["vs_random_ci"]),
                         _ci(s["vs_amplitude"], s["vs_amplitude_ci"]), _verdict(s["vs_amplitude_ci"])])
    sec.table(["target", "method", "share [CI]", "share - random [CI]", "vs random", "share - abs(x) share [CI]", "vs abs(x)"], rows,
              caption="Per target and method: the share against the random and the abs(x)-proportional levels (paired per beat)")
    sec.figure(plotting.plot_ground_truth_shares(gt["targets"], title="Share of |attribution| in the defining segment"),
               "Ground truth: each method's share per target (bars, 95% CI over records); dashed: random map, dotted: |x|.",
               name="ground-truth-shares")


def add_expert_rules_section(rep: Report, er: dict) -> None:
    """The expert-rule checks (``ecgjax.study.expert_rules.expert_rule_check``'s summary) as one section."""
    sec = rep.section(f"Expert rules: relevance in the defining wave ({er.get('run', '')})")
    if "skipped" in er:
        sec.text(f"Not checked: {er['skipped']}.")
        return
    rules = ", ".join(f"{c}: {w}" for c, w in er["classes"].items())
    sec.text(f"Each class with a rule ({rules or 'none among these classes'}) is checked on its explained test beats whose "
             f"delineation ({er.get('delineation', 'dwt')}, lead 0) passed the quality flag. Share: |attribution| in the wave over |attribution| "
             "on all real samples of the waveform leads, mean over beats [95% bootstrap CI over records]; uniform: the "
             "wave's share of the samples; |x|: the share of an |x|-proportional map. Enrichment: share / uniform (1: no "
             "preference), against the mean enrichment of the four other waves (P, PR, QRS, ST, T); p: two-sided Wilcoxon "
             "signed-rank test on the per-record means of (enrichment of the wave - mean of the others); '-' with fewer "
             "than 5 records." + (" RR share: |attribution| on the RR-feature channels over all |attribution|."
                                  if er.get("rr_features") else ""))
    if er.get("quality"):
        sec.text("Beats used (quality flag passed / explained): " +
                 ", ".join(f"{c} {u}/{n}" for c, (u, n) in er["quality"].items()) + ".")
    rows = []
    for key, by_class in er["methods"].items():
        for c, s in by_class.items():
            row = [key, c, s["wave"], f"{s['n']} ({s['n_records']})", _ci(s["share"], s["share_ci"]), _f(s["uniform"]), _f(s["amplitude"]),
                   _ci(s["enrichment"], s["enrichment_ci"], 2), _f(s["enrichment_others"], 2), f"{_p(s['p'])} ({s['p_records']})"]
            if er.get("rr_features"):
                row.append(_ci(s["rr_share"], s["rr_share_ci"]))
            rows.append(row)
    head = ["method", "class", "wave", "beats (records)", "share [CI]", "uniform", "abs(x)", "enrichment [CI]", "others", "p (records)"]
    if er.get("rr_features"):
        head.append("RR share [CI]")
    if rows:
        sec.table(head, rows, caption="Relevance in the wave that defines each class, per method")
    else:
        sec.text("No explained beat of a class with a rule passed the delineation's quality flag.")
    width_rows = [[c, er["classes"][c], r, str(n), _f(w, 0)] for c, recs in er.get("by_record", {}).items()
                  for r, (n, w) in recs.items()]
    if width_rows:
        sec.table(["class", "wave", "record", "beats used", "median width of the wave, ms"], width_rows,
                  caption="The beats used per record and the width the delineation gives their defining wave")


def ground_truth_markdown(gt: dict) -> str:
    """The ground-truth section alone as Markdown (``experiments/ground_truth.py``; figures left out)."""
    rep = Report("Ground-truth check")
    add_ground_truth_section(rep, gt)
    return rep.to_markdown()


def add_wave_sections(rep: Report, wave_checks: dict) -> None:
    """Both sections, for the checks that ran."""
    if wave_checks.get("expert_rules") is not None:
        add_expert_rules_section(rep, wave_checks["expert_rules"])
    if wave_checks.get("ground_truth") is not None:
        add_ground_truth_section(rep, wave_checks["ground_truth"])
