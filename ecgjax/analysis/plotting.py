"""Figures (matplotlib imported inside each function, Agg backend, never ``plt.show()``).

Every function returns a ``matplotlib.figure.Figure``; :func:`save_figure`
writes it atomically. Figure numbers refer to Jones et al. 2020.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return matplotlib, plt


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``fig`` to ``path`` (format from the suffix) via a temporary file and ``os.replace``; closes it."""
    _, plt = _mpl()
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    root, ext = os.path.splitext(path)
    tmp = f"{root}.{os.getpid()}.tmp{ext}"
    fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    os.replace(tmp, path)
    plt.close(fig)


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
      symmetric: colour scale symmetric around 0 (signed maps); False for |.| maps.
    """
    mpl, plt = _mpl()
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
    fig, axes = plt.subplots(L, 1, figsize=(8, 2.2 * L), sharex=True, squeeze=False)
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
        ax.set_ylabel(lead_names[lead] if lead_names else f"lead {chr(65 + lead)}")
    axes[-1, 0].set_xlabel("time from R (s)" if r is not None else "time (s)")
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cm), ax=axes[:, 0].tolist(), label="attribution")
    if title:
        fig.suptitle(title)
    return fig


def plot_class_heatmap(stat: np.ndarray, labels: Sequence[str], classes: Sequence[str], *, title: str = "", cmap: str = "viridis",
                       count: np.ndarray | None = None):
    """Per-class segment heat map (Fig. 7): rows = classes, columns = the flat segments.

    Args:
      stat: f[C, L, S] (e.g. ``Profiles.median``); NaN cells are hatched grey.
      labels: L*S column names (``Segments.labels``); classes: C row names.
      count: optional i[C, L, S]; classes' beat counts are added to the row labels.
    """
    mpl, plt = _mpl()
    C = stat.shape[0]
    flat = np.asarray(stat, float).reshape(C, -1)
    fig, ax = plt.subplots(figsize=(max(8, 0.25 * flat.shape[1]), 0.5 * C + 1.5))
    cm = mpl.colormaps[cmap].with_extremes(bad="0.8")
    im = ax.imshow(np.ma.masked_invalid(flat), aspect="auto", cmap=cm, interpolation="nearest")
    ax.set_xticks(range(flat.shape[1]), labels, rotation=90, fontsize=7)
    rows = list(classes)
    if count is not None:
        rows = [f"{c} (n={int(np.max(count[i]))})" for i, c in enumerate(classes)]
    ax.set_yticks(range(C), rows)
    fig.colorbar(im, ax=ax, label="median attribution")
    if title:
        ax.set_title(title)
    return fig


def group_summary(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(median, q25, q75) f64[L*S] over beats of f[n, L, S] segment values (NaN excluded)."""
    import warnings

    values = np.asarray(values, float)
    v = values.reshape(values.shape[0], int(np.prod(values.shape[1:])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(v, [50, 25, 75], axis=0) if len(v) else np.full((3, v.shape[1]), np.nan)
    return q[0], q[1], q[2]


def plot_group_lines(groups: dict[str, np.ndarray], labels: Sequence[str], *, title: str = "", significant: np.ndarray | None = None):
    """Median line and IQR band per group over the flat segments (Fig. 8).

    Args:
      groups: {name: f[n, L, S] segment values of that group}, e.g. total /
        correct / incorrect / mistaken-for class.
      labels: L*S column names.
      significant: optional bool[L*S]; columns marked with * (e.g. BH q < 0.05).
    """
    _, plt = _mpl()
    fig, ax = plt.subplots(figsize=(max(8, 0.25 * len(labels)), 3.5))
    xs = np.arange(len(labels))
    for name, v in groups.items():
        if len(v) == 0:  # an empty group (e.g. no misclassified beats) has no line; it is named in the legend
            ax.plot([], [], ls="none", label=f"{name} (n=0)")
            continue
        med, q25, q75 = group_summary(v)
        (ln,) = ax.plot(xs, med, marker=".", label=f"{name} (n={len(v)})")
        ax.fill_between(xs, q25, q75, color=ln.get_color(), alpha=0.2)
    if significant is not None:
        top = ax.get_ylim()[1]
        for i in np.flatnonzero(significant):
            ax.text(i, top, "*", ha="center", va="top")
    ax.set_xticks(xs, labels, rotation=90, fontsize=7)
    ax.set_ylabel("segment attribution (median, IQR)")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def plot_cascade(result, *, title: str = ""):
    """Median (IQR) Spearman correlation with the original maps after each randomised layer, plus the random control."""
    _, plt = _mpl()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = np.arange(len(result.layers))
    for name, arr, ctrl in (("signed", result.spearman_signed, result.random_signed), ("|.|", result.spearman_abs, result.random_abs)):
        q = np.nanpercentile(arr, [25, 50, 75], axis=1)
        (ln,) = ax.plot(xs, q[1], marker="o", label=f"{name}")
        ax.fill_between(xs, q[0], q[2], color=ln.get_color(), alpha=0.2)
        ax.axhline(np.nanmedian(ctrl), color=ln.get_color(), ls=":", lw=1, label=f"random control {name}")
    ax.set_xticks(xs, result.layers, rotation=45, ha="right")
    ax.set_xlabel("re-initialised up to (output -> input)")
    ax.set_ylabel("Spearman vs original")
    ax.set_ylim(-1.05, 1.05)
    ax.legend(fontsize=7)
    ax.set_title(title or f"cascading randomisation: {result.method}")
    return fig


def plot_faithfulness(result, *, title: str = ""):
    """Deletion and insertion curves (mean target probability vs fraction of segments), AUCs in the legend."""
    _, plt = _mpl()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    frac = result.steps / result.steps[-1]
    for ax, curves, aucs, name in ((axes[0], result.deletion, result.deletion_auc, "deletion"),
                                   (axes[1], result.insertion, result.insertion_auc, "insertion")):
        for k, c in curves.items():
            ax.plot(frac, c, label=f"{k} (AUC {np.mean(aucs[k]):.3f})", ls=":" if k == "random_order" else "-")
        ax.set_xlabel("fraction of segments")
        ax.set_title(name)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("target probability")
    if title:
        fig.suptitle(title)
    return fig
