"""Zhang et al.'s class x lead matrix on planted data (known shares), and its figure."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.analysis import class_lead_matrix, lead_relevance, plotting


def _planted(rng, n_per_class=20, T=50):
    """Class 0: all relevance in lead 0; class 1: lead 1 carries 3x lead 0; class 2: only negative values in lead 1."""
    maps, y = [], []
    for c in range(3):
        m = np.zeros((n_per_class, T, 2))
        amp = rng.uniform(0.5, 1.5, size=(n_per_class, T))
        if c == 0:
            m[..., 0] = amp
        elif c == 1:
            m[..., 0], m[..., 1] = amp, 3 * amp
        else:
            m[..., 0], m[..., 1] = amp, -amp
        maps.append(m), y.append(np.full(n_per_class, c))
    return np.concatenate(maps), np.concatenate(y)


def test_class_lead_matrix_planted_shares():
    maps, y = _planted(np.random.default_rng(0))
    lm = class_lead_matrix(lead_relevance(maps), y, ("N", "V", "A", "F"), ("MLII", "V1"))
    np.testing.assert_allclose(lm.share[:3], [[1.0, 0.0], [0.25, 0.75], [0.5, 0.5]], atol=1e-12)
    assert np.all(np.isnan(lm.share[3])) and lm.count.tolist() == [20, 20, 20, 0]  # a class without beats: no shares
    np.testing.assert_allclose(np.nansum(lm.share, 1)[:3], 1.0)
    # the un-normalised means: per beat the sum over time, averaged over the class
    np.testing.assert_allclose(lm.relevance[1, 1], np.abs(maps[y == 1, :, 1]).sum(1).mean())
    relu = class_lead_matrix(lead_relevance(maps, transform="relu"), y, ("N", "V", "A"), ("MLII", "V1"), transform="relu")
    np.testing.assert_allclose(relu.share[2], [1.0, 0.0])
    signed = class_lead_matrix(lead_relevance(maps, transform="signed"), y, ("N", "V", "A"), ("MLII", "V1"), transform="signed")
    assert np.all(np.isnan(signed.share[2]))  # signed total 0: no shares rather than a division by ~0


def test_lead_relevance_leaves_padding_out():
    maps = np.ones((2, 10, 2))
    rel = lead_relevance(maps, lo=np.array([0, 2]), hi=np.array([10, 5]))
    np.testing.assert_allclose(rel, [[10, 10], [3, 3]])


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="transform"):
        lead_relevance(np.zeros((1, 3, 2)), transform="square")
    with pytest.raises(ValueError, match="2 lead names"):
        class_lead_matrix(np.zeros((4, 3)), np.zeros(4, int), ("N",), ("I", "II"))
    with pytest.raises(ValueError, match="index the 1 classes"):
        class_lead_matrix(np.zeros((4, 2)), np.array([0, 0, 1, 0]), ("N",), ("I", "II"))


def test_figure_renders(tmp_path):
    maps, y = _planted(np.random.default_rng(1))
    lm = class_lead_matrix(lead_relevance(maps), y, ("N", "V", "A", "F"), ("MLII", "V1"))
    fig = plotting.plot_class_lead_matrix(lm)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["MLII", "V1"]
    assert ax.get_xlabel() == "lead" and ax.get_ylabel() == "class"
    assert [t.get_text() for t in ax.get_yticklabels()][1] == "V (n=20)"
    assert len(fig.axes) == 2  # the colour bar
    plotting.save_figure(fig, tmp_path / "leads.png")
    assert (tmp_path / "leads.png").stat().st_size > 1000
