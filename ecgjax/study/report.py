"""The study report: tables and figures rendered from a :class:`StudyResult` and nothing else."""

from __future__ import annotations

import numpy as np

from ecgjax.report import Report
from ecgjax.train.summary import MACRO_DEFINITIONS, headline_cells
from ecgjax.study.result import StudyResult

# Jones et al. (2020) Table 1 and the reference's reading of it (reference_pipeline.md §6-7).
PAPER = {
    ("jones2020_cnn", "holdout"): {"accuracy": 0.971, "macro_f1": 0.851, "macro_precision": 0.79, "macro_recall": 0.975},
    ("jones2020_lstm", "holdout"): {"macro_f1": 0.842},
    ("jones2020_cnn", "lpo"): {"macro_f1": "0.36-0.39"},
    ("jones2020_lstm", "lpo"): {"macro_f1": "0.36-0.39"},
}
# de Chazal et al. (2004) on DS2 (Se / +P in %), the inter-patient anchor.
DE_CHAZAL = {"S": {"se": 75.9, "ppv": 38.5}, "V": {"se": 77.7, "ppv": 81.9}}


def _fmt(v, nd=3) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (float, int)) and np.isfinite(v) else "-"


def _rate(pc: dict | None, m: str) -> str:
    """A per-class rate in %, or n/a with the reason when it is 0/0 (results.json stores those as 0)."""
    if pc is None:
        return "-"
    if m == "se" and pc["support"] == 0:
        return "n/a (no test beats)"
    if m == "ppv" and pc["predicted"] == 0:
        return "n/a (never predicted)"
    return _fmt(100 * pc[m], 1)


def _pct(v) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, (float, int)) and np.isfinite(v) else "-"


def _comparison_cells(c: dict, seg_labels) -> list:
    """n A, n B, segments with q < 0.05 (named), the segment with the largest |effect| and the effect there."""
    q = np.asarray(c["q"], float).ravel()
    eff = np.asarray(c["effect"], float).ravel()
    k = int(np.nanargmax(np.abs(eff))) if np.isfinite(eff).any() else -1
    sig = [seg_labels[i] for i in np.flatnonzero(np.nan_to_num(q, nan=1.0) < 0.05)]
    named = ", ".join(sig[:6]) + (f", ... (+{len(sig) - 6})" if len(sig) > 6 else "")
    return [int(np.max(c["n_a"])), int(np.max(c["n_b"])), f"{len(sig)}" + (f": {named}" if sig else ""),
            seg_labels[k] if k >= 0 else "-", _fmt(float(eff[k])) if k >= 0 else "-"]


def build_report(result: StudyResult) -> Report:
    """The study's report (HTML + Markdown) from its in-memory result; reads no files but the result's figures."""
    from ecgjax.analysis import plotting

    cfg, timings, environment = result.config, result.timings, result.environment
    rep = Report(cfg.name, meta={"study_config": result.config_json, "environment": environment, "stage_wall_s": timings})
    intro = rep.section("About this run")
    for n in cfg.notes:
        intro.text(n)
    from ecgjax.io import describe_device

    v = environment.get("versions", {})
    intro.text(f"Device: {describe_device(environment)}; jax {v.get('jax')}, flax {v.get('flax')}; "
               f"stage wall times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()) + ".")

    # ---- data ----
    sec = rep.section("Data")
    for key, s in result.data.items():
        classes = list(s["classes"])
        rows = [["all", *[s["classes"][c] for c in classes], s["total"]]]
        rows += [[part, *[d["classes"][c] for c in classes], d["total"]] for part, d in s["splits"].items()]
        sec.table(["part", *classes, "total"], rows,
                  caption=f"{key}: beats per class ({'patient-wise' if s['patient_wise'] else 'beat-level split: MIXES PATIENTS'})")

    results = {name: run.results for name, run in result.runs.items()}
    rows = []
    for name, res in results.items():
        sp, pc = res.get("split", {}), res["test"]["per_class"]
        cap = res["config"]["data"].get("max_beats")
        rows.append([name, cap or "none", sp.get("train", "-"), sp.get("train_balanced", "-"), sp.get("val", "-"), res["test"]["n"],
                     ", ".join(f"{c} {d['support']}" for c, d in pc.items() if d["support"])])
    sec.table(["run", "max beats per part", "train", "train after balancing", "validation", "test (scored)", "test per class"], rows,
              caption="Beats each run actually used (the tables above count the whole split; a cap samples from it)")

    # ---- classification ----
    sec = rep.section("Classification (Table 1)")
    sec.text("Macro F1 is reported under two definitions. 'sklearn' (the paper's): "
             f"{MACRO_DEFINITIONS['sklearn']}. 'present': {MACRO_DEFINITIONS['present']}, the honest number on splits "
             "that lack classes. Macro precision and recall use the paper's (sklearn) class set; macro specificity, as the "
             f"paper's code computed it, is {MACRO_DEFINITIONS['all']}. Accuracy and both macro F1s are the numbers "
             "`ecgjax summarize` prints for the same runs. Brackets: 95% bootstrap CI over test records (patients). "
             "'test beats' is the number of beats scored (fewer than the split's when a run caps beats per part).")
    rows = []
    for name, res in results.items():
        t, c = res["test"], res["config"]
        paper = PAPER.get((c["model"]["name"], c["data"]["split"]), {}) if c["data"]["protocol"].startswith("jones2020") else {}
        cells = headline_cells(t)
        rows.append([
            name, c["model"]["name"], f"{c['data']['protocol']}/{c['data']['split']}", res["epochs_run"], t["n"],
            cells["accuracy"], str(paper.get("accuracy", "-")), cells["macro F1 (sklearn)"], str(paper.get("macro_f1", "-")),
            cells["macro F1 (present)"], _fmt(t["macro"]["sklearn"]["precision"]), _fmt(t["macro"]["sklearn"]["recall"]),
            _fmt(t["macro"]["all"]["specificity"]), f"{res['wall_time_s']:.0f}",
        ])
    sec.table(["run", "model", "data/split", "epochs", "test beats", "accuracy", "paper accuracy", "macro F1 (sklearn)",
               "paper macro F1 (sklearn)", "macro F1 (present)", "macro P (sklearn)", "macro R = Se (sklearn)",
               "macro Spec (all)", "train s"], rows, caption="Table 1: test-set results beside the paper's")
    groups = cfg.run_groups()
    multi = {g: rs for g, rs in groups.items() if len(rs) > 1}
    if multi:
        rows = []
        for g, rs in multi.items():
            f1 = np.array([results[r.name]["test"]["macro"]["present"]["f1"] for r in rs])
            acc = np.array([results[r.name]["test"]["accuracy"] for r in rs])
            rows.append([g, len(rs), f"{acc.mean():.3f} ± {acc.std(ddof=1):.3f}", f"{f1.mean():.3f} ± {f1.std(ddof=1):.3f}"])
        sec.table(["group", "seeds", "accuracy (mean ± sd)", "macro F1 present (mean ± sd)"], rows, caption="Across seeds")
    aami = {n: r for n, r in results.items() if r["config"]["data"]["protocol"] == "aami"}
    if aami:
        rows = []
        for n, r in aami.items():
            pc = r["test"]["per_class"]
            rows.append([n, *[_rate(pc.get(k), m) for k in ("S", "V") for m in ("se", "ppv", "fpr")]])
        rows.append(["de Chazal 2004 (LDA)", DE_CHAZAL["S"]["se"], DE_CHAZAL["S"]["ppv"], "-", DE_CHAZAL["V"]["se"], DE_CHAZAL["V"]["ppv"], "-"])
        sec.table(["run", "SVEB Se %", "SVEB +P %", "SVEB FPR %", "VEB Se %", "VEB +P %", "VEB FPR %"], rows,
                  caption="AAMI DS1 -> DS2, pooled over DS2 beats (de Chazal's reporting)")
    other = {n: r for n, r in results.items() if r["config"]["data"]["protocol"] != "aami"}
    if other:
        rows = []
        for n, r in other.items():
            for c, pc in r["test"]["per_class"].items():
                if pc["support"] or pc["predicted"]:
                    ci = r["test"].get("ci", {}).get(f"{c}.f1")
                    f1 = f"{_fmt(pc['f1'])} [{_fmt(ci[0])}, {_fmt(ci[1])}]" if ci else _fmt(pc["f1"])
                    rows.append([n, c, str(pc["support"]), str(pc["predicted"]), _fmt(pc["precision"]), _fmt(pc["recall"]), f1])
        sec.table(["run", "class", "test beats", "predicted", "precision", "recall", "F1 [95% CI over records]"], rows,
                  caption="Per class on the test beats (classes with test beats or predictions)")
    for name, res in results.items():
        classes = res["classes"]
        sec.figure(plotting.plot_confusion(np.asarray(res["test"]["confusion_row_normalised"]), classes,
                                           counts=np.asarray(res["test"]["confusion"]), title=f"{name}: confusion (row-normalised)"),
                   f"Figure 4 ({name}): confusion matrix, rows = true class, normalised per row; counts in cells.", name=f"confusion-{name}")
        sec.figure(plotting.plot_per_class_scores(res["test"]["per_class"], title=f"{name}: per-class scores"),
                   f"Figure 6 ({name}): per-class precision, recall and F1 with test support.", name=f"perclass-{name}")

    # ---- attributions ----
    for run_name, info in result.attributions.items():
        sec = rep.section(f"Attributions: {run_name}")
        sec.text(f"{info.n_beats} test beats explained (at most {cfg.explain_max_per_class} per class). Segments are 0.1 s "
                 "wide, counted outward from R in each lead and named after the lead in the record headers (MLII-1: the 0.1 s "
                 "before R in MLII; V1+2: 0.1-0.2 s after R in V1); segments in the zero padding are "
                 "excluded, not averaged. Comparisons: Mann-Whitney U per segment, Benjamini-Hochberg q < 0.05.")
        sec.text("Effect size: rank-biserial correlation r = 2U / (n_a n_b) - 1 of group A against group B, in [-1, 1]; "
                 "r > 0: A's values in that segment tend to be larger than B's, r < 0: smaller. Correct vs incorrect: "
                 "A = correctly classified beats of the class, B = its misclassified beats. Mistaken vs class (paper Fig. 8): "
                 "A = beats of class c taken for k, B = correctly classified beats of k. The tables give, per comparison, "
                 "the segments with BH q < 0.05 and the segment with the largest |r|.")
        for key, why in info.skipped.items():
            sec.text(f"{key}: not applicable to this model ({why}).")
        cvi, mvc, missing, ig = [], [], [], []
        for key, m in info.methods.items():
            comps, seg_labels = m.comparisons, m.segment_labels
            for kind, rows in (("correct_vs_incorrect", cvi), ("mistaken_vs_class", mvc)):
                for name, c in comps[kind].items():
                    rows.append([key, name.replace("->", " taken for "), *_comparison_cells(c, seg_labels)])
            nc = comps.get("not_compared", {})
            for cls, d in nc.get("correct_vs_incorrect", {}).items():
                missing.append([key, f"{cls}: correct vs incorrect", f"{d['n_correct']} correct, {d['n_incorrect']} incorrect"])
            for pair, d in nc.get("mistaken_vs_class", {}).items():
                c, k = pair.split("->")
                missing.append([key, f"{c} taken for {k} vs correct {k}", f"{d['n_mistaken']} taken for {k}, {d['n_correct_k']} correct {k}"])
            if m.completeness:
                cm = m.completeness
                ig.append([key, cm.get("steps", "-"), cm.get("n", "-"), _pct(cm.get("median_rel_error")), _pct(cm.get("p90_rel_error")),
                           cm.get("not_measured") or ("within" if cm.get("ok") else "ABOVE") + f" {_pct(cm.get('tolerance'))}"])
            if comps.get("lead_note"):
                sec.text(f"{key}: a starred lead is another lead in some records ({comps['lead_note']}).")
            classes = results[run_name]["classes"]
            for png in m.figures:
                if png.stem.startswith("class_") and png.stem.endswith("_lines"):
                    cls = classes[int(png.stem.split("_")[1])]
                    what = (f"Figure 8, class {cls}: median and IQR per segment of all {cls} beats, the correctly and the "
                            f"incorrectly classified ones, and the correct beats of the class they were most often taken for")
                else:
                    what = {"class_heatmap": "Figure 7: median per class and segment",
                            "example_beats": "Figure 5: one correctly classified test beat per class, |attribution| as colour (colour scale per beat)"}[png.stem]
                sec.figure(png, f"{what} ({run_name}, {key}).", name=f"{run_name}-{key}-{png.stem}")
        head = ["n A", "n B", "segments q<0.05", "largest |r| at", "r"]
        if cvi:
            sec.table(["method", "class", *head], cvi, caption="Correct (A) vs incorrect (B) beats of a class")
        if mvc:
            sec.table(["method", "comparison", *head], mvc, caption="Misclassified beats (A) vs the class they were taken for (B)")
        if missing:
            min_n = next(iter(info.methods.values())).comparisons.get("min_n", "?")
            sec.table(["method", "comparison", "beats"], missing,
                      caption=f"Not compared: fewer than {min_n} beats in a group")
        if ig:
            sec.table(["method", "steps", "beats", "median error", "90th percentile", "tolerance"], ig,
                      caption="Integrated gradients completeness: |sum of attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)|")

    # ---- sanity ----
    if (sanity := result.sanity) is not None:
        sec = rep.section("Sanity checks")
        sec.text("Cascading model-parameter randomisation (Adebayo et al. 2018): layers are re-initialised from the output "
                 "back; a faithful method's maps should decorrelate (median Spearman towards the random control). "
                 "Deletion/insertion: the target probability as the most-attributed 0.1 s segments are removed / restored; "
                 "lower deletion AUC and higher insertion AUC are better; random order is the control.")
        rows = [[m, *[_fmt(v, 2) for v in s["median_spearman_abs"]], _fmt(s["random_control_abs"], 2),
                 min(s.get("n_defined", [sanity.n_beats]))] for m, s in sanity.cascade.items()]
        if rows:
            layers = next(iter(sanity.cascade.values()))["layers"]
            sec.table(["method", *[f"-{l}" for l in layers], "random", "beats with a defined Spearman"], rows,
                      caption="Median Spearman of |maps| after each randomisation step ('-': undefined, the maps are constant within each beat)")
        f = sanity.faithfulness
        if f:
            sec.table(["maps", "deletion AUC", "insertion AUC"], [[k, _fmt(f["deletion_auc"][k]), _fmt(f["insertion_auc"][k])] for k in f["deletion_auc"]],
                      caption=f"Faithfulness: mean AUC over {sanity.n_beats} beats; only segments with real signal are ranked")
        for png in sanity.figures:
            sec.figure(png, f"Sanity check: {png.stem.replace('_', ' ')}.", name=f"sanity-{png.stem}")

    # ---- noise ----
    if (noise := result.noise) is not None:
        sec = rep.section("Noise stress test")
        sec.text(f"{noise.n_beats} test beats (an equal number per class, so accuracy here is class-balanced) with nstdb "
                 f"noise added before normalisation ({noise.method}). "
                 "Profile shift: Spearman correlation of the per-class median |saliency| segment profiles with the clean ones.")
        sec.table(["noise", "SNR dB", "accuracy", "profile Spearman"],
                  [[r["noise"], "-" if r["snr_db"] is None else r["snr_db"], _fmt(r["accuracy"]), _fmt(r["profile_spearman"])] for r in noise.rows])
        sec.figure(plotting.plot_noise_curves(list(noise.rows)), "Accuracy and profile correlation against SNR.", name="noise")

    if result.audit is not None:
        from ecgjax.study.audit import render

        render(rep, result.audit)
    # ---- checks by wave ----
    from ecgjax.study.report_waves import add_wave_sections

    add_wave_sections(rep, result.wave_checks)
    # ---- explanations by generation ----
    if result.traversal is not None:
        from ecgjax.study.report_traverse import add_traversal_section

        add_traversal_section(rep, result.traversal)
    return rep
