"""The HTML report is self-contained and renders in headless Chromium with every figure."""

import re

import numpy as np

from ecgjax.report import Report
from tests.chromium import figure_problems, render


def _make_report():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = Report("test report", meta={"config": {"lr": 1e-3}, "device": "cpu"})
    s = r.section("Results").text("Accuracy <b>not bold</b> & escaped.")
    s.table(["class", "F1", "support"], [["N", 0.98, 18205], ["V", 0.9, 1776]], caption="Table 1")
    for i in range(2):
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot(np.sin(np.linspace(0, 6, 100) + i), color="C1", lw=3)
        s.figure(fig, f"figure {i}")
    return r


def test_html_is_self_contained_and_escaped(tmp_path):
    paths = _make_report().write(tmp_path)
    text = paths["html"].read_text()
    assert text.count("data:image/png;base64,") == 2
    assert not re.search(r"src=['\"](?!data:)", text), "no external resources"
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; escaped" in text
    assert "18,205" in text and "Table 1" in text
    md = paths["markdown"].read_text()
    assert "| N | 0.98 | 18,205 |" in md and "Provenance" in md
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["results-0.png", "results-1.png"]
    assert not list(tmp_path.glob(".*.tmp"))


def test_report_renders_in_headless_chromium(tmp_path):
    paths = _make_report().write(tmp_path / "out")
    dom, img = render(paths["html"], tmp_path)
    assert 'data-figures-loaded="2/2"' in dom, dom[:500]
    assert figure_problems(dom) == []
    assert img.shape[0] > 100 and img.shape[1] > 100
    rgb = img
    assert rgb.std() > 0.02, "screenshot is blank"
    # the plotted orange lines (C1) are visible: some strongly orange pixels exist
    orange = (rgb[..., 0] > 0.8) & (rgb[..., 1] > 0.3) & (rgb[..., 1] < 0.65) & (rgb[..., 2] < 0.3)
    assert orange.sum() > 50


def test_chromium_check_catches_a_duplicate_caption_and_an_empty_figure(tmp_path):
    from ecgjax.analysis import plotting

    r = _make_report()
    s = r.sections[0]
    s.figure(plotting.plot_per_class_scores({"N": {"precision": 1.0, "recall": 0.9, "f1": 0.95, "support": 10}}), "figure 0")
    fig, _ = plotting._subplots(figsize=(3, 2))  # axes with nothing drawn
    path = tmp_path / "empty.png"
    plotting.save_figure(fig, path)
    s.figure(path, "an empty figure")
    dom, _ = render(r.write(tmp_path / "out")["html"], tmp_path)
    assert figure_problems(dom) == ["caption used 2 times: 'figure 0'", "figure results-3: 1 empty panel(s)"]
