"""experiments/traverse_real.py's docs section: written from the result files alone, the 2-point verdict, idempotent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "experiments" / "traverse_real.py"


def _script():
    spec = importlib.util.spec_from_file_location("traverse_real", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


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


def test_results_md_section_is_the_scripts_output():
    """docs/results.md's section 5b is exactly what the script renders from the committed result files."""
    mod = _script()
    text = (ROOT / "docs" / "results.md").read_text()
    section = text[text.index(mod.BEGIN): text.index(mod.END) + len(mod.END)]
    res = ROOT / "benchmarks" / "results"
    assert section == mod.render(res / "cpu_traverse.jsonl", res), "regenerate: python experiments/traverse_real.py --render"
