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
