"""Expert-rule statistics: wave shares in closed form, a planted QRS focus found and tested."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.study.expert_rules import rule_stats, wave_shares


def _bounds(n):
    return np.tile(np.array([10, 20, 30, 50, 60, 90], np.float32), (n, 1))  # P 10, PR 10, QRS 20, ST 10, T 30


def test_wave_shares_closed_form():
    N, T = 2, 100
    maps = np.zeros((N, T, 3), np.float32)  # 2 leads + 1 RR channel
    maps[0, 30:50, :2] = 1.0  # beat 0: everything in the QRS
    maps[1, :, :2] = 1.0  # beat 1: uniform over the waveform...
    maps[1, :, 2] = 1.0  # ... and half as much (1 channel of 3) on the RR feature
    x = np.ones((N, T, 3), np.float32)
    s = wave_shares(maps, x, _bounds(N), np.zeros(N, int), np.full(N, T), n_leads=2)
    np.testing.assert_allclose(s["share"][0], [0, 0, 1, 0, 0])
    np.testing.assert_allclose(s["uniform"][0], [0.1, 0.1, 0.2, 0.1, 0.3])
    np.testing.assert_allclose(s["share"][1], s["uniform"][1])
    np.testing.assert_allclose(s["amplitude"], s["uniform"])
    np.testing.assert_allclose(s["rr_share"], [0, 1 / 3])


def test_planted_qrs_focus_is_enriched_and_significant():
    rng = np.random.default_rng(0)
    N, T = 80, 100
    maps = rng.random((N, T, 2)).astype(np.float32)
    maps[:, 30:50] *= 4  # relevance density 4x in the QRS
    s = wave_shares(maps, np.ones_like(maps), _bounds(N), np.zeros(N, int), np.full(N, T), n_leads=2)
    record = np.repeat(np.arange(8).astype(str), 10)
    st = rule_stats(s, record, "QRS", n_boot=200)
    assert st["enrichment"] == pytest.approx(4 / (0.2 * 4 + 0.8), rel=0.05)  # 2.5
    assert st["enrichment_others"] == pytest.approx(1 / 1.6, rel=0.05)
    assert st["p"] < 0.01 and st["p_records"] == 8
    assert st["share_ci"][0] <= st["share"] <= st["share_ci"][1] and st["uniform"] == pytest.approx(0.2)
    flat = rule_stats(wave_shares(rng.random((N, T, 2)), np.ones((N, T, 2)), _bounds(N), np.zeros(N, int), np.full(N, T), 2),
                      record, "QRS", n_boot=50)
    assert flat["enrichment"] == pytest.approx(1.0, abs=0.05) and flat["p"] > 0.01
