"""The report's wave-check sections render the stored summaries: every method row, the references and the figure."""

from __future__ import annotations

from ecgjax.report import Report
from ecgjax.study.report_waves import add_wave_sections


def _share(v, rnd=0.1, amp=0.4):
    return {"share": v, "share_ci": [v - 0.05, v + 0.05], "random": rnd, "amplitude": amp, "vs_random": v - rnd,
            "vs_random_ci": [v - rnd - 0.05, v - rnd + 0.05], "vs_amplitude": v - amp, "vs_amplitude_ci": [v - amp - 0.05, v - amp + 0.05]}


GT = {"spec": {"model": "ribeiro_cnn", "model_kwargs": {}, "train_records": ["a", "b"], "test_records": ["c"], "before_s": 1.2,
               "after_s": 0.5, "T": 612},
      "targets": {t: {"unit": "s", "n_train": 10, "n_test": 5, "n_test_records": 1, "r2_test": 0.9, "mae_test": 0.01, "train_s": 3.0,
                      "methods": {"saliency": _share(0.8), "lrp": _share(0.4), "grad_cam": {"skipped": "no layer"}}}
                  for t in ("rr", "qrs_width", "r_amplitude")},
      "ranking": [{"method": "saliency", "mean_rank": 1.0, "ranks": {}, "mean_share": 0.8},
                  {"method": "lrp", "mean_rank": 2.0, "ranks": {}, "mean_share": 0.4}]}
ER = {"run": "a", "n_leads": 2, "rr_features": [], "classes": {"V": "QRS", "A": "P"}, "quality": {"V": [8, 10], "A": [0, 3]},
      "methods": {"saliency-label-abs": {"V": {"wave": "QRS", "n": 8, "n_records": 3, "share": 0.5, "share_ci": [0.4, 0.6],
                                               "uniform": 0.1, "amplitude": 0.3, "enrichment": 5.0, "enrichment_ci": [4, 6],
                                               "enrichment_others": 0.6, "p": float("nan"), "p_records": 3,
                                               "rr_share": 0.0, "rr_share_ci": [0.0, 0.0]}}}}


def test_sections_render_every_row():
    rep = Report("t")
    add_wave_sections(rep, {"ground_truth": GT, "expert_rules": ER})
    md = rep.to_markdown()
    assert "Expert rules: relevance in the defining wave (a)" in md and "Ground truth: regressing known quantities" in md
    assert "| saliency-label-abs | V | QRS | 8 (3) | 0.500 [0.400, 0.600] |" in md
    assert "V 8/10, A 0/3" in md
    assert "| 1 | saliency | 1.0 | 0.80 [0.75, 0.85] |" in md
    assert "| | abs(x)-proportional map | |" in md.replace("|  |", "| |")  # no "|" inside a Markdown cell
    assert "not applicable: no layer" in md
    # saliency's share is above |x| (CI 0.35-0.45 > 0), lrp's is not different (-0.05-0.05)
    assert "| rr | saliency | 0.800 [0.750, 0.850] | 0.700 [0.650, 0.750] | above | 0.400 [0.350, 0.450] | above |" in md
    assert "| rr | lrp | 0.400 [0.350, 0.450] | 0.300 [0.250, 0.350] | above | 0.000 [-0.050, 0.050] | not different |" in md
    assert len(rep.figures) == 1


def test_no_checks_no_sections():
    rep = Report("t")
    add_wave_sections(rep, {})
    assert "Ground truth" not in rep.to_markdown() and "Expert rules" not in rep.to_markdown()
