"""The report's generative-explanation section: the traverse stage's figures (beat morph strips, change heat maps per
segment and per wave) and numbers, rendered from the StudyResult; no panel may be empty, no figure missing."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest

from ecgjax.analysis import plotting
from ecgjax.generative import explain as EX
from ecgjax.generative.pipeline import _figures
from ecgjax.generative.traverse import Traversal
from ecgjax.report import Report
from ecgjax.study.report_traverse import add_traversal_section
from ecgjax.study.result import TraversalResult

LEADS = ("MLII", "V1")
B, P, T, FS = 3, 4, 80, 100.0


def _explanation(seed: int, *, waves: bool = True) -> EX.TraversalExplanation:
    """A traversal of B beats whose QRS (around R = sample 40) grows along the path, measured as the pipeline does."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    base = np.exp(-0.5 * ((t - 40) / 3.0) ** 2)[None, None, :, None] * np.ones((B, P, 1, 2))
    grow = np.linspace(0, 1, P)[None, :, None, None] * np.exp(-0.5 * ((t - 40) / 6.0) ** 2)[None, None, :, None]
    beats = (base + grow + 0.01 * rng.normal(size=(B, P, T, 2))).astype(np.float32)
    prob = np.tile(np.linspace(0.1, 0.9, P), (B, 1)).astype(np.float32)
    tr = Traversal(z=np.zeros((B, P, 4), np.float32), beats=beats, prob=prob, prior_logpdf=np.full((B, P), -5.0, np.float32),
                   direction=np.ones((B, 4), np.float32), target=np.ones(B, np.int32))
    r, lo, hi = np.full(B, 40), np.zeros(B, int), np.full(B, T)
    change, labels = EX.segment_change(beats, r, lo, hi, FS, lead_names=LEADS)
    prof = np.abs(rng.normal(size=change.shape[2]))
    wv = None
    if waves:  # P, PR, QRS, ST, T bounds (samples) of each source beat
        bounds = np.tile(np.array([10, 22, 33, 48, 54, 72], np.float32), (B, 1))
        wc, wl = EX.wave_change(beats, bounds, lo, hi, lead_names=LEADS)
        wv = (wc, wl, np.abs(rng.normal(size=wc.shape[2])))
    return EX.TraversalExplanation(tr, change, labels, prof, EX.agreement(change[:, -1], prof), 4, wv)


def _beats():
    return types.SimpleNamespace(protocol={"normalisation": "zscore_lead"}, record=np.array(["100", "101", "102"]),
                                 sample=np.array([1000, 2000, 3000]), r=np.full(3, 40), fs=FS)


def _summary(ex, rnd) -> dict:
    f = {"n": 50, "acc_original": 0.9, "acc_reconstructed": 0.89, "acc_gap": 0.01, "pred_agreement": 0.95,
         "normalisation": "zscore_lead", "acc_reconstructed_raw": 0.85}
    d = {k: {"latent": {"class_cosine": 0.5, "median_beat_cosine": 0.4}, "beats": {"class_cosine": 0.6, "median_beat_cosine": 0.5}}
         for k in ("trained_vs_randomised", "randomised_vs_randomised_2")}
    return {"source": "N", "target": "V", "vae": {"latent": 4, "beta": 1.0, "sigma": 0.05, "width": 8},
            "traverse": {"steps": 10, "n_points": P, "method": "saliency"}, "fidelity": f,
            "trained": ex.summary(), "randomised": rnd.summary(), "directions": d}


def _section(tmp_path, waves=True):
    ex, rnd = _explanation(0, waves=waves), _explanation(1, waves=waves)
    figs = _figures(tmp_path / "figures", ex, rnd, _beats(), np.arange(B), list(LEADS), "N", "V", plotting)
    rep = Report("t")
    add_traversal_section(rep, TraversalResult("a", _summary(ex, rnd), tuple(figs)))
    return rep, figs


@pytest.mark.slow  # draws the stage's seven figures: about 4 s on a quiet 2-core CPU, 10-15 s on a loaded one
def test_section_shows_morph_strips_and_change_heatmaps_with_no_empty_panel(tmp_path):
    rep, figs = _section(tmp_path)
    sec = rep.sections[-1]
    assert sec.title == "Explanations by generation: a, N -> V"
    shown = [v for k, v in sec.items if k == "figure"]
    names = [p.stem for p, _ in figs]
    assert names == ["morph_0", "morph_1", "morph_2", "change_path", "change_beats", "change_path_randomised", "change_waves"]
    assert len(shown) == len(figs)
    for fig in shown:  # every panel shows finite data (or says why not): the PNG's record, read by the report
        assert fig.empty_panels == 0, fig.caption
    caps = [f.caption for f in shown]
    assert all("MLII" in c and "V1" in c and "per-lead z-score" in c for c in caps)  # named leads and units
    assert "Beat morph strip" in caps[0] and "per wave" in caps[-1] and "per 0.1 s segment" in caps[3]
    tables = [v for k, v in sec.items if k == "table"]
    assert tables[0].rows[0][0].startswith("median Spearman rho") and tables[0].rows[0][1] == "1.000"
    assert "QRS" in dict((r[0], r[1]) for r in tables[0].rows)["most changed wave"]  # the growing QRS
    md = rep.to_markdown()
    assert "Explanations by generation" in md and md.count("Beat morph strip") == 3
    assert "zscore_lead again); the decoder's output fed as it is scores 0.850" in md


def test_an_empty_panel_is_caught(tmp_path):
    """The check the section test relies on can fail: a heat map of a beat that was never drawn counts as empty."""
    ex = _explanation(0)
    fig = plotting.plot_change_heatmap(ex.change[:, -1], ex.labels, units="per-lead z-score")
    fig.axes[0].images[0].set_data(np.ma.masked_all((B, 4)))  # the panel loses its data
    plotting.save_figure(fig, tmp_path / "f.png")
    rep = Report("t")
    rep.section("s").figure(tmp_path / "f.png", "c")
    assert rep.sections[0].items[0][1].empty_panels == 1


@pytest.mark.slow  # six figures
def test_without_delineation_no_wave_heatmap(tmp_path):
    _, figs = _section(tmp_path, waves=False)
    assert "change_waves" not in [p.stem for p, _ in figs] and len(figs) == 6


def test_study_report_has_the_section_only_when_traversed(tmp_path):
    """Fast: the study report gains the section from the StudyResult, with a morph strip and a per-wave heat map whose
    panels all show data, captions naming the leads and the units (the seven-figure version above is slow)."""
    from ecgjax.study.config import StudyConfig, RunSpec, TraverseSpec
    from ecgjax.study.report import build_report
    from ecgjax.study.result import StudyResult
    from tests.study.test_study import _train_cfg

    cfg = StudyConfig(name="s", runs=(RunSpec("a", _train_cfg(0), explain=True),), traverse=TraverseSpec(target="c1", source="c0"))
    ex, rnd = _explanation(0), _explanation(1)
    strip, heat = tmp_path / "morph_0.png", tmp_path / "change_waves.png"
    plotting.save_figure(plotting.plot_morph_strip(ex.traversal.beats[0], ex.traversal.prob[0], FS, r=40, lead_names=LEADS,
                                                   target="V"), strip)
    wc, wl, wp = ex.waves
    plotting.save_figure(plotting.plot_change_heatmap(EX.nan_stat(np.nanmedian, wc), wl, profile=wp, column_axis="wave"), heat)
    base = dict(config=cfg, config_json={}, environment={}, data={}, runs={}, attributions={}, sanity=None, noise=None,
                timings={})
    figs = ((strip, "Beat morph strip, leads MLII and V1 (per-lead z-score)"), (heat, "Change per wave, MLII and V1"))
    rep = build_report(StudyResult(**base, traversal=TraversalResult("a", _summary(ex, rnd), figs)))
    sec = rep.sections[-1]
    assert sec.title == "Explanations by generation: a, N -> V"
    shown = [v for k, v in sec.items if k == "figure"]
    assert [f.caption for f in shown] == [c for _, c in figs]
    assert [f.empty_panels for f in shown] == [0, 0]  # fails on a panel with no data (see test_an_empty_panel_is_caught)
    rows = dict((r[0], r[1:]) for r in [v for k, v in sec.items if k == "table"][0].rows)
    assert rows["most changed wave"][0].endswith(":QRS")  # the QRS grows along the synthetic path
    assert "Explanations by generation" not in build_report(StudyResult(**base)).to_markdown()


def test_traverse_spec_errors_are_clear():
    from ecgjax.errors import ConfigError
    from ecgjax.study.config import RunSpec, StudyConfig, TraverseSpec
    from tests.study.test_study import _train_cfg

    with pytest.raises(ConfigError, match="traverse.target and traverse.source are both 'V'"):
        TraverseSpec(target="V", source="V")
    with pytest.raises(ConfigError, match="traverse.steps must be a positive integer"):
        TraverseSpec(steps=0)
    with pytest.raises(ConfigError, match="traverse.sigma"):
        TraverseSpec(sigma=0.0)
    with pytest.raises(ConfigError, match="no run has it"):
        StudyConfig(name="s", runs=(RunSpec("a", _train_cfg(0)),), traverse=TraverseSpec())


@pytest.mark.slow  # 1-3 min on the shared 2-core CPU: trains a run and a VAE, compiles the traversals
def test_study_traverse_stage_end_to_end(tmp_path):
    """``run_study`` with a traverse stage: the stage's files, the report's section with every figure, none empty;
    a rerun skips the stage and renders the same report."""
    from ecgjax.study import RunSpec, StudyConfig, TraverseSpec, run_study
    from tests.study.test_study import _train_cfg

    spec = TraverseSpec(target="c1", source="c0", latent=4, width=4, sigma=0.2, vae_epochs=1, max_beats=4, fidelity_beats=8, steps=5,
                        n_points=3, batch_size=8)
    cfg = StudyConfig(name="traverse study", runs=(RunSpec("a", _train_cfg(0), explain=True),), n_boot=5, traverse=spec)
    wd = tmp_path / "study"
    paths = run_study(cfg, wd)
    stage = (wd / "stages" / "traverse.json").read_text()
    assert '"figures"' in stage and (wd / "traverse" / "a" / "vae" / "vae.json").is_file()
    assert json.loads(stage)["vae"]["sigma"] == 0.2  # the spec's decoder sd reached the VAE
    html = (wd / "report" / "report.html").read_text()
    assert "Explanations by generation: a, c0 -&gt; c1" in html or "Explanations by generation: a, c0 -> c1" in html
    figs = [m for m in html.split("<figure id='fig-traverse-a-")[1:]]
    stems = [f.split("'", 1)[0] for f in figs]
    assert stems[0].startswith("morph_") and {"change_path", "change_beats", "change_path_randomised"} <= set(stems)
    assert all("data-empty-panels='0'" in f[:200] for f in figs), [f[:120] for f in figs]
    md = (wd / "report" / "summary.md").read_text()
    run_study(cfg, wd)  # resumed: the stage is skipped, the report is the same
    assert (wd / "report" / "summary.md").read_text() == md and paths["html"].endswith("report.html")
