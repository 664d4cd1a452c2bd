"""The segmenter on real MIT-BIH beats (jones2020 protocol): padding is excluded in valid mode, included in paper mode."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.analysis import segment_values


@pytest.mark.realdata
def test_segments_on_real_beats(real_data_dir):
    from ecgjax import data

    # five records of the default suite's real-data set (tests/data/test_realdata.py): N, V, L, R, A and paced beats
    b = data.load_beats(data.protocols.get("jones2020", records=("100", "124", "207", "217", "232")), data_dir=real_data_dir)
    idx = np.random.default_rng(0).choice(len(b), 3000, replace=False)
    x, r, lo, hi = b.x[idx], b.r[idx], b.lo[idx], b.hi[idx]
    v = segment_values(x, r, lo, hi, b.fs)
    p = segment_values(x, r, lo, hi, b.fs, mode="paper")
    assert v.seg_len == 36 and v.labels[11:13] == ("L1-1", "L1+1")
    defined = np.isfinite(v.values)
    assert np.all(v.coverage[defined] == 1.0)  # valid mode: every defined value is all real signal
    assert defined[:, 0, 12].mean() > 0.99  # L1+1 exists for (almost) every beat
    # the paper's +A8 (L1+8) column is mostly zero padding: defined in paper mode, not in valid mode
    i = v.labels.index("L1+8")
    assert np.isfinite(p.values[:, 0, i]).mean() > 0.5 and defined[:, 0, i].mean() < 0.01

