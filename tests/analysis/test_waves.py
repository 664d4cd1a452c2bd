"""Wave masks and wave values: closed-form cases and a direct loop as reference."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.analysis.profiles import class_profiles
from ecgjax.analysis.waves import wave_labels, wave_masks, wave_values


def test_wave_masks_closed_form():
    b = np.array([[1, 3, 4, 7, 8, 10], [np.nan, 2, 2, 5, 5, 20]], float)
    m = wave_masks(b, 12)
    assert m.shape == (2, 5, 12)
    exp0 = {0: [1, 2], 1: [3], 2: [4, 5, 6], 3: [7], 4: [8, 9]}
    for w, ts in exp0.items():
        assert np.flatnonzero(m[0, w]).tolist() == ts
    # beat 1: P onset missing -> no P; PR empty (2 == 2); T clipped to the window
    assert not m[1, 0].any() and not m[1, 1].any() and not m[1, 3].any()
    assert np.flatnonzero(m[1, 2]).tolist() == [2, 3, 4]
    assert np.flatnonzero(m[1, 4]).tolist() == list(range(5, 12))
    # ordered bounds: the masks never overlap
    assert m[0].sum(0).max() == 1
    # the valid range clips
    mv = wave_masks(b, 12, lo=np.array([2, 0]), hi=np.array([12, 6]))
    assert np.flatnonzero(mv[0, 0]).tolist() == [2]
    assert np.flatnonzero(mv[1, 4]).tolist() == [5]


def test_wave_values_match_a_direct_loop():
    rng = np.random.default_rng(0)
    N, T, L = 7, 40, 2
    maps = rng.normal(size=(N, T, L)).astype(np.float32)
    starts = np.sort(rng.integers(-5, 45, size=(N, 6)), axis=1).astype(float)
    starts[2, 0] = np.nan
    m = wave_masks(starts, T)
    for reduce in ("mean", "sum", "absmean", "abssum"):
        got = wave_values(maps, m, reduce=reduce)
        assert got.shape == (N, L, 5)
        for n in range(N):
            for w in range(5):
                a, b = starts[n, w], starts[n, w + 1]
                ts = [t for t in range(T) if a <= t < b]
                for lead in range(L):
                    v = maps[n, ts, lead].astype(np.float64)
                    v = np.abs(v) if reduce.startswith("abs") else v
                    ref = np.nan if not ts else (v.mean() if reduce.endswith("mean") else v.sum())
                    np.testing.assert_allclose(got[n, lead, w], ref, rtol=1e-5, atol=1e-6, equal_nan=True)


def test_wave_values_feed_class_profiles():
    maps = np.zeros((4, 10, 1), np.float32)
    maps[:, 4:6] = 1.0  # all relevance in the QRS
    b = np.tile([0, 2, 4, 6, 8, 10], (4, 1)).astype(float)
    v = wave_values(maps, wave_masks(b, 10), reduce="abssum")
    prof = class_profiles(v, np.array([0, 0, 1, 1]), np.array(["a", "a", "b", "b"]), idx=np.arange(4), n_boot=0)
    np.testing.assert_array_equal(prof.median[:, 0], [[0, 0, 2, 0, 0]] * 2)
    assert wave_labels(["MLII", "V1"])[:6] == ("MLII:P", "MLII:PR", "MLII:QRS", "MLII:ST", "MLII:T", "V1:P")


def test_wave_inputs_checked():
    with pytest.raises(ValueError, match="bounds must be"):
        wave_masks(np.zeros((3, 5)), 10)
    with pytest.raises(ValueError, match="disagree"):
        wave_values(np.zeros((2, 10, 1)), np.zeros((2, 5, 9), bool))


def test_usable_wave_values_leave_out_failed_delineations_and_count_them():
    """A beat whose delineation failed the quality flag (its bounds here put all of its huge map in the QRS) is not
    averaged; the counts say, per class, how many beats were usable of how many."""
    from ecgjax.analysis.glocal import glocal_means
    from ecgjax.analysis.waves import usable_wave_values

    T = 10
    maps = np.zeros((5, T, 1), np.float32)
    maps[:, 4:6] = 1.0  # relevance in the QRS (samples 4, 5) of every beat
    maps[3, 4:6] = 100.0  # beat 3: a failed delineation with a huge map
    b = np.tile([0, 2, 4, 6, 8, 10], (5, 1)).astype(float)
    quality = np.array([True, True, True, False, True])
    label = np.array([0, 1, 1, 1, 0])
    v, keep, counts = usable_wave_values(maps, b, quality, label, ("N", "V", "S"))
    np.testing.assert_array_equal(keep, quality)
    assert v.shape == (4, 1, 5) and counts == {"N": [2, 2], "V": [2, 3]}
    np.testing.assert_array_equal(v, wave_values(maps[quality], wave_masks(b[quality], T)))
    rec = np.array(["r1", "r2", "r1", "r2", "r2"])
    g = glocal_means(v, label[keep], rec[keep], ("N", "V", "S"), {"r1": "all", "r2": "all"}, subgrouping="all", n_boot=0)
    assert g.mean[0, 1, 0, 2] == 1.0  # V's mean QRS relevance: beat 3's 100 is left out
    with pytest.raises(ValueError, match="disagree"):
        usable_wave_values(maps, b, quality[:4], label, ("N", "V"))
