"""Figures render headless, write atomically and never import matplotlib at package import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from ecgjax.analysis import class_profiles, plotting, segment_values


def test_no_matplotlib_at_import():
    code = "import sys, ecgjax.analysis, ecgjax.attribution; assert 'matplotlib' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_figures_render(tmp_path):
    rng = np.random.default_rng(0)
    N, T, L = 30, 430, 2
    x = rng.normal(size=(N, T, L))
    maps = rng.normal(size=(N, T, L))
    r = rng.integers(100, 300, N)
    lo, hi = np.zeros(N, int), np.full(N, 380)
    seg = segment_values(maps, r, lo, hi, 360.0)
    y = rng.integers(0, 3, N)
    prof = class_profiles(seg.values, y, rng.choice(["a", "b", "c"], N), idx=np.arange(N), n_boot=10)
    figs = {
        "beat.png": plotting.plot_beat_map(x[0], maps[0], 360.0, r=int(r[0]), hi=380, title="beat"),
        "beat_seg.png": plotting.plot_beat_map(x[0], maps[0], 360.0, r=int(r[0]), segments=seg.values[0], seg_len=seg.seg_len),
        "heat.png": plotting.plot_class_heatmap(prof.median, seg.labels, ("N", "V", "A"), count=prof.count),
        "lines.png": plotting.plot_group_lines({"all": seg.values, "class 0": seg.values[y == 0], "empty": seg.values[:0]}, seg.labels,
                                               significant=np.arange(48) % 7 == 0),
    }
    for name, fig in figs.items():
        plotting.save_figure(fig, tmp_path / name)
        assert (tmp_path / name).stat().st_size > 1000
    assert not list(tmp_path.glob("*.tmp*"))


def test_figures_touch_no_global_matplotlib_state(tmp_path):
    """Figures use the object-oriented API: pyplot is never imported and the backend is never switched."""
    code = (
        "import sys, matplotlib, numpy as np\n"
        "before = matplotlib.get_backend() if 'MPLBACKEND' in __import__('os').environ else matplotlib.rcParams._get_backend_or_none()\n"
        "from ecgjax.analysis import plotting\n"
        "fig = plotting.plot_confusion(np.eye(3), ['N', 'V', 'A'], counts=np.eye(3, dtype=int))\n"
        f"plotting.save_figure(fig, {str(tmp_path / 'c.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "after = matplotlib.get_backend() if 'MPLBACKEND' in __import__('os').environ else matplotlib.rcParams._get_backend_or_none()\n"
        "assert before == after, (before, after)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_empty_panels_are_counted_and_a_reason_fills_them(tmp_path):
    """A panel with no finite data counts as empty; one that states why it is empty does not; the
    count travels in the PNG (the report's Chromium test reads it from there)."""
    from matplotlib.figure import Figure
    from PIL import Image

    fig = Figure()
    a, b, c = fig.subplots(1, 3)
    a.plot([0, 1], [1, 2])
    b.plot([0, 1], [np.nan, np.nan])  # drawn, but nothing visible
    plotting._no_data(c, "no beats")
    assert plotting.empty_panels(fig) == 1
    plotting.save_figure(fig, tmp_path / "f.png")
    assert Image.open(tmp_path / "f.png").info[plotting.EMPTY_PANELS_KEY] == "1"


def test_figures_name_leads_label_axes_and_never_leave_a_panel_empty():
    from ecgjax.analysis.segments import segment_labels
    from ecgjax.attribution.sanity import CascadeResult

    rng = np.random.default_rng(0)
    labels = segment_labels(("MLII", "V1"), 12)
    vals = np.full((20, 2, 24), np.nan)
    vals[:, :, 10:15] = rng.normal(size=(20, 2, 5))  # 5 of 24 segments per lead exist (a short window)
    lines = plotting.plot_group_lines({"V all": vals, "correct": vals[:12], "incorrect": vals[:0]}, labels, value_label="|saliency| (a.u.)")
    ax = lines.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MLII-2", "MLII-1", "MLII+1", "MLII+2", "MLII+3",
                                                            "V1-2", "V1-1", "V1+1", "V1+2", "V1+3"]
    assert ax.get_xlabel() and "|saliency| (a.u.)" in ax.get_ylabel() and plotting.empty_panels(lines) == 0
    heat = plotting.plot_class_heatmap(vals[:2], labels, ("N", "V"), value_label="median |x| (a.u.)")
    assert len(heat.axes[0].get_xticklabels()) == 10 and heat.axes[1].get_ylabel() == "median |x| (a.u.)"  # axes[1]: colour bar
    beats = plotting.plot_example_beats(rng.normal(size=(2, 50, 2)), rng.random((2, 50, 2)), 360.0, rs=np.array([20, 20]),
                                        his=np.array([50, 40]), titles=["N", "V"], lead_names=[("MLII", "V1"), ("V5", "V2")])
    assert [a.get_title() for a in beats.axes[:4]] == ["N, MLII", "N, V1", "V, V5", "V, V2"]
    assert sum(a.get_label() == "<colorbar>" for a in beats.axes) == 2 and beats.axes[0].get_ylabel() == "MLII (a.u.)"
    # constant maps: Spearman undefined everywhere -> a reason, not an empty plot
    nan = np.full((2, 6), np.nan)
    cas = plotting.plot_cascade(CascadeResult(("head", "conv"), nan, nan, nan[0], nan[0], "grad_cam"))
    assert plotting.empty_panels(cas) == 0 and "constant" in cas.axes[0].texts[0].get_text()
    none = plotting.plot_group_lines({"a": vals[:0]}, labels)
    assert plotting.empty_panels(none) == 0


def test_traversal_figures_name_leads_units_and_colour_bars():
    rng = np.random.default_rng(1)
    P, T, K = 5, 252, 12
    beats = np.cumsum(rng.normal(size=(P, T, 2)), axis=1)
    strip = plotting.plot_morph_strip(beats, np.linspace(0.1, 0.9, P), 360.0, r=90, lead_names=("MLII", "V1"), target="V")
    labels = [ax.get_ylabel() for ax in strip.axes]
    assert "MLII (per-lead z-score)" in labels and "V1 (per-lead z-score)" in labels and "P(V)" in labels
    change = np.abs(rng.normal(size=(P, K)))
    change[:, 0] = np.nan  # a segment outside the signal: dropped
    names = [f"L{k}" for k in range(K)]
    heat = plotting.plot_change_heatmap(change, names, profile=rng.random(K))
    assert "mean |change| (per-lead z-score)" in [ax.get_ylabel() for ax in heat.axes]  # the colour bar
    assert [t.get_text() for t in heat.axes[0].get_xticklabels()] == names[1:]
    for fig in (strip, heat):
        assert plotting.empty_panels(fig) == 0
