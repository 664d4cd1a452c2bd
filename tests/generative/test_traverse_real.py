"""experiments/traverse_real.py's docs section: written from the result files alone, the 2-point verdict, idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "traverse_real.py"


def _script():
    return load_script(SCRIPT)


def _query(p_end: float) -> dict:
    return {"n": 4, "median_spearman": 1.0, "frac_spearman_ge_0_9": 1.0, "frac_cross_0_5": 1.0, "frac_start_below_0_5": 1.0,
            "median_prob_start": 0.01,
            "median_prob_end": p_end, "frac_start_inside_prior_bound": 1.0, "frac_no_lower_than_start": 1.0,
            "median_agreement": 0.1, "median_source_agreement": 0.2, "top_segment": "MLII+1", "top_wave": "MLII:QRS"}


def _row(model: str, acc0: float, acc1: float, vae_dir: str) -> dict:
    diag = {"n": 10, "median_r": 0.9, "median_slope_ratio": 0.8, "median_mse_qrs": 0.2, "median_mse_rest": 0.05}
    return {"experiment": "traverse_real", "config": f"traverse_aami.py:{model},full,natural", "source": "N", "target": "V",
            "test_accuracy": acc0, "vae": {"latent": 16, "beta": 1.0, "width": 16, "sigma": 0.05}, "vae_dir": vae_dir,
            "fidelity": {"n": 100, "acc_original": acc0, "acc_reconstructed": acc1, "acc_gap": acc0 - acc1, "pred_agreement": 0.9},
            "diagnosis": {"per_class": {"S": diag | {"recall_original": 0.5, "recall_reconstructed": 0.25, "lost": 7,
                                                     "gained": 1, "lost_to": {"N": 6, "V": 1}}},
                          "flipped": diag | {"median_slope_ratio": 0.61}, "kept": diag, "half_s": 0.05},
            "trained": _query(0.97), "randomised": _query(0.2), "directions": {},
            "traverse": {"steps": 10, "proximity": 0.05, "n_points": 11}, "wall_s": 12.0,
            "device": {"platform": "cpu", "kind": "cpu", "count": 1, "cpu_count": 2}, "load_avg_1m_start": 3.0,
            "load_avg_1m_end": 4.0, "command": f"python experiments/traverse_real.py --models {model}",
            "versions": {"jax": "0.x", "python": "3.x"}}


def test_section_from_rows_states_the_two_point_verdict_and_the_diagnosis(tmp_path):
    mod = _script()
    res = tmp_path / "results"
    res.mkdir()
    vae_dir = str(tmp_path / "vae")
    vae_row = {"command": f"python benchmarks/vae_aami.py --save {vae_dir}", "settings": {"in_shape": [252, 2], "beta": 1.0,
               "sigma": 0.05, "width": 16, "epochs": 12}, "latent": 16, "n_train": 40454, "n_test": 49712, "median_r": 0.95,
               "frac_r_gt_0_9": 0.88, "median_mse": 0.09, "median_mse_template": 0.67, "active_units": 16, "train_s": 400.0,
               "device": "cpu", "host_cpus": 2, "load_avg_1m": 9.0, "jax": "0.x",
               "per_class": {"N": {"n": 5, "median_r": 0.95, "median_mse": 0.09, "median_mse_template": 0.6}}}
    (res / "cpu_vae_aami.jsonl").write_text(json.dumps(vae_row) + "\n")
    out = tmp_path / "traverse.jsonl"
    rows = [_row("rr_net", 0.90, 0.70, vae_dir), _row("rr_net", 0.90, 0.89, vae_dir), _row("rr_net_waveform", 0.80, 0.75, vae_dir)]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = mod.render(out, res)
    assert text.startswith(mod.BEGIN) and text.endswith(mod.END)
    # the newest row per classifier; the gap in points and the verdict against the 2 points
    assert "| rr_net,full,natural | 40,454, 0.05, 16 / 16 | 100 | 0.900 | 0.900 | 0.890 | +1.0 | yes |" in text
    assert "| rr_net_waveform,full,natural | 40,454, 0.05, 16 / 16 | 100 | 0.800 | 0.800 | 0.750 | +5.0 | **no** |" in text
    assert "+20.0" not in text
    assert "python experiments/traverse_real.py --models rr_net_waveform\n" in text and "jax 0.x, python 3.x" in text
    assert "| class S | 10 | 0.500 -> 0.250 | 7 (N 6, V 1) | 1 |" in text
    assert "| prediction flipped | 10 | | | | 0.900 | 0.610 |" in text
    # one config checked with a second VAE: both rows stay, told apart by their VAE folder
    out.write_text(out.read_text() + json.dumps(_row("rr_net", 0.90, 0.895, str(tmp_path / "vae2" / "vae"))) + "\n")
    two = mod.render(out, res)
    assert "| rr_net,full,natural [" in two and "[vae2/vae] | ? (trained by the run), 0.05, 16 / 16 | 100 | 0.900 | 0.900 | 0.895 | +0.5 | yes |" in two
    assert "[vae2/vae]: +0.5" in two and "2 of 3 pairs are within 2 points" in two  # the reading reads every pair
    assert "| rr_net_waveform,full,natural | 40,454" in two
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{mod.BEGIN}\nold\n{mod.END}\nafter\n")
    mod.update_docs(doc, out, res)
    once = doc.read_text()
    mod.update_docs(doc, out, res)
    assert doc.read_text() == once and once.startswith("before\n") and once.endswith("\nafter\n") and "\nold\n" not in once
    # a VAE evaluated on the DS1 validation records (vae_aami.py --eval-part val) says so in its table row, and only it
    val_row = vae_row | {"eval_part": "val", "n_test": 10567, "median_r": 0.99, "command": "python benchmarks/vae_aami.py "
                         f"--eval-part val --save {tmp_path / 'vae3'}"}
    (res / "cpu_vae_aami.jsonl").write_text(json.dumps(vae_row) + "\n" + json.dumps(val_row) + "\n")
    both = mod.render(out, res)
    assert "| 40,454 / 49,712 | 0.950 (0.88) |" in both and "| 40,454 / 10,567 DS1 validation | 0.990 (0.88) |" in both
    assert mod._eval_words(vae_row) == "DS2" and mod._eval_words(val_row) == "DS1 validation"


def test_results_md_section_is_the_scripts_output():
    """docs/results.md's section 5b is exactly what the script renders from the committed result files."""
    mod = _script()
    text = (ROOT / "docs" / "results.md").read_text()
    section = text[text.index(mod.BEGIN): text.index(mod.END) + len(mod.END)]
    res = ROOT / "benchmarks" / "results"
    assert section == mod.render(res / "cpu_traverse.jsonl", res), "regenerate: python experiments/traverse_real.py --render"


def _agreement_model(lo: float, hi: float, *, rr: bool, ctx_lo: float | None = None) -> dict:
    contrast = lambda lo, hi: {"n": 48, "median_trained": 0.2, "median_randomised": 0.1, "diff": (lo + hi) / 2,  # noqa: E731
                               "diff_ci": [lo, hi], "profile_max_over_min": 1.9, "profile_cv": 0.18 if rr else 0.13, "k": 4}
    labels = ("MLII-1", "MLII+1", "V1-1", "V1+1")
    return {"contrast": contrast(lo, hi), "n_src": 48, "n_tgt": 48, "vae": {"latent": 32, "width": 32},
            "extra_channels": ["pre", "post"] if rr else [], "profile_recomputed_equal": True,
            "reliance": {"p_src": 0.001, "p_src_tgt_extra": 0.003, "p_src_tgt_leads": 0.05, "p_tgt": 0.43,
                         "p_tgt_src_extra": 0.06, "extra_share_src": 0.25, "extra_share_tgt": 0.23},
            "contrast_source_rr_context": contrast(ctx_lo, 0.05) if ctx_lo is not None else None,
            "profile": dict(zip(labels, (1.0, 0.8, 0.9, 0.7))), "change_trained": dict(zip(labels, (0.5, 1.0, 0.3, 0.6)))}


def test_agreement_diagnosis_states_which_classifiers_separate_and_why_from_the_row():
    mod = _script()
    row = {"experiment": "traverse_agreement", "command": "python experiments/traverse_real.py --agreement", "root": "/r",
           "source": "N", "target": "V",
           "models": {"rr_net": _agreement_model(-0.15, 0.02, rr=True, ctx_lo=-0.2),
                      "rr_net_waveform": _agreement_model(0.25, 0.39, rr=False)}}
    text = "\n".join(mod._agreement_lines([row]))
    assert "| rr_net | 0.200 | 0.100 | -0.065 [-0.150, 0.020] |" in text
    assert "Separated (CI above 0): rr_net_waveform; not separated: rr_net." in text
    assert "rr_net_waveform's is the flattest" in text  # flatness is ruled out by the numbers, not asserted
    assert "falls from 0.430 to 0.060 with N RR features" in text and "still not separated" in text
    assert "the trained paths change MLII+1, V1+1 most (profile there 0.80, 0.70" in text and "seed check (rows above)" in text
    assert mod._agreement_lines([]) == []


def test_window_vae_line_reads_the_full_row_against_the_criteria(tmp_path):
    mod = _script()
    base = {"protocol": "jones2020", "latent": 32, "active_units": 30, "train_s": 2900.0, "load_avg_1m": 5.0,
            "per_class": {"N": {"n": 100, "median_r": 0.93}, "V": {"n": 40, "median_r": 0.88}, "A": {"n": 3, "median_r": 0.1}}}
    old = base | {"settings": {"max_train": 20000, "max_test": 10000, "epochs": 10, "width": 16, "beta": 1.0, "sigma": 0.05},
                  "n_train": 20000, "n_test": 10000, "median_r": 0.901, "frac_r_gt_0_9": 0.51, "median_mse": 0.0037,
                  "median_mse_template": 0.0371, "command": "python benchmarks/vae_aami.py --max-train 20000"}
    new = base | {"settings": {"max_train": 0, "max_test": 0, "epochs": 14, "time_budget_s": 3000.0, "width": 32, "beta": 1.0,
                               "sigma": 0.01}, "epochs_run": 6, "n_train": 41256, "n_test": 46819, "median_r": 0.89,
                  "frac_r_gt_0_9": 0.45, "median_mse": 0.003, "median_mse_template": 0.0371,
                  "command": "python benchmarks/vae_aami.py --max-train 0 --max-test 0"}
    (tmp_path / "cpu_vae_jones2020.jsonl").write_text("\n".join(json.dumps(r) for r in (old, new)) + "\n")
    (line,) = mod._window_vae_lines(tmp_path, "jones2020")
    assert "6 (of 14; time budget 3000 s) epochs" in line and "41,256 beats" in line
    assert "median r 0.890 on all 46,819 held-out DS2 beats" in line and "NOT met" in line and "(below it)" in line
    assert "lowest per class (30 beats or more): V, r 0.880" in line and "best earlier jones2020 row: median r 0.901" in line
    assert mod._window_vae_lines(tmp_path, "aami") == []


def test_rows_read_as_input_show_both_accuracies_and_the_boundary_reading(tmp_path):
    """A row whose classifier read reconstructions through vae.as_input is told apart from an earlier row of the same
    config and VAE, shows the decoder-output accuracy beside it, and its reading says whether the lost beats sat near
    the decision boundary (from the row's P(true) medians); the rr_net configs' running template is read from the config."""
    mod = _script()
    res = tmp_path / "results"
    res.mkdir()
    vae_dir = str(tmp_path / "vae")
    old = _row("rr_net", 0.90, 0.87, vae_dir)
    new = _row("rr_net", 0.90, 0.89, vae_dir)
    new["fidelity"] |= {"normalisation": "zscore_lead", "acc_reconstructed_raw": 0.85, "acc_gap_raw": 0.05}
    new["diagnosis"]["per_class"]["S"] |= {"lost_median_p_true": 0.62, "median_p_true_kept": 0.99}
    out = tmp_path / "traverse.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in (old, new)))
    text = mod.render(out, res)
    assert "| rr_net,full,natural [VAE 16/16] | ? (trained by the run), 0.05, 16 / 16 | 100 | 0.900 | 0.900 | 0.870 | +3.0 | **no** | 0.900 | decoder output | - |" in text
    assert ("| rr_net,full,natural [VAE 16/16, read as input] | ? (trained by the run), 0.05, 16 / 16 | 100 | 0.900 | 0.900 | "
            "0.890 | +1.0 | yes | 0.900 | as input (zscore_lead) | 0.850 (+5.0) |") in text
    assert "| -, - | 0.620 / 0.990 |" in text
    assert "the decoder's output fed as it is: 0.850, a gap of +5.0" in text
    assert "median P(S) of 0.620, against 0.990 for the S beats it keeps right: they sat near its decision boundary" in text
    assert "rr_net,full,natural read the beats themselves (`traverse_aami.py`: `data.template_beats` = 0)" in text
    assert "a classifier on the jones2020 window" in text  # no jones2020-window row yet


def test_sanity_line_reads_the_seed_check_and_consistency_from_the_rows():
    """The randomised-classifier verdict per row: the seed check from the direction cosines, the consistency of the
    randomised classifier's change against the trained one's, and the wording chosen from those numbers."""
    mod = _script()
    cos = lambda v: {"beats": {"class_cosine": v}}  # noqa: E731

    def row(tt, tr, cons_t, cons_r):
        r = _row("rr_net", 0.9, 0.9, "v")
        r["directions"] = {"trained_vs_trained_2": cos(tt), "trained_vs_randomised": cos(tr), "trained_vs_randomised_2": cos(-0.1),
                           "randomised_vs_randomised_2": cos(0.2)}
        r["trained"] = r["trained"] | {"consistency": cons_t}
        r["randomised"] = r["randomised"] | {"consistency": cons_r, "frac_cross_0_5": 0.0}
        return r

    one = mod._sanity_lines({"a": row(0.9, 0.3, 0.5, 0.2), "b": row(0.2, 0.6, 0.4, 0.5)})[0]
    assert "passes for 1 of 2 (fails: b)" in one and "a: 0.50 vs 0.20; b: 0.40 vs 0.50 (lower for the randomised in 1 of 2)" in one
    assert "not always less consistent" in one
    assert "also less consistent" in mod._sanity_lines({"a": row(0.9, 0.3, 0.5, 0.2)})[0]
    assert mod._sanity_lines({"a": _row("rr_net", 0.9, 0.9, "v")}) == []  # no second seed: nothing to say


def test_fidelity_per_seed_table_and_verdict_from_the_row(tmp_path):
    """--fidelity-seeds' row: one table line per trained seed (gap, verdict, the decoder-output gap, where the largest
    loss comes from) and the per-model verdict over its seeds."""
    mod = _script()

    def run(model, seed, acc1, raw):
        diag = _row(model, 0.9, acc1, "v")["diagnosis"]
        diag["per_class"]["S"] |= {"lost_records": {"212": 5, "117": 2}, "lost_symbols": {"R": 6, "N": 1},
                                   "lost_median_p_true": 0.6, "median_p_true_kept": 0.99}
        return {"model": model, "seed": seed, "test_accuracy": 0.9, "diagnosis": diag,
                "fidelity": {"n": 100, "acc_original": 0.9, "acc_reconstructed": acc1, "acc_gap": 0.9 - acc1,
                             "acc_gap_raw": 0.9 - raw, "pred_agreement": 0.95}}

    row = {"experiment": "traverse_fidelity", "root": "/r", "vae": {"latent": 32, "width": 32},
           "runs": {"rr_net seed 0": run("rr_net", 0, 0.87, 0.86), "rr_net seed 1": run("rr_net", 1, 0.89, 0.85)}}
    text = "\n".join(mod._fidelity_seed_lines([row]))
    assert ("| rr_net | 0 | 32 / 32 | 100 | 0.900 | 0.900 | 0.870 | +3.0 | **no** | +4.0 | 0.950 | S, 0.500 -> 0.250 (7 lost, "
            "1 gained) | records 212 5, 117 2; symbols R 6, N 1 | 0.600 / 0.990 |") in text
    assert "| rr_net | 1 | 32 / 32 | 100 | 0.900 | 0.900 | 0.890 | +1.0 | yes | +5.0 |" in text
    assert "* VAE 32/32 (`/r`), per model over its trained seeds: rr_net: gaps +3.0, +1.0 points (1 of 2 seeds within 2). " \
           "1 of 2 (classifier, seed) pairs within 2 points." in text
    other = row | {"root": "/r2", "vae": {"latent": 64, "width": 48, "sigma": 0.02},
                   "runs": {"rr_net seed 0": run("rr_net", 0, 0.89, 0.86), "rr_net seed 1": run("rr_net", 1, 0.885, 0.85)}}
    two = "\n".join(mod._fidelity_seed_lines([row, other]))  # one verdict per VAE (root), not one line mixing both
    assert "| rr_net | 0 | 64 / 48 | 100 | 0.900 | 0.900 | 0.890 | +1.0 | yes |" in two
    assert "* VAE 64/48, sigma 0.02 (`/r2`), per model over its trained seeds: rr_net: gaps +1.0, +1.5 points (2 of 2 " \
           "seeds within 2). 2 of 2 (classifier, seed) pairs within 2 points." in two
    assert two.count("per model over its trained seeds") == 2
    # the check on DS1's validation records (--fidelity-part val): its own line, never in the DS2 table or verdicts
    val = other | {"part": "val", "runs": {"rr_net seed 0": run("rr_net", 0, 0.895, 0.86)}}
    three = "\n".join(mod._fidelity_seed_lines([row, other, val]))
    assert three.replace(three[three.index("* The same check"):], "") == two + "\n"
    assert three.endswith("* The same check on the classifiers' DS1 validation records (`--fidelity-part val`: records that "
                          "neither the VAE nor the classifiers trained on, used only for the classifiers' early stopping; DS2 unread), "
                          "VAE 64/48, sigma 0.02 (`/r2`), gap = accuracy "
                          "on the originals - on the reconstructions (negative: the reconstructions are classified better): "
                          "rr_net seed 0 +0.5 (100 beats). 1 of 1 within 2 points.")
    assert mod._fidelity_seed_lines([val]) == []  # no DS2 check, no section

    # the pre-registered selection rule applied to its candidate (the VAE its command saves): DS1 validation decides
    cand = tmp_path / "cand" / "vae"
    mod.VAE_CANDIDATES = ({"candidate": "python benchmarks/vae_aami.py --eval-part val --save /elsewhere/vae", "why": "first"},
                          {"candidate": f"python benchmarks/vae_aami.py --eval-part val --save {cand}", "why": "second"})

    def verdict_of(rows, res=None):  # the rule on the second candidate, whose VAE the rows below check
        return mod._selection_verdict(rows, res, mod.VAE_CANDIDATES[1], "the candidate")

    assert verdict_of([row, other, val]).endswith("not yet checked on the DS1 validation records; DS2 not read.")
    six = {f"{m} seed {sd}": run(m, sd, 0.9 - d, 0.9) for m, sd, d in
           [("rr_net", 0, 0.01), ("rr_net", 1, -0.019), ("lstm", 0, 0.0), ("lstm", 1, 0.015), ("wf", 0, 0.005), ("wf", 1, 0.0)]}
    cval = {"experiment": "traverse_fidelity", "part": "val", "root": "/c", "vae_dir": str(cand), "runs": six,
            "vae": {"latent": 128, "width": 32, "sigma": 0.015}}
    res = tmp_path / "res"
    res.mkdir()
    (res / "cpu_vae_aami.jsonl").write_text(json.dumps(
        {"command": f"python benchmarks/vae_aami.py --eval-part val --save {cand}", "eval_part": "val", "n_test": 10567,
         "median_r": 0.995, "median_mse": 0.0101, "median_mse_template": 0.61, "active_units": 120, "latent": 128,
         "train_s": 2990.0, "epochs_run": 30, "settings": {"epochs": 60, "time_budget_s": 3000.0}}) + "\n")
    verdict = verdict_of([row, cval], res)
    assert ("6 of 6 (classifier, seed) pairs within 2 points on the DS1 validation records (rr_net seed 0 +1.0, rr_net seed 1 "
            "-1.9, lstm seed 0 +0.0, lstm seed 1 +1.5, wf seed 0 +0.5, wf seed 1 +0.0): **accepted**; DS2 not yet read.") in verdict
    assert verdict.endswith("Its reconstructions of the 10,567 DS1 validation beats: median r 0.995, median MSE 0.0101 "
                            "(template 0.6100), 120 of 128 units active, epochs 30 (of 60; time budget 3000 s), 2990 s of training.")
    cds2 = cval | {"part": "test", "runs": dict(six, **{"rr_net seed 0": run("rr_net", 0, 0.87, 0.9)})}
    assert "**accepted**; DS2, read once for it (its row in the table above): 5 of 6 pairs within 2 points." in \
        verdict_of([row, cval, cds2])
    # rendered: the rule, then each candidate in registration order with its own verdict
    lines = "\n".join(mod._fidelity_seed_lines([row, cval, cds2]))
    assert mod._selection_verdict([row, cval, cds2], None, mod.VAE_CANDIDATES[1], "candidate 2") in lines
    order = ["(`traverse_real.VAE_RULE`", "Candidate 1: `python benchmarks/vae_aami.py --eval-part val --save /elsewhere/vae` (first)",
             "verdict on candidate 1**: not yet checked on the DS1 validation records; DS2 not read.",
             f"Candidate 2: `python benchmarks/vae_aami.py --eval-part val --save {cand}` (second)", "verdict on candidate 2**: 6 of 6"]
    assert [lines.index(o) for o in order] == sorted(lines.index(o) for o in order)
    bad = cval | {"runs": dict(six, **{"wf seed 1": run("wf", 1, 0.875, 0.9)})}
    assert "5 of 6" in verdict_of([bad]) and verdict_of([bad]).endswith(
        "**rejected**; DS2 not read. wf seed 1: same prediction on 95.0% of the beats, decoder output as is +0.0; class S: "
        "1 beats right only on the reconstruction, 7 right only on the original (recall 0.500 -> 0.250).")
    assert "**rejected**; yet 1 DS2 row(s) of it exist, against the rule. wf seed 1:" in verdict_of([bad, cds2])
    assert mod._fidelity_seed_lines([]) == []


def test_reading_flags_a_classifier_that_misses_the_target_class():
    """A row whose classifier barely recalls the traversals' target class is read as close to a majority classifier."""
    mod = _script()
    r = _row("rr_net", 0.9, 0.9, "v")
    d = r["diagnosis"]["per_class"]
    d["V"] = d["S"] | {"n": 40, "recall_original": 0.05, "recall_reconstructed": 0.05, "lost": 0, "gained": 0, "lost_to": {}}
    text = "\n".join(mod._reading({"x": r}, None, Path("/nonexistent")))
    assert "Its recall of V (the traversals' target) on the originals is only 0.050: close to a majority classifier" in text
    d["V"]["recall_original"] = 0.5
    assert "majority classifier" not in "\n".join(mod._reading({"x": r}, None, Path("/nonexistent")))
