"""Figures (matplotlib imported inside each function; object-oriented API only).

Every function returns a ``matplotlib.figure.Figure`` drawn on its own Agg
canvas: pyplot is never imported, so no global backend or figure registry is
touched. :func:`save_figure` writes it atomically. Figure numbers refer to
Jones et al. 2020.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def _mpl():
    import matplotlib

    return matplotlib


def _subplots(*args, figsize, layout=None, **kwargs):
    """``(Figure, axes)`` on a private Agg canvas (pyplot's ``subplots`` without its global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*args, **kwargs)


EMPTY_PANELS_KEY = "ecgjax-empty-panels"  # PNG text chunk: how many panels show neither data nor a reason
_REASON_GID = "ecgjax-reason"


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``fig`` to ``path`` (format from the suffix) atomically; a PNG records
    :func:`empty_panels` in its ``ecgjax-empty-panels`` text chunk (read by the report)."""
    from ecgjax.io import atomic_open

    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".") or "png"
    meta = {EMPTY_PANELS_KEY: str(empty_panels(fig))} if fmt == "png" else None
    with atomic_open(path) as f:
        fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight", metadata=meta)


def _no_data(ax, reason: str) -> None:
    """Put a one-line ``reason`` in place of a panel that has nothing to show."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, reason, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes, gid=_REASON_GID)


def empty_panels(fig) -> int:
    """How many axes of ``fig`` (colour bars aside) show no finite data and no reason in its place."""
    from matplotlib.collections import Collection
    from matplotlib.image import AxesImage
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    def shows(a) -> bool:
        if isinstance(a, Line2D):
            return bool(np.isfinite(np.asarray(a.get_ydata(), float)).any())
        if isinstance(a, AxesImage):
            return bool(np.ma.count(np.ma.masked_invalid(a.get_array())))
        if isinstance(a, Collection):
            return any(np.isfinite(p.vertices).all() and len(p.vertices) for p in a.get_paths())
        if isinstance(a, Rectangle):
            return bool(np.isfinite(a.get_height()) and a.get_height() != 0)
        return False

    n = 0
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        if any(t.get_gid() == _REASON_GID for t in ax.texts):
            continue
        if not any(shows(a) for a in (*ax.lines, *ax.images, *ax.collections, *ax.patches)):
            n += 1
    return n


def plot_beat_map(x: np.ndarray, amap: np.ndarray, fs: float, *, r: int | None = None, lo: int = 0, hi: int | None = None,
                  segments: np.ndarray | None = None, seg_len: int | None = None, lead_names: Sequence[str] | None = None,
                  title: str = "", cmap: str = "coolwarm", symmetric: bool = True):
    """One beat with its attribution as colour (Fig. 5).

    Args:
      x: f32[T, L] the beat; amap: f32[T, L] its (signed) map.
      fs: Hz (x axis in seconds relative to R when ``r`` is given).
      r: R position (drawn as a dashed line); lo, hi: the valid range (padding greyed).
      segments: optional f32[L, S] segment values (``Segments.values[n]``) drawn as
        background bands of width ``seg_len`` around R instead of per-sample colour.
      lead_names: L names for the y axes (``BeatSet.lead_axis``); default "lead 1", "lead 2", ...
      symmetric: colour scale symmetric around 0 (signed maps); False for |.| maps.
    """
    mpl = _mpl()
    from matplotlib.collections import LineCollection

    x, amap = np.asarray(x), np.asarray(amap)
    T, L = x.shape
    hi = T if hi is None else hi
    t = (np.arange(T) - (r or 0)) / fs
    vals = amap if segments is None else np.asarray(segments)
    finite = vals[np.isfinite(vals)]
    vmax = float(np.max(np.abs(finite))) if finite.size else 1.0
    norm = mpl.colors.Normalize(-vmax if symmetric else float(finite.min() if finite.size else 0), vmax or 1.0)
    cm = mpl.colormaps[cmap]
    fig, axes = _subplots(L, 1, figsize=(8, 2.2 * L), sharex=True, squeeze=False)
    for lead in range(L):
        ax = axes[lead, 0]
        if segments is None:
            pts = np.stack([t, x[:, lead]], 1)
            lc = LineCollection(np.stack([pts[:-1], pts[1:]], 1), cmap=cm, norm=norm, linewidths=2)
            lc.set_array(0.5 * (amap[:-1, lead] + amap[1:, lead]))
            ax.add_collection(lc)
        else:
            S = segments.shape[-1]
            K = S // 2
            for s in range(S):
                v = segments[lead, s]
                if np.isfinite(v):
                    a = (r + (s - K) * seg_len) / fs - (r or 0) / fs
                    ax.axvspan(a, a + seg_len / fs, color=cm(norm(v)), alpha=0.6, lw=0)
            ax.plot(t, x[:, lead], color="k", lw=1)
        if lo > 0:
            ax.axvspan(t[0], t[lo - 1], color="0.85", zorder=0)
        if hi < T:
            ax.axvspan(t[hi], t[-1], color="0.85", zorder=0)
        if r is not None:
            ax.axvline(0, color="k", ls="--", lw=0.8)
        ax.set_xlim(t[0], t[-1])
        pad = 0.05 * (np.ptp(x[:, lead]) or 1)
        ax.set_ylim(x[:, lead].min() - pad, x[:, lead].max() + pad)
        ax.set_ylabel(f"{lead_names[lead] if lead_names else f'lead {lead + 1}'} (a.u.)")
    axes[-1, 0].set_xlabel("time from R (s)" if r is not None else "time (s)")
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cm), ax=axes[:, 0].tolist(), label="attribution")
    if title:
        fig.suptitle(title)
    return fig


def _columns_with_data(*arrays: np.ndarray) -> np.ndarray:
    """bool[K] columns (last axis) finite somewhere in any of ``arrays`` (each f[..., K])."""
    return np.any([np.isfinite(np.asarray(a, float).reshape(-1, np.shape(a)[-1])).any(0) for a in arrays], axis=0)


SEGMENT_AXIS = "0.1 s segment: lead, then - before / + after R"


def plot_class_heatmap(stat: np.ndarray, labels: Sequence[str], classes: Sequence[str], *, title: str = "", cmap: str = "viridis",
                       count: np.ndarray | None = None, value_label: str = "median attribution (a.u.)"):
    """Per-class segment heat map (Fig. 7): rows = classes, columns = the flat segments.

    Segments with no value in any class (outside every window) are left out; NaN
    cells of the rest are grey.

    Args:
      stat: f[C, L, S] (e.g. ``Profiles.median``).
      labels: L*S column names (``Segments.labels``); classes: C row names.
      count: optional i[C, L, S]; classes' beat counts are added to the row labels.
      value_label: the colour bar's label (what ``stat`` is, with its unit).
    """
    mpl = _mpl()
    C = stat.shape[0]
    flat = np.asarray(stat, float).reshape(C, -1)
    keep = _columns_with_data(flat)
    fig, ax = _subplots(figsize=(max(8, 0.3 * keep.sum() + 3), 0.5 * C + 2))
    if not keep.any():
        _no_data(ax, "no segment has a value: every segment lies in padding or outside the windows")
        return fig
    cm = mpl.colormaps[cmap].with_extremes(bad="0.8")
    im = ax.imshow(np.ma.masked_invalid(flat[:, keep]), aspect="auto", cmap=cm, interpolation="nearest")
    ax.set_xticks(range(int(keep.sum())), np.asarray(labels)[keep], rotation=90, fontsize=7)
    rows = list(classes)
    if count is not None:
        rows = [f"{c} (n={int(np.max(count[i]))})" for i, c in enumerate(classes)]
    ax.set_yticks(range(C), rows)
    ax.set_xlabel(SEGMENT_AXIS)
    ax.set_ylabel("class (beats)")
    fig.colorbar(im, ax=ax, label=value_label)
    if title:
        ax.set_title(title)
    return fig


def group_summary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, q25, q75) f64[L*S] over beats of f[n, L, S] segment values (NaN excluded; NaN where no beat has a value)."""
    values = np.asarray(values, float)
    v = values.reshape(values.shape[0], int(np.prod(values.shape[1:])))
    q = np.full((3, v.shape[1]), np.nan)
    ok = np.isfinite(v).any(0)
    if ok.any():
        q[:, ok] = np.nanpercentile(v[:, ok], [50, 25, 75], axis=0)
    return q[0], q[1], q[2]


def plot_group_lines(groups: dict[str, np.ndarray], labels: Sequence[str], *, title: str = "", significant: np.ndarray | None = None,
                     value_label: str = "segment attribution (a.u.)"):
    """Median line and IQR band per group over the segments (Fig. 8).

    Segments with no value in any group are left out; an empty group is named in
    the legend with n=0.

    Args:
      groups: {name: f[n, L, S] segment values of that group}, e.g. total /
        correct / incorrect / mistaken-for class.
      labels: L*S column names.
      significant: optional bool[L*S]; columns marked with * (e.g. BH q < 0.05).
      value_label: what the values are, with the unit (the y label adds "median, IQR").
    """
    flat = {k: np.asarray(v, float).reshape(len(v), len(labels)) for k, v in groups.items()}
    keep = _columns_with_data(*[v for v in flat.values() if len(v)]) if any(len(v) for v in flat.values()) else np.zeros(len(labels), bool)
    fig, ax = _subplots(figsize=(max(8, 0.3 * keep.sum() + 3), 3.5))
    if not keep.any():
        _no_data(ax, "no beats with a segment value in any group: " + ", ".join(f"{k} (n={len(v)})" for k, v in flat.items()))
        if title:
            ax.set_title(title)
        return fig
    xs = np.arange(int(keep.sum()))
    for name, v in flat.items():
        if len(v) == 0:  # an empty group (e.g. no misclassified beats) has no line; it is named in the legend
            ax.plot([], [], ls="none", label=f"{name} (n=0)")
            continue
        med, q25, q75 = group_summary(v[:, keep])
        (ln,) = ax.plot(xs, med, marker=".", label=f"{name} (n={len(v)})")
        ax.fill_between(xs, q25, q75, color=ln.get_color(), alpha=0.2)
    if significant is not None:
        top = ax.get_ylim()[1]
        for i in np.flatnonzero(np.asarray(significant).ravel()[keep]):
            ax.text(i, top, "*", ha="center", va="top")
    ax.set_xticks(xs, np.asarray(labels)[keep], rotation=90, fontsize=7)
    ax.set_xlabel(SEGMENT_AXIS + ("; * BH q < 0.05" if significant is not None else ""))
    ax.set_ylabel(f"{value_label}\nmedian, IQR")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_cascade(result, *, title: str = ""):
    """Median (IQR) Spearman correlation with the original maps after each randomised layer, plus the random control.

    When the correlation is undefined for every beat (maps constant within each
    beat, e.g. Grad-CAM on a one-step feature map) the panel says so instead.
    """
    fig, ax = _subplots(figsize=(7, 3.5))
    ax.set_title(title or f"cascading randomisation: {result.method}")
    if not np.isfinite(result.spearman_signed).any() and not np.isfinite(result.spearman_abs).any():
        _no_data(ax, f"Spearman undefined for all {result.spearman_signed.shape[-1]} beats:\n"
                     "every map is constant within its beat (nothing to rank)")
        return fig
    xs = np.arange(len(result.layers))
    for name, arr, ctrl in (("signed", result.spearman_signed, result.random_signed), ("|.|", result.spearman_abs, result.random_abs)):
        med, q25, q75 = group_summary(np.asarray(arr, float).T)
        (ln,) = ax.plot(xs, med, marker="o", label=f"{name}")
        ax.fill_between(xs, q25, q75, color=ln.get_color(), alpha=0.2)
        c_med = group_summary(np.asarray(ctrl, float)[:, None])[0][0]
        if np.isfinite(c_med):
            ax.axhline(c_med, color=ln.get_color(), ls=":", lw=1, label=f"random control {name}")
    ax.set_xticks(xs, result.layers, rotation=45, ha="right")
    ax.set_xlabel("re-initialised up to layer (output -> input)" if getattr(result, "mode", "cascade") == "cascade"
                  else "re-initialised layer (alone)")
    ax.set_ylabel("Spearman with the trained\nmodel's maps (median, IQR)")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=7)
    return fig


def plot_faithfulness(result, *, title: str = ""):
    """Deletion and insertion curves (mean target probability vs fraction of segments), AUCs in the legend."""
    fig, axes = _subplots(1, 2, figsize=(10, 3.5), sharey=True)
    frac = result.steps / result.steps[-1]
    for ax, curves, aucs, name in ((axes[0], result.deletion, result.deletion_auc, "deletion"),
                                   (axes[1], result.insertion, result.insertion_auc, "insertion")):
        for k, c in curves.items():
            ax.plot(frac, c, label=f"{k} (AUC {np.mean(aucs[k]):.3f})", ls=":" if k == "random_order" else "-")
        ax.set_xlabel(f"fraction of segments {'deleted' if name == 'deletion' else 'inserted'} (of {int(result.steps[-1])})")
        ax.set_title(name)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("target-class probability\n(mean over beats)")
    if title:
        fig.suptitle(title)
    return fig


def plot_example_beats(xs: np.ndarray, maps: np.ndarray, fs: float, *, rs: np.ndarray, his: np.ndarray, titles: Sequence[str],
                       lead_names: Sequence[Sequence[str]] | None = None, value_label: str = "|attribution|", cmap: str = "magma_r"):
    """Several beats, one row each and one column per lead, the |map| as the line's colour (Fig. 5).

    Args:
      xs: f32[K, T, L] beats; maps: f32[K, T, L] non-negative maps (colour scaled per beat,
        one colour bar per row).
      rs: i[K] R positions; his: i[K] end of the real samples (padding not drawn).
      titles: K row titles.
      lead_names: K x L lead names, each beat's own (``BeatSet.lead_axis([n])``); default "lead 1", ...
      value_label: what the colour shows.
    """
    mpl = _mpl()
    from matplotlib.collections import LineCollection

    K, T, L = xs.shape
    names = [list(n) for n in lead_names] if lead_names is not None else [[f"lead {i + 1}" for i in range(L)]] * K
    fig, axes = _subplots(K, L, figsize=(4.5 * L + 1, 1.7 * K + 0.6), squeeze=False, layout="constrained")
    cm = mpl.colormaps[cmap]
    for k in range(K):
        hi = int(his[k])
        t = (np.arange(hi) - rs[k]) / fs
        vmax = float(np.nanmax(maps[k, :hi])) or 1.0
        norm = mpl.colors.Normalize(0, vmax)
        for lead in range(L):
            ax = axes[k, lead]
            pts = np.stack([t, xs[k, :hi, lead]], 1)
            lc = LineCollection(np.stack([pts[:-1], pts[1:]], 1), cmap=cm, norm=norm, linewidths=2)
            lc.set_array(0.5 * (maps[k, : hi - 1, lead] + maps[k, 1:hi, lead]))
            ax.add_collection(lc)
            ax.axvline(0, color="0.5", ls="--", lw=0.6)
            ax.set_xlim(t[0], t[-1])
            y = xs[k, :hi, lead]
            pad = 0.05 * (np.ptp(y) or 1)
            ax.set_ylim(y.min() - pad, y.max() + pad)
            ax.set_ylabel(f"{names[k][lead]} (a.u.)", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.set_title(f"{titles[k]}, {names[k][lead]}", fontsize=8)
        cb = fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cm), ax=axes[k].tolist(), fraction=0.03, pad=0.01)
        cb.set_label(value_label, fontsize=7)
        cb.ax.tick_params(labelsize=6)
    for lead in range(L):
        axes[-1, lead].set_xlabel("time from R (s)")
    return fig


def plot_confusion(cm_norm: np.ndarray, classes: Sequence[str], *, counts: np.ndarray | None = None, title: str = ""):
    """Row-normalised confusion matrix (Fig. 4): rows true, columns predicted; counts written in the cells."""
    C = len(classes)
    fig, ax = _subplots(figsize=(0.6 * C + 2.6, 0.6 * C + 1.6))
    im = ax.imshow(cm_norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(C):
        for j in range(C):
            v = cm_norm[i, j]
            txt = f"{v:.2f}" if counts is None else f"{v:.2f}\n({int(counts[i, j])})"
            ax.text(j, i, txt, ha="center", va="center", fontsize=6, color="white" if v > 0.5 else "black")
    ax.set_xticks(range(C), classes)
    ax.set_yticks(range(C), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_per_class_scores(per_class: dict, *, title: str = ""):
    """Per-class precision, recall and F1 bars (Fig. 6); per_class: {class: {precision, recall, f1, support}}."""
    classes = list(per_class)
    x = np.arange(len(classes))
    fig, ax = _subplots(figsize=(1.0 * len(classes) + 2, 3))
    for k, m in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (k - 1) * 0.27, [per_class[c][m] for c in classes], width=0.27, label=m)
    ax.set_xticks(x, [f"{c}\n(n={per_class[c]['support']})" for c in classes], fontsize=7)
    ax.set_xlabel("class (test beats)")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, ncol=3, loc="lower left")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_noise_curves(rows: Sequence[dict]):
    """Accuracy and profile correlation against SNR, one line per noise type; rows as in the noise stress test."""
    fig, axes = _subplots(1, 2, figsize=(8, 3))
    clean = [r for r in rows if r["snr_db"] is None]
    names = sorted({r["noise"] for r in rows if r["snr_db"] is not None})
    for name in names:
        rs = sorted((r for r in rows if r["noise"] == name), key=lambda r: r["snr_db"])
        snr = [r["snr_db"] for r in rs]
        axes[0].plot(snr, [r["accuracy"] for r in rs], "o-", label=name)
        axes[1].plot(snr, [r["profile_spearman"] for r in rs], "o-", label=name)
    if not names:
        for ax in axes:
            _no_data(ax, "no noisy condition was run")
        return fig
    if clean:
        axes[0].axhline(clean[0]["accuracy"], color="k", ls="--", lw=0.8, label="clean")
    axes[0].set_ylabel("accuracy")
    axes[1].set_ylabel("profile Spearman vs clean")
    for ax in axes:
        ax.set_xlabel("SNR (dB)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_class_lead_matrix(lm, *, title: str = "", cmap: str = "magma"):
    """Zhang et al.'s class x lead matrix: rows = classes (with beat counts), columns = lead names, each cell a share.

    Args:
      lm: an ``ecgjax.analysis.leads.LeadMatrix`` (rows sum to 1; NaN rows are hatched grey).
    """
    mpl = _mpl()
    share = np.asarray(lm.share, float)
    C, L = share.shape
    fig, ax = _subplots(figsize=(1.2 * L + 2.5, 0.5 * C + 1.5))
    cm = mpl.colormaps[cmap].with_extremes(bad="0.8")
    im = ax.imshow(np.ma.masked_invalid(share), aspect="auto", cmap=cm, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(L), list(lm.leads))
    ax.set_yticks(range(C), [f"{c} (n={int(n)})" for c, n in zip(lm.classes, lm.count)])
    ax.set_xlabel("lead")
    ax.set_ylabel("class")
    for i in range(C):
        for j in range(L):
            if np.isfinite(share[i, j]):
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if share[i, j] > 0.5 else "white")
    fig.colorbar(im, ax=ax, label=f"share of class relevance ({lm.transform})")
    ax.set_title(title or "relevance per lead, normalised per class")
    return fig


def plot_morph_strip(beats: np.ndarray, prob: np.ndarray, fs: float, *, r: int, lead_names: Sequence[str],
                     target: str, units: str = "per-lead z-score", title: str = ""):
    """A traversal's generated beats, one panel per lead, coloured by the classifier's probability of the target.

    Args:
      beats: f32[P, T, L] the decoded points along one path (``Traversal.beats[b]``).
      prob: f32[P] the target's probability at each point.
      fs: Hz; r: the R position in the window (time axis relative to R).
      lead_names: L names; target: the target class's name; units: the beats' amplitude unit.
    """
    mpl = _mpl()
    beats, prob = np.asarray(beats), np.asarray(prob)
    P, T, L = beats.shape
    t = (np.arange(T) - r) / fs
    norm = mpl.colors.Normalize(0.0, 1.0)
    cm = mpl.colormaps["plasma"]
    fig, axes = _subplots(L, 1, figsize=(7, 2.2 * L + 0.6), sharex=True, squeeze=False, layout="constrained")
    for lead in range(L):
        ax = axes[lead, 0]
        for p in range(P):
            ax.plot(t, beats[p, :, lead], color=cm(norm(prob[p])), lw=1.6 if p in (0, P - 1) else 0.8,
                    ls="--" if p == 0 else "-")
        ax.axvline(0, color="k", ls=":", lw=0.8)
        ax.set_ylabel(f"{lead_names[lead]} ({units})")
    axes[-1, 0].set_xlabel("time from R (s)")
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cm), ax=axes[:, 0].tolist(), label=f"P({target})")
    fig.suptitle(title or f"towards {target}: dashed = start (the beat's reconstruction), bold = end")
    return fig


def plot_change_heatmap(change: np.ndarray, labels: Sequence[str], *, profile: np.ndarray | None = None,
                        row_label: str = "position along the path", units: str = "per-lead z-score", title: str = "",
                        column_axis: str = SEGMENT_AXIS):
    """How much each 0.1 s segment (or wave) changed, as a heat map with a colour bar, and the class's saliency
    profile beside it.

    Args:
      change: f[R, K] per-segment change (rows: points along the path, or beats), NaN outside the signal.
      labels: K column names (``lead-k`` / ``lead+k``; per wave ``lead:wave``).
      profile: optional f[K] the target class's saliency profile, drawn under the map (scaled to its maximum,
        with the last row of ``change`` scaled the same way, for comparing their shapes).
      column_axis: what a column is (the x-axis label).
    """
    mpl = _mpl()
    change = np.asarray(change, float)
    keep = _columns_with_data(change)
    rows = 2 if profile is not None else 1
    fig, axes = _subplots(rows, 1, figsize=(max(7, 0.35 * keep.sum() + 3), 3.2 * rows), squeeze=False, layout="constrained")
    ax = axes[0, 0]
    if not keep.any():
        _no_data(ax, "no column has a value: every segment lies in padding, or no beat was delineated")
        return fig
    cm = mpl.colormaps["magma"].with_extremes(bad="0.8")
    im = ax.imshow(np.ma.masked_invalid(change[:, keep]), aspect="auto", cmap=cm, interpolation="nearest")
    cols = np.asarray(labels)[keep]
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # rows are points or beats: whole numbers
    ax.set_ylabel(row_label)
    fig.colorbar(im, ax=ax, label=f"mean |change| ({units})")
    if title:
        ax.set_title(title)
    if profile is not None:
        ax2 = axes[1, 0]
        prof = np.asarray(profile, float)[keep]
        end = change[-1, keep]
        x = np.arange(len(cols))
        ax2.bar(x - 0.2, end / (np.nanmax(end) or 1), 0.4, label="change at the path's end")
        ax2.bar(x + 0.2, prof / (np.nanmax(prof) or 1), 0.4, label="saliency profile of the target class")
        ax2.set_xticks(x, cols, rotation=90, fontsize=7)
        ax2.set_xlabel(column_axis)
        ax2.set_ylabel("fraction of the maximum")
        ax2.legend(fontsize=7)
    else:
        ax.set_xlabel(column_axis)
    return fig


def plot_road(result, *, title: str = ""):
    """ROAD's MoRF and LeRF curves (mean target probability vs share of segments removed and imputed), AUCs in the legend."""
    fig, axes = _subplots(1, 2, figsize=(10, 3.5), sharey=True)
    for ax, curves, aucs, name in ((axes[0], result.morf, result.morf_auc, "MoRF: most relevant removed first (lower = better)"),
                                   (axes[1], result.lerf, result.lerf_auc, "LeRF: least relevant removed first (higher = better)")):
        for k, c in curves.items():
            ax.plot(result.fractions, c, marker=".", label=f"{k} (AUC {np.mean(aucs[k]):.3f})", ls=":" if k == "random_order" else "-")
        ax.set_xlabel("share of real 0.1 s segments removed (noisy linear imputation)")
        ax.set_title(name, fontsize=9)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("target-class probability\n(mean over beats)")
    if title:
        fig.suptitle(title)
    return fig


def plot_glocal(table, labels: Sequence[str], *, title: str = "", value_label: str = "mean |attribution| (a.u.)"):
    """Glocal aggregation: one panel per class, one line per subgroup (mean, record-bootstrap CI band) over the
    aligned positions.

    Args:
      table: an ``ecgjax.analysis.glocal.GlocalTable``; labels: the L*S position names.
    """
    G, C = table.mean.shape[:2]
    flat = lambda a: np.asarray(a, float).reshape(G, C, -1)  # noqa: E731
    mean, lo, hi = flat(table.mean), flat(table.ci_lo), flat(table.ci_hi)
    keep = _columns_with_data(mean.reshape(-1, mean.shape[-1]))
    fig, axes = _subplots(C, 1, figsize=(max(8, 0.25 * keep.sum() + 3), 2.2 * C + 0.8), squeeze=False, sharex=True)
    xs = np.arange(int(keep.sum()))
    for c, ax in enumerate(axes[:, 0]):
        if not keep.any() or not np.isfinite(mean[:, c][:, keep]).any():
            _no_data(ax, f"{table.classes[c]}: no beats in any {table.subgrouping or 'group'}")
            continue
        for g in range(G):
            if table.n_beats[g, c] == 0:
                continue
            (ln,) = ax.plot(xs, mean[g, c, keep], marker=".", label=f"{table.groups[g]} (n={table.n_beats[g, c]}, "
                                                                     f"{table.n_records[g, c]} rec.)")
            ax.fill_between(xs, lo[g, c, keep], hi[g, c, keep], color=ln.get_color(), alpha=0.2)
        ax.set_ylabel(f"{table.classes[c]}", rotation=0, ha="right")
        ax.legend(fontsize=6, loc="upper right")
    axes[-1, 0].set_xticks(xs, np.asarray(labels)[keep], rotation=90, fontsize=6)
    axes[-1, 0].set_xlabel(SEGMENT_AXIS)
    fig.suptitle(title or f"{value_label} by {table.subgrouping}: mean and {int(100 * table.ci)}% CI over records")
    return fig


def plot_split_half(result, *, title: str = ""):
    """Split-half stability: per class, the distribution over random record splits of the correlation between
    the two halves' class profiles."""
    fig, ax = _subplots(figsize=(1.0 * len(result.classes) + 3, 3.5))
    data, names = [], []
    for c, name in enumerate(result.classes):
        v = result.r[:, c][np.isfinite(result.r[:, c])]
        if len(v):
            data.append(v)
            names.append(f"{name}\n({result.n_records[c]} rec.)")
    if not data:
        _no_data(ax, "no class has beats in both halves of any split")
        return fig
    ax.boxplot(data, whis=(2.5, 97.5), showfliers=False)
    ax.set_xticks(range(1, len(data) + 1), names)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_ylim(-1.05, 1.05)
    ax.set_ylabel("Pearson r, half A vs half B\nclass profile (2.5-97.5 %)")
    ax.set_title(title or f"split-half stability over {result.r.shape[0]} random splits of the records")
    return fig


def plot_cluster_centroids(clusters: dict, labels: Sequence[str], *, title: str = ""):
    """Clusters of aligned relevance within each class: one panel per class, each cluster's centroid as a line.

    Args:
      clusters: {class name: ``ecgjax.analysis.clusters.Clusters``}; labels: the L*S position names.
    """
    fig, axes = _subplots(max(1, len(clusters)), 1, figsize=(10, 2.2 * max(1, len(clusters)) + 0.8), squeeze=False)
    if not clusters:
        _no_data(axes[0, 0], "no class had enough beats to cluster")
        return fig
    for ax, (name, c) in zip(axes[:, 0], clusters.items()):
        xs = np.arange(int(np.sum(c.kept)))
        for j, cen in enumerate(c.centroids):
            ax.plot(xs, cen, marker=".", label=f"cluster {j + 1} (n={int(c.sizes[j])})")
        ax.set_title(f"{name}: k={c.k}, silhouette {c.silhouette:.2f}, adjusted Rand vs records {c.ari_record:.2f}", fontsize=9)
        ax.set_xticks(xs, np.asarray(labels)[np.asarray(c.kept)], rotation=90, fontsize=6)
        ax.set_ylabel("share of\nrelevance")
        ax.legend(fontsize=6, loc="upper right")
    axes[-1, 0].set_xlabel(SEGMENT_AXIS)
    if title:
        fig.suptitle(title)
    return fig


def plot_tcav(rows: Sequence[dict], *, alpha: float, title: str = ""):
    """TCAV scores per concept and class (mean and sd over the CAVs), the random-CAV mean as a dot; * marks
    a score significantly different from the random ones (p < ``alpha``).

    Args:
      rows: ``TcavResult.summary()`` dicts.
    """
    fig, ax = _subplots(figsize=(max(6, 0.5 * len(rows) + 2), 3.5))
    if not rows:
        _no_data(ax, "no concept had enough example beats")
        return fig
    concepts = sorted({r["concept"] for r in rows})
    classes = sorted({r["class"] for r in rows}, key=[r["class"] for r in rows].index)
    w = 0.8 / max(1, len(concepts))
    for i, con in enumerate(concepts):
        sub = {r["class"]: r for r in rows if r["concept"] == con}
        xs = np.array([j + (i - (len(concepts) - 1) / 2) * w for j, c in enumerate(classes) if c in sub])
        rs = [sub[c] for c in classes if c in sub]
        ax.bar(xs, [r["score_mean"] for r in rs], w, yerr=[r["score_sd"] for r in rs], label=con, alpha=0.8)
        ax.plot(xs, [r["random_mean"] for r in rs], "k.", ms=4)
        for x, r in zip(xs, rs):
            if r["p_value"] < alpha:
                ax.text(x, min(1.02, r["score_mean"] + r["score_sd"] + 0.02), "*", ha="center")
    ax.set_xticks(range(len(classes)), classes)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("TCAV score (share of the class's\nbeats pushed up by the concept)")
    ax.set_xlabel(f"class (black dots: random CAVs; * p < {alpha:.2g})")
    ax.legend(fontsize=7)
    ax.set_title(title or "TCAV")
    return fig


def plot_ground_truth_shares(targets: dict, *, title: str = ""):
    """The ground-truth check: per target, each method's mean share of |attribution| in the defining segment
    (bars, record-bootstrap CI) with the random-map (dashed) and |x|-proportional (dotted) levels.

    Args:
      targets: ``{target: {"methods": {method: {"share", "share_ci", "random", "amplitude"} | {"skipped"}}}}``
        (``ecgjax.study.groundtruth.ground_truth_check``'s ``"targets"``).
    """
    fig, axes = _subplots(1, max(len(targets), 1), figsize=(4.2 * max(len(targets), 1), 3.6), squeeze=False)
    for ax, (target, res) in zip(axes[0], targets.items()):
        rows = {m: s for m, s in res["methods"].items() if "share" in s}
        if not rows:
            _no_data(ax, "no method applied")
            continue
        names = sorted(rows, key=lambda m: -np.nan_to_num(rows[m]["share"], nan=-1))
        share = np.array([rows[m]["share"] for m in names])
        ci = np.array([rows[m]["share_ci"] for m in names], float)
        err = np.abs(np.stack([share - ci[:, 0], ci[:, 1] - share]))
        ax.barh(np.arange(len(names)), share, xerr=np.nan_to_num(err), color="tab:blue", alpha=0.8)
        first = rows[names[0]]
        ax.axvline(first["random"], color="k", ls="--", lw=1, label="random map")
        ax.axvline(first["amplitude"], color="tab:red", ls=":", lw=1.5, label="|x|-proportional")
        ax.set_yticks(np.arange(len(names)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of |attribution| in the defining segment")
        ax.set_title(target, fontsize=9)
        ax.legend(fontsize=6, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
