"""Beat windows on tiny records written with wfdb's writers; bounds computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.data import load_beats, protocols
from ecgjax.data.beats import beat_rr, extract_record_beats, midpoint_bounds, normalise


def load(db, name, records, **overrides):
    """Beats of ``records`` under preset ``name`` with raw (un-normalised) values."""
    overrides.setdefault("normalisation", "none")
    proto = protocols.get(name, records=tuple(records), **overrides)
    return load_beats(proto, db.root, cache=False, download=False)


def windows(beats):
    """(start, end) of each window in record samples: start = sample - r."""
    start = beats.sample - beats.r
    return list(zip(start.tolist(), (start + beats.hi).tolist()))


def assert_windows_match_signal(db, beats):
    """Every window is the record's samples [start, start + hi), zero after; x[n, r[n]] is the
    signal at the annotation sample."""
    for rec in np.unique(beats.record):
        sig = db.physical(rec)
        for n in np.flatnonzero(beats.record == rec):
            start = beats.sample[n] - beats.r[n]
            lo, hi = beats.lo[n], beats.hi[n]
            np.testing.assert_array_equal(beats.x[n, beats.r[n]], sig[beats.sample[n]])
            np.testing.assert_array_equal(beats.x[n, lo:hi], sig[start + lo : start + hi])
            assert not beats.x[n, hi:].any() and not beats.x[n, :lo].any()


# -- midpoint windows ---------------------------------------------------------------


def test_jones_skips_first_and_last_beat_and_uses_ceil_half_rr(tiny_db):
    # RR 301 then 299, 300, 350: odd intervals make floor/ceil visible.
    tiny_db.record("e1", [(400, "N"), (701, "N"), (1000, "V"), (1300, "N"), (1650, "N")])
    b = load(tiny_db, "jones2020", ["e1"])
    assert b.sample.tolist() == [701, 1000, 1300]
    assert b.symbol.tolist() == ["N", "V", "N"]
    # [prev + (cur-prev)//2, cur + (next-cur)//2)
    assert windows(b) == [(550, 850), (850, 1150), (1150, 1475)]
    # r = ceil((cur - prev) / 2)
    assert b.r.tolist() == [151, 150, 150]
    assert b.lo.tolist() == [0, 0, 0]
    assert b.rr_prev.tolist() == [301, 299, 300]
    assert b.rr_next.tolist() == [299, 300, 350]
    assert b.x.shape == (3, 430, 2)
    assert_windows_match_signal(tiny_db, b)


def test_edge_beats_included_with_mirrored_bound_when_not_skipping(tiny_db):
    tiny_db.record("e2", [(400, "N"), (701, "N"), (1000, "V"), (1300, "N"), (1650, "N")])
    b = load(tiny_db, "jones2020", ["e2"], skip_first_last=False)
    assert b.sample.tolist() == [400, 701, 1000, 1300, 1650]
    start, end = zip(*windows(b))
    # First beat: the missing previous beat is mirrored, 400 - 301 = 99, so the
    # window starts at 99 + 301//2 = 249 and r = ceil(301/2) = 151.
    assert (start[0], end[0], b.r[0]) == (249, 550, 151)
    # Last beat: next mirrored to 1650 + 350, so the window ends at 1650 + 175.
    assert (start[-1], end[-1], b.r[-1]) == (1475, 1825, 175)
    assert b.rr_prev[0] == 0 and b.rr_next[-1] == 0
    assert_windows_match_signal(tiny_db, b)


def test_mirrored_bound_is_clipped_at_the_record_start(tiny_db):
    tiny_db.record("e3", [(50, "N"), (400, "N"), (750, "N")], n_samples=900)
    b = load(tiny_db, "jones2020", ["e3"], skip_first_last=False)
    # Mirror of the first beat: 50 - 350 = -300, start = -300 + 175 = -125 -> 0.
    assert windows(b)[0] == (0, 225)
    assert b.r[0] == 50
    # Last: next mirrored to 1100, end = 750 + 175 = 925 -> clipped to the 900 samples.
    assert windows(b)[-1] == (575, 900)
    assert_windows_match_signal(tiny_db, b)


NON_BEAT_RECORD = [(10, "+"), (400, "N"), (560, "~"), (700, "N"), (850, "+"), (1000, "N"), (1300, "N"), (1500, '"')]


def test_boundary_beats_ignores_non_beat_marks(tiny_db):
    tiny_db.record("nb", NON_BEAT_RECORD)
    b = load(tiny_db, "jones2020", ["nb"], boundary="beats")
    # Beats 400, 700, 1000, 1300: the first and last *beats* are skipped.
    assert b.sample.tolist() == [700, 1000]
    assert windows(b) == [(550, 850), (850, 1150)]
    assert b.r.tolist() == [150, 150]
    # RR intervals always count beats only.
    assert b.rr_prev.tolist() == [300, 300] and b.rr_next.tolist() == [300, 300]
    assert_windows_match_signal(tiny_db, b)


def test_boundary_all_uses_non_beat_marks_as_neighbours(tiny_db):
    tiny_db.record("nb", NON_BEAT_RECORD)
    b = load(tiny_db, "jones2020", ["nb"], boundary="all")
    # Annotations 10 + | 400 N | 560 ~ | 700 N | 850 + | 1000 N | 1300 N | 1500 ".
    # The first/last *annotations* (10, 1500) are skipped, so beat 400 now has a window
    # and so does 1300.
    assert b.sample.tolist() == [400, 700, 1000, 1300]
    assert windows(b) == [
        (10 + 390 // 2, 400 + 160 // 2),  # (205, 480)
        (560 + 140 // 2, 700 + 150 // 2),  # (630, 775)
        (850 + 150 // 2, 1000 + 300 // 2),  # (925, 1150)
        (1000 + 300 // 2, 1300 + 200 // 2),  # (1150, 1400)
    ]
    assert b.r.tolist() == [195, 70, 75, 150]
    # Non-beat marks never count as beats for RR.
    assert b.rr_prev.tolist() == [0, 300, 300, 300]
    assert b.rr_next.tolist() == [300, 300, 300, 0]
    assert_windows_match_signal(tiny_db, b)


LOWER = [(400, "N"), (700, "a"), (1000, "e"), (1300, "A"), (1600, "E"), (1900, "N"), (2200, "N")]


def test_lowercase_dropped_under_jones2020_but_still_boundaries(tiny_db):
    tiny_db.record("lc", LOWER)
    b = load(tiny_db, "jones2020", ["lc"])
    assert b.symbol.tolist() == ["A", "E", "N"]
    assert [b.classes[i] for i in b.y] == ["A", "E", "N"]
    # 'e' at 1000 is a beat: it bounds A's window on the left.
    assert windows(b)[0] == (1150, 1450)


def test_lowercase_merged_under_jones2020_code(tiny_db):
    tiny_db.record("lc", LOWER)
    b = load(tiny_db, "jones2020_code", ["lc"])
    assert b.symbol.tolist() == ["a", "e", "A", "E", "N"]  # original symbols kept
    assert [b.classes[i] for i in b.y] == ["A", "E", "A", "E", "N"]


def test_symbols_are_case_exact(tiny_db):
    # 'n' and 'j'/'J' differ only by case; only the mapped case is kept.
    tiny_db.record("cs", [(400, "N"), (700, "n"), (1000, "j"), (1300, "J"), (1600, "N"), (1900, "N")])
    b = load(tiny_db, "jones2020", ["cs"])
    assert b.symbol.tolist() == ["j", "N"]


def test_windows_right_zero_padded_to_430(tiny_db):
    tiny_db.record("pad", [(400, "N"), (700, "V"), (1000, "N")])
    b = load(tiny_db, "jones2020", ["pad"])
    assert b.x.shape == (1, 430, 2)
    assert (b.lo[0], b.hi[0]) == (0, 300)
    assert b.x[0, :300].any(axis=0).all()
    assert not b.x[0, 300:].any()
    assert b.valid[0].sum() == 300


def test_430_cutoff_keeps_430_and_drops_431(tiny_db):
    tiny_db.record("cut", [(100, "N"), (500, "N"), (930, "N"), (1361, "N"), (1792, "N"), (2100, "N")], n_samples=2500)
    b = load(tiny_db, "jones2020", ["cut"])
    # 500: [300, 715) 415 | 930: [715, 1145) 430 | 1361: [1145, 1576) 431 | 1792: [1576, 1946) 370
    assert b.sample.tolist() == [500, 930, 1792]
    assert (b.hi - b.lo).tolist() == [415, 430, 370]
    assert_windows_match_signal(tiny_db, b)
    # Without the cutoff every window is kept and padded to the longest.
    b = load(tiny_db, "jones2020", ["cut"], max_len=None)
    assert b.sample.tolist() == [500, 930, 1361, 1792]
    assert b.x.shape[1] == 431


def test_max_len_none_pads_all_records_to_the_longest(tiny_db):
    tiny_db.record("s1", [(100, "N"), (300, "N"), (500, "N")])
    tiny_db.record("s2", [(100, "N"), (500, "N"), (900, "N")])
    b = load(tiny_db, "jones2020", ["s1", "s2"], max_len=None)
    assert b.x.shape == (2, 400, 2)
    assert (b.hi - b.lo).tolist() == [200, 400]
    assert b.record.tolist() == ["s1", "s2"]
    assert_windows_match_signal(tiny_db, b)


def test_long_record_names_are_not_truncated(tiny_db):
    tiny_db.record("a_long_record_name", [(400, "N"), (700, "N"), (1000, "N")])
    b = load(tiny_db, "jones2020", ["a_long_record_name"])
    assert b.record.tolist() == ["a_long_record_name"]


# -- fixed windows ------------------------------------------------------------------


def test_fixed_window_marks_record_edges_invalid(tiny_db):
    tiny_db.record("fx", [(30, "N"), (500, "V"), (950, "A"), (960, "+")], n_samples=1000)
    b = load(tiny_db, "aami", ["fx"])
    before, after = 90, 162  # 0.25 s and 0.45 s at 360 Hz
    assert b.x.shape == (3, before + after, 2)
    assert b.sample.tolist() == [30, 500, 950]  # first and last beats are kept
    assert [b.classes[i] for i in b.y] == ["N", "V", "S"]
    assert b.r.tolist() == [before] * 3
    # 30 - 90 = -60: the first 60 samples are before the record.
    assert (b.lo[0], b.hi[0]) == (60, 252)
    assert (b.lo[1], b.hi[1]) == (0, 252)
    # 950 - 90 = 860: only 140 samples left in the record.
    assert (b.lo[2], b.hi[2]) == (0, 140)
    assert_windows_match_signal(tiny_db, b)


def test_fixed_window_puts_mlii_first(tiny_db):
    sig = np.stack([np.full(1000, 100), np.full(1000, -50)], axis=1).astype(np.int16)
    tiny_db.record("sw", [(300, "N"), (600, "N")], signal=sig, sig_name=["V5", "MLII"])
    b = load(tiny_db, "aami", ["sw"])
    assert b.lead_names == {"sw": ("MLII", "V5")}
    assert b.x[0, 90].tolist() == [-0.25, 0.5]


# -- pure functions -----------------------------------------------------------------


def test_beat_rr_skips_non_beats_and_handles_duplicate_samples():
    s = np.array([0, 100, 150, 250, 250, 400])
    sym = np.array(["N", "+", "V", "N", "N", "~"])
    rp, rn = beat_rr(s, sym)
    # Beats: 0, 150, 250, 250 (a duplicate sample: RR 0 between the two).
    assert rp[[0, 2, 3, 4]].tolist() == [0, 150, 100, 0]
    assert rn[[0, 2, 3, 4]].tolist() == [150, 100, 0, 0]
    # Non-beats get the distances to the surrounding beats.
    assert (rp[1], rn[1]) == (100, 50)
    assert (rp[5], rn[5]) == (150, 0)


def test_beat_rr_without_beats():
    rp, rn = beat_rr(np.array([5, 9]), np.array(["+", "~"]))
    assert rp.tolist() == [0, 0] and rn.tolist() == [0, 0]


def test_midpoint_bounds_single_and_duplicate_annotations():
    start, end, ok = midpoint_bounds(np.array([100]), skip_first_last=False, n_samples=500)
    assert not ok[0]  # no neighbour to mirror: no window
    # Two annotations on one sample: the first one's window would end at its own R
    # (R outside the window), so only the second one gets a window.
    s = np.array([100, 200, 200, 300])
    start, end, ok = midpoint_bounds(s, skip_first_last=False, n_samples=500)
    assert ok.tolist() == [True, False, True, True]
    assert ((start <= s) & (s < end))[ok].all()


def test_extract_record_beats_rejects_unknown_window():
    with pytest.raises(ValueError, match="window"):
        extract_record_beats(np.zeros((10, 1)), [5], ["N"], keep_symbols=frozenset("N"), window="centred")


# -- normalisation ------------------------------------------------------------------


def _beats(values, valid_len):
    x = np.zeros((1, 6, 2), np.float32)
    x[0, :valid_len] = values
    valid = np.zeros((1, 6), bool)
    valid[0, :valid_len] = True
    return x, valid


def test_minmax_beat_includes_padding():
    x, valid = _beats([[1.0, 2.0], [3.0, 4.0]], 2)
    out = normalise(x, valid, "minmax_beat")
    # min over all values is the padding 0, max 4.
    np.testing.assert_allclose(out[0, :2], [[0.25, 0.5], [0.75, 1.0]])
    assert (out[0, 2:] == 0).all()


def test_minmax_beat_constant_beat_unchanged():
    x = np.full((1, 6, 2), 0.7, np.float32)
    out = normalise(x, np.ones((1, 6), bool), "minmax_beat")
    np.testing.assert_array_equal(out, x)


def test_per_lead_normalisations_ignore_padding():
    x, valid = _beats([[1.0, -2.0], [3.0, 2.0], [5.0, 0.0]], 3)
    mm = normalise(x, valid, "minmax_lead")
    np.testing.assert_allclose(mm[0, :3], [[0, 0], [0.5, 1], [1, 0.5]])
    z = normalise(x, valid, "zscore_lead")
    np.testing.assert_allclose(z[0, :3].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(z[0, :3].std(axis=0), 1, atol=1e-6)
    assert not mm[0, 3:].any() and not z[0, 3:].any()


@pytest.mark.parametrize("method", ["minmax_lead", "zscore_lead"])
@pytest.mark.parametrize("level", [0.0, 0.1, -1.3, 1e4 / 3])
def test_constant_lead_becomes_zero(method, level):
    # Lead 0 constant (a flat or saturated lead), lead 1 varying.
    x = np.zeros((1, 300, 2), np.float32)
    x[0, :250, 0] = level
    x[0, :250, 1] = np.sin(np.arange(250) / 10)
    valid = np.zeros((1, 300), bool)
    valid[0, :250] = True
    out = normalise(x, valid, method)
    assert np.isfinite(out).all()
    assert not out[0, :, 0].any()
    assert np.ptp(out[0, :250, 1]) > 0.5


def test_normalise_beat_without_valid_samples_is_zero():
    x = np.zeros((1, 6, 2), np.float32)
    valid = np.zeros((1, 6), bool)
    for method in ("minmax_lead", "zscore_lead"):
        out = normalise(x, valid, method)
        assert np.isfinite(out).all() and not out.any()


def test_normalise_unknown_method():
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalise(np.zeros((1, 2, 1)), np.ones((1, 2), bool), "l2")
