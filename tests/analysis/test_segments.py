"""The vectorised segmenter against a plain Python loop."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.analysis import segment_values
from ecgjax.analysis.segments import segment_labels


def _loop(maps, r, lo, hi, w, K, reduce, mode, min_cov):
    N, T, L = maps.shape
    out = np.full((N, L, 2 * K), np.nan)
    cov = np.zeros((N, L, 2 * K))
    for n in range(N):
        bounds = [(r[n] - k * w, r[n] - (k - 1) * w) for k in range(K, 0, -1)] + [(r[n] + (k - 1) * w, r[n] + k * w) for k in range(1, K + 1)]
        for s, (a, b) in enumerate(bounds):
            lo_e, hi_e = (0, T) if mode == "paper" else (max(lo[n], 0), min(hi[n], T))
            ts = [t for t in range(a, b) if lo_e <= t < hi_e]
            for lead in range(L):
                cov[n, lead, s] = len(ts) / w
                if not ts or (mode == "valid" and len(ts) / w < min_cov):
                    continue
                v = maps[n, ts, lead]
                out[n, lead, s] = {"mean": np.mean(v), "max": np.max(v), "absmean": np.mean(np.abs(v))}[reduce]
    return out, cov


@pytest.mark.parametrize("reduce", ["mean", "max", "absmean"])
@pytest.mark.parametrize("mode,min_cov", [("valid", 1.0), ("valid", 0.5), ("paper", 1.0)])
def test_segmenter_equals_loop(reduce, mode, min_cov):
    rng = np.random.default_rng(0)
    N, T, L, fs = 40, 430, 2, 360.0
    maps = rng.normal(size=(N, T, L)).astype(np.float32)
    r = rng.integers(0, T, N)
    lo = np.minimum(rng.integers(0, 60, N), r)
    hi = np.maximum(rng.integers(200, T + 1, N), r + 1)
    seg = segment_values(maps, r, lo, hi, fs, reduce=reduce, mode=mode, min_coverage=min_cov, chunk=7)
    ref, cov = _loop(maps, r, lo, hi, 36, 12, reduce, mode, min_cov)
    np.testing.assert_allclose(seg.values, ref, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(seg.coverage, cov, rtol=1e-6)
    assert np.isnan(seg.values).any() and np.isfinite(seg.values).any()


def test_padding_never_averaged_in_valid_mode():
    T = 430
    maps = np.zeros((1, T, 2), np.float32)
    maps[0, :200] = 1.0  # real signal is 1, padding (t >= 200) is 0
    seg = segment_values(maps, np.array([100]), np.array([0]), np.array([200]), 360.0)
    v = seg.values[0, 0]
    assert np.all((v == 1.0) | np.isnan(v))  # no value diluted by padding zeros
    # +3 covers [172, 208): 28 of 36 samples real -> excluded at min_coverage=1, kept in paper mode as a diluted mean
    i = seg.labels.index("L1+3")
    assert np.isnan(v[i]) and seg.coverage[0, 0, i] == pytest.approx(28 / 36)
    paper = segment_values(maps, np.array([100]), np.array([0]), np.array([200]), 360.0, mode="paper")
    assert paper.values[0, 0, i] == pytest.approx(28 / 36)


def test_fs_aware_lengths_and_labels():
    maps = np.ones((2, 300, 2), np.float32)
    s360 = segment_values(maps, np.array([150, 150]), np.array([0, 0]), np.array([300, 300]), 360.0, n_per_side=3)
    s250 = segment_values(maps, np.array([150, 150]), np.array([0, 0]), np.array([300, 300]), 250.0, n_per_side=3)
    assert s360.seg_len == 36 and s250.seg_len == 25
    np.testing.assert_allclose(s250.offsets_s, [-0.3, -0.2, -0.1, 0.0, 0.1, 0.2])
    assert segment_labels(2, 12)[:2] == ("L1-12", "L1-11") and segment_labels(2, 12)[23:26] == ("L1+12", "L2-12", "L2-11")
    assert segment_labels(("MLII", "V1"), 2) == ("MLII-2", "MLII-1", "MLII+1", "MLII+2", "V1-2", "V1-1", "V1+1", "V1+2")
    named = segment_values(maps, np.array([150, 150]), np.array([0, 0]), np.array([300, 300]), 360.0, n_per_side=3, lead_names=("MLII", "V5"))
    assert named.labels[:4] == ("MLII-3", "MLII-2", "MLII-1", "MLII+1") and named.labels[-1] == "V5+3"
    with pytest.raises(ValueError, match="1 names for 2 leads"):
        segment_values(maps, np.array([150, 150]), np.array([0, 0]), np.array([300, 300]), 360.0, lead_names=("MLII",))
    assert s360.flat().shape == (2, 12)


def test_segmenter_errors():
    with pytest.raises(ValueError, match="reduce"):
        segment_values(np.zeros((1, 10, 1)), np.array([5]), np.array([0]), np.array([10]), 360.0, reduce="median")
    with pytest.raises(ValueError, match="shape"):
        segment_values(np.zeros((2, 10, 1)), np.array([5]), np.array([0]), np.array([10]), 360.0)
