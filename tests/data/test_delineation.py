"""Beat delineation: waves found where they were planted (Gaussian beats for every method; for the envelope
method, beats whose six boundaries are known exactly, ``ecgjax.data.closed_form``: narrow, wide, absent P,
discordant T, a premature bigeminy), the quality flag, the per-record cache, and real V/L/R beats measured wider
than N beats. No expert-annotated boundaries (QT database, LUDB) are available offline; the closed-form beats are
the independent reference."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.data import closed_form, delineation, load_beats, protocols
from ecgjax.data.closed_form import boundary_errors_ms, closed_form_beats, hann_edge_inset_ms
from ecgjax.data.delineation import BOUNDS, ENVELOPE, delineate, load_waves, quality

FS = 360


def synthetic_ecg(n_beats: int = 30, rr_s: float = 0.8, qrs_half_s: float = 0.025, fs: float = FS):
    """f64[S] a sum of Gaussians per beat (P at -180 ms, Q at -qrs_half, R at 0, S at +qrs_half,
    T at +280 ms; sd 20, 8, 10, 8, 40 ms) and i64[K] its R samples.

    Planted extents (+-2.5 sd): P [-230, -130] ms, QRS [-qrs_half - 20, qrs_half + 20] ms, T [180, 380] ms.
    """
    S = int((n_beats + 1) * rr_s * fs)
    t = np.arange(S) / fs
    r = ((np.arange(n_beats) + 0.5) * rr_s * fs).astype(np.int64)
    rt = r / fs

    def g(c, a, sd):
        return a * np.exp(-0.5 * ((t[:, None] - c[None]) / sd) ** 2).sum(1)

    x = (g(rt - 0.18, 0.15, 0.02) + g(rt - qrs_half_s, -0.1, 0.008) + g(rt, 1.2, 0.01)
         + g(rt + qrs_half_s, -0.25, 0.008) + g(rt + 0.28, 0.3, 0.04))
    return x, r


def planted_ms(qrs_half_s: float) -> np.ndarray:
    q = 1000 * qrs_half_s + 20
    return np.array([-230, -130, -q, q, 180, 380], float)


@pytest.mark.parametrize("method", ["envelope", "dwt"])
@pytest.mark.parametrize("qrs_half_s", [0.025, 0.05])
def test_synthetic_waves_are_found_where_planted(qrs_half_s, method):
    x, r = synthetic_ecg(qrs_half_s=qrs_half_s)
    b = delineate(x, r, FS, method=method)
    assert b.shape == (len(r), len(BOUNDS))
    inner = slice(2, -2)  # neurokit2's first/last beats lack context
    rel_ms = (b[inner] - r[inner, None]) / FS * 1000  # the envelope's offsets are exclusive ends: within 3 ms
    err = np.abs(np.nanmedian(rel_ms, 0) - planted_ms(qrs_half_s))
    assert (err <= [20, 20, 20, 20, 35, 35]).all(), (np.nanmedian(rel_ms, 0), err)
    assert quality(b, r, FS)[inner].mean() >= 0.9


@pytest.mark.parametrize("method", ["envelope", "dwt"])
def test_wider_qrs_is_measured_wider(method):
    widths = []
    for h in (0.025, 0.05):
        x, r = synthetic_ecg(qrs_half_s=h)
        b = delineate(x, r, FS, method=method)[2:-2]
        widths.append(np.nanmedian(b[:, 3] - b[:, 2]) / FS)
    # planted: 90 ms and 140 ms
    assert widths[1] - widths[0] == pytest.approx(0.05, abs=0.02), widths


# -- the envelope method against beats whose six boundaries are known (ecgjax.data.closed_form) -----------

# |error| (ms) allowed for each of BOUNDS: the median over a case's inner beats (each beat: 10 ms more). The QRS
# leaves the baseline with a slope: its onset within 8 ms, its offset within 16 ms (the 30 Hz band-pass and the
# 12 ms smoothing of the slope envelope carry it late by ~10 ms). P and T are Hann bumps, which leave the baseline
# with zero slope: the method draws their edges where they stand above ENVELOPE["beta"] of their height,
# hann_edge_inset_ms inside the planted edges (13 ms for the 100 ms P, 25 ms for the 200 ms T; checked below).
TOL_MS = np.array([20, 20, 8, 16, 35, 35], float)


def _delineated(case):
    x, r, truth = closed_form_beats(**closed_form.CASES[case])
    b = delineate(x, r, FS)
    inner = slice(1, -1)  # the first and last beats lack a neighbour's RR
    return b[inner], r[inner], truth[inner], r


@pytest.mark.parametrize("case", list(closed_form.CASES))
def test_envelope_finds_every_planted_boundary(case):
    """Each of the six boundaries (so all five waves P, PR, QRS, ST, T) within TOL_MS of the planted one (median
    |error| over the inner beats; every beat within TOL_MS + 10 ms, as noise moves single beats); a P wave found
    on every beat that has one and on no beat without; every beat passes the quality flag. In the bigeminy the
    premature beat comes 0.5 s after each N beat and the T search stops at ENVELOPE["t_end_rr"] of that interval
    (300 ms after R; past it, at fast rates, the next beat's P wave can be the largest deflection): there the T
    offset is that cut (at or up to 15 ms before it), not the planted 325 ms."""
    b, r, truth, r_all = _delineated(case)
    assert quality(b, r, FS).all()
    has_p = np.isfinite(truth[:, 0])
    np.testing.assert_array_equal(np.isfinite(b[:, :2]).all(1), has_p)
    assert np.isnan(b[~has_p, :2]).all()
    if case == "bigeminy":  # the T search's end before a premature beat, exactly where it is documented
        rr_next = np.diff(r_all)[1:]
        cut = r + ENVELOPE["t_end_rr"] * rr_next
        short = cut < truth[:, 5]
        early = (cut[short] - b[short, 5]) / FS * 1000
        assert short.sum() == 9 and (early >= 0).all() and (early <= 15).all(), early
        truth = truth.copy()
        truth[short, 5] = cut[short]
    err = np.abs(boundary_errors_ms(b, truth, FS))[:, np.isfinite(truth).any(0)]
    tol = TOL_MS[np.isfinite(truth).any(0)]
    med, worst = np.nanmedian(err, 0), np.nanmax(err, 0)  # NaN: a bound of an absent P wave, found absent above
    assert (med <= tol).all() and (worst <= tol + 10).all(), (med, worst)


def test_envelope_p_and_t_edges_sit_where_the_threshold_puts_them():
    """On the Hann P and T waves the measured edges lie inside the planted ones by the closed-form inset of the
    method's threshold (within 5 ms, median over beats and cases): onsets late, offsets early by that amount. A
    delineator that put P or T elsewhere (the previous beat's T, the QRS's foot) fails this before TOL_MS."""
    beta = ENVELOPE["beta"]
    inset = np.array([hann_edge_inset_ms(np.diff(closed_form.P_BEFORE_MS[::-1])[0], beta)] * 2
                     + [hann_edge_inset_ms(np.diff(closed_form.T_AFTER_MS)[0], beta)] * 2) * [1, -1, 1, -1]
    for case in ("narrow", "normal, noisy", "wide", "wide, no P, discordant T"):
        b, r, truth, _ = _delineated(case)
        keep = [True, True, True, True] if np.isfinite(truth[:, 0]).all() else [False, False, True, True]
        med = np.median(boundary_errors_ms(b, truth, FS)[:, [0, 1, 4, 5]][:, keep], 0)
        assert (np.abs(med - inset[keep]) <= 5).all(), (case, med, inset)


@pytest.mark.parametrize("case", ["normal, noisy", "wide, no P, discordant T", "bigeminy"])
def test_envelope_wave_masks_overlap_the_planted_waves(case):
    """The masks the checks by wave use (analysis.waves.wave_masks) against the planted ones, wave by wave:
    intersection over union at least 0.6 for each of P, PR, QRS, ST and T on every inner beat (0.75 for the QRS);
    P and PR empty exactly where no P wave was planted."""
    from ecgjax.analysis.waves import wave_masks

    b, r, truth, _ = _delineated(case)
    start = r - int(0.5 * FS)  # 1 s windows centred on R hold every planted wave
    got, want = (wave_masks(v - start[:, None], int(FS)) for v in (b, truth))
    inter, union = (got & want).sum(2), (got | want).sum(2)
    has_p = np.isfinite(truth[:, 0])
    assert (union[~has_p, :2] == 0).all()
    iou = inter[has_p] / union[has_p]
    assert (iou[:, [0, 1]] >= 0.6).all(), iou.min(0)
    iou = inter[:, 2:] / union[:, 2:]
    assert (iou >= [0.75, 0.6, 0.6]).all(), iou.min(0)


@pytest.mark.parametrize("p_wave", [True, False])
def test_envelope_measures_closed_form_qrs_widths(p_wave):
    """QRS complexes of exactly 80, 120 and 160 ms: each measured within 15 ms, each 40 ms step within 10 ms."""
    widths = []
    for qrs in (80, 120, 160):
        x, r, _ = closed_form_beats(qrs, p_wave=p_wave)
        b = delineate(x, r, FS)[1:-1]
        width = np.median(b[:, 3] - b[:, 2]) / FS * 1000
        assert width == pytest.approx(qrs, abs=15), (qrs, width)
        widths.append(width)
    np.testing.assert_allclose(np.diff(widths), 40, atol=10)


def test_envelope_edge_cases():
    x, r, _ = closed_form_beats(120, n_beats=6)
    assert np.isnan(delineate(np.zeros_like(x), r, FS)).all()  # a flat line has no QRS
    assert delineate(x, r[:0], FS).shape == (0, 6)
    b = delineate(x, np.r_[5, r[1:]], FS)  # a beat at the record's first samples: no QRS onset to find
    assert np.isnan(b[0, 2]) and np.isfinite(b[1:, 2:]).all()


def test_quality_closed_form():
    r = np.array([100] * 11)
    good = [40, 60, 85, 115, 150, 200]  # P 20 samples, QRS 30 (83 ms), T 50
    cases = np.array([
        good,
        [np.nan, np.nan] + good[2:],  # no P wave: allowed (P and PR empty)
        [np.nan] + good[1:],  # a P offset without its onset
        good[:5] + [np.nan],  # no T offset
        [40, 60, 85, 115, 150, 230],  # T 80 samples = 222 ms, QRS to T: fine
        [10, 30, 40, 115, 150, 200],  # QRS 75 samples = 208 ms: too wide
        [40, 60, 85, 99, 150, 200],  # QRS ends before R
        [40, 90, 85, 115, 150, 200],  # P overlaps the QRS
        [40, 60, 95, 105, 150, 200],  # QRS 10 samples = 28 ms: too narrow
        [40, 60, 50, 150, 160, 200],  # QRS 100 samples = 278 ms: too wide
        [-60, -40, 85, 115, 150, 200],  # P onset 160 samples = 444 ms before R
    ], float)
    np.testing.assert_array_equal(quality(cases, r, FS), [True, True, False, False, True, False, False, False, False, False, False])


def test_delineate_rejects_unknown_method():
    from ecgjax.errors import ConfigError

    with pytest.raises(ConfigError, match="choose one of"):
        delineate(np.zeros(1000), np.array([100, 400, 700]), FS, method="nope")


# -- load_waves: window-relative, cached per record ------------------------------------------------------


@pytest.fixture
def syn_db(tiny_db):
    x, r = synthetic_ecg(n_beats=20)
    sym = ["N"] * len(r)
    sym[7] = "V"
    digital = np.round(np.stack([x, -x], 1) * 200).astype(np.int16)
    tiny_db.record("s1", list(zip(r.tolist(), sym)), signal=digital)
    return tiny_db, r


@pytest.mark.parametrize("proto", ["jones2020", "aami"])
def test_load_waves_window_relative_and_cached(syn_db, cache_path, monkeypatch, proto):
    db, r = syn_db
    beats = load_beats(protocols.get(proto, records=("s1",)), db.root, cache=cache_path, download=False)
    waves = load_waves(beats, db.root, cache=cache_path, download=False)
    assert waves.bounds.shape == (len(beats), 6) and waves.lead == {"s1": "MLII"}
    # the same numbers as delineating the record directly, shifted into each window
    ref = delineate(db.physical("s1")[:, 0], r, FS)
    rows = np.searchsorted(r, beats.sample)
    start = beats.sample - beats.r
    np.testing.assert_allclose(waves.bounds, ref[rows] - start[:, None], atol=1e-3, equal_nan=True)
    np.testing.assert_array_equal(waves.quality, quality(waves.bounds, beats.r, FS))
    (cached,) = (cache_path / "waves").iterdir()
    monkeypatch.setattr(delineation, "delineate", lambda *a, **k: pytest.fail("cache hit must not delineate"))
    again = load_waves(beats.subset(np.arange(1, len(beats))), db.root, cache=cache_path, download=False)
    np.testing.assert_array_equal(again.bounds, waves.bounds[1:])
    # a damaged cache file is rebuilt, not trusted
    cached.write_bytes(b"garbage")
    monkeypatch.setattr(delineation, "delineate", lambda s, rr, fs, method: np.zeros((len(rr), 6)))
    rebuilt = load_waves(beats, db.root, cache=cache_path, download=False)
    assert (rebuilt.bounds == -start[:, None]).all()


def test_load_waves_refuses_beats_of_other_files(syn_db, cache_path):
    import dataclasses

    from ecgjax.errors import RecordError

    db, _ = syn_db
    beats = load_beats(protocols.get("aami", records=("s1",)), db.root, cache=cache_path, download=False)
    moved = dataclasses.replace(beats, sample=beats.sample + 3)
    with pytest.raises(RecordError, match="record s1: .* not beat annotations"):
        load_waves(moved, db.root, cache=False, download=False)


@pytest.mark.realdata
def test_real_record_waves_are_physiological(real_data_dir, tmp_path):
    """Record 100 (normal and supraventricular beats): most beats pass the quality flag, with a QRS of
    60-130 ms, a P wave of 50-150 ms ending 50-250 ms before R, and a T wave ending 250-500 ms after R."""
    beats = load_beats(protocols.get("aami", records=("100",)), real_data_dir, cache=tmp_path, download=False)
    waves = load_waves(beats, real_data_dir, cache=tmp_path, download=False)
    assert waves.quality.mean() > 0.8 and waves.method == "envelope"
    ok = waves.quality
    d = np.nanmedian(waves.durations(FS)[ok], 0)
    rel = np.nanmedian(waves.bounds[ok] - beats.r[ok, None], 0) / FS
    assert 0.95 < np.isfinite(waves.bounds[ok, 0]).mean()  # sinus rhythm: a P wave nearly everywhere
    assert 0.06 <= d[2] <= 0.13 and 0.05 <= d[0] <= 0.15, d
    assert -0.25 <= rel[1] <= -0.05 and 0.25 <= rel[5] <= 0.5, rel


@pytest.mark.realdata
def test_real_wide_complexes_are_measured_wide(real_data_dir):
    """V beats (record 119: N and V bigeminy), L beats (109: left bundle branch block) and R beats (118: right
    bundle branch block) pass the quality flag and measure a median QRS at least 30 ms wider than the N beats of
    119, which measure under 100 ms; the dwt method could not (section 5c: 3% of V beats pass)."""
    from ecgjax.data import locate, wfdb_io

    folder = locate.find_database("mitdb", real_data_dir, download=False)
    width, passing = {}, {}
    for rec, classes in (("119", "NV"), ("109", "L"), ("118", "R")):
        rd = wfdb_io.read_record(folder, rec, fs=FS)
        keep = np.isin(rd.ann_symbols, list(classes))
        r, sym = rd.ann_samples[keep], rd.ann_symbols[keep]
        lead = list(rd.sig_name).index("MLII")
        b = delineate(rd.signal[:, lead], r, FS)
        ok = quality(b, r, FS)
        for c in classes:
            passing[c] = ok[sym == c].mean()
            width[c] = np.median(b[ok & (sym == c), 3] - b[ok & (sym == c), 2]) / FS * 1000
    assert min(passing.values()) > 0.8, passing
    assert width["N"] < 100 and min(width["V"], width["L"], width["R"]) > width["N"] + 30, width
