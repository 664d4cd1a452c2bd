"""The running template: each beat minus the mean of its record's preceding beats (causal, per record)."""

import dataclasses

import numpy as np
import pytest

from ecgjax.data.template import SINUS_BEATS, atrial_lock, running_template, sinus_template, subtract_template, template_of
from ecgjax.train.data import synthetic_beats


def loop_template(x, record, k):
    """Direct float64 reference: one beat at a time."""
    out = np.empty(x.shape, np.float64)
    for i in range(len(x)):
        past = [j for j in range(i) if record[j] == record[i]][-k:]
        out[i] = np.mean(x[past].astype(np.float64), axis=0) if past else x[i]
    return out


def interleaved(seed: int, n: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """x f32[n, t, 2] random beats of three records a, b, c whose beats interleave in file order, and their records."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, t, 2)).astype(np.float32), rng.choice(np.array(["a", "b", "c"]), n)


@pytest.mark.parametrize("k", [1, 3, 50])
def test_matches_the_loop_with_interleaved_records(k):
    x, record = interleaved(k, 40, 7)
    np.testing.assert_allclose(running_template(x, record, k), loop_template(x, record, k), rtol=1e-5, atol=1e-6)


def test_never_looks_at_the_beat_itself_or_later_beats():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 5, 1)).astype(np.float32)
    record = np.array(["r"] * 30)
    base = running_template(x, record, 4)
    x2 = x.copy()
    x2[12:] += 100.0  # change beat 12 and everything after it
    changed = running_template(x2, record, 4)
    np.testing.assert_array_equal(changed[:13], base[:13])  # templates up to beat 12 read beats 0..11 only
    assert not np.allclose(changed[13], base[13])


def test_closed_form_constant_record_and_first_beat():
    x = np.ones((5, 3, 1), np.float32) * np.arange(5, dtype=np.float32)[:, None, None]  # beat i is the constant i
    t = running_template(x, np.array(["r"] * 5), 2)
    np.testing.assert_allclose(t[:, 0, 0], [0.0, 0.0, 0.5, 1.5, 2.5])
    with pytest.raises(ValueError, match="k must be >= 1"):
        running_template(x, np.array(["r"] * 5), 0)


def test_subtract_template_zeroes_padding_and_keeps_the_rest():
    b = synthetic_beats(n_records=3, beats_per_record=10, t=16, seed=1)
    b = dataclasses.replace(b, lo=np.full(len(b), 2, np.int32), hi=np.full(len(b), 12, np.int32))
    out = subtract_template(b, 3)
    want = (b.x - loop_template(b.x, b.record, 3)) * b.valid[..., None]
    np.testing.assert_allclose(out.x, want, rtol=1e-5, atol=1e-5)
    assert np.all(out.x[:, :2] == 0) and np.all(out.x[:, 12:] == 0)
    np.testing.assert_array_equal(out.y, b.y)
    np.testing.assert_array_equal(out.record, b.record)


def loop_sinus(x, record, pre, k, m):
    """Direct float64 reference: of each beat's k preceding beats of its record, the m with the longest ``pre``
    (ties: the most recent), averaged."""
    out = np.empty(x.shape, np.float64)
    for i in range(len(x)):
        past = [j for j in range(i) if record[j] == record[i]][-k:]
        chosen = sorted(past, key=lambda j: (-pre[j], -j))[:m]
        out[i] = np.mean(x[chosen].astype(np.float64), axis=0) if chosen else x[i]
    return out


@pytest.mark.parametrize("k,m", [(1, 1), (6, 2), (32, 8), (5, 9)])
def test_sinus_template_matches_the_loop_with_ties_and_interleaved_records(k, m):
    rng = np.random.default_rng(k + m)
    x = rng.standard_normal((60, 5, 2)).astype(np.float32)
    record = rng.choice(np.array(["a", "b"]), 60)
    pre = rng.choice([0.5, 0.8, 0.8, 1.2], 60)  # many ties
    np.testing.assert_allclose(sinus_template(x, record, pre, k, m), loop_sinus(x, record, pre, k, m), rtol=1e-5, atol=1e-6)
    if m >= k:  # every preceding beat chosen: the mean template
        np.testing.assert_allclose(sinus_template(x, record, pre, k, m), running_template(x, record, k), rtol=1e-5, atol=1e-6)


def test_sinus_template_stays_a_sinus_beat_where_ectopic_beats_dominate():
    """A 232-like record (there 22% of the beats are N): runs of 3 premature beats (waveform 1, interval 0.7 s), each
    followed by a sinus beat after a pause (waveform 0, interval 1.6 s). The mean template is 3/4 ectopic, so an
    ectopic beat's input is a quarter of its difference; the sinus template (the 8 of the 32 preceding beats after
    the longest intervals: the 8 sinus beats) is the sinus beat, so the ectopic beat's input is all of it."""
    lab = np.array(([0] + [1] * 3) * 20)
    x = lab[:, None, None].astype(np.float32) * np.ones((1, 4, 1), np.float32)
    pre = np.where(lab == 1, 0.7, 1.6)
    record = np.array(["r"] * len(lab))
    late = np.arange(len(lab)) >= 32
    ect = late & (lab == 1)
    mean_in = (x - running_template(x, record, 32))[ect, 0, 0]
    sinus_in = (x - template_of(x, record, pre, 32, "sinus"))[ect, 0, 0]
    assert SINUS_BEATS == 8
    np.testing.assert_allclose(mean_in, 0.25, atol=1e-6)
    np.testing.assert_allclose(sinus_in, 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="template reference 'median'"):
        template_of(x, record, pre, 32, "median")


def test_subtract_template_sinus_reads_the_beats_preceding_intervals():
    b = synthetic_beats(n_records=2, beats_per_record=20, t=16, seed=2)
    b = dataclasses.replace(b, rr_prev=np.random.default_rng(0).integers(200, 400, len(b)).astype(np.int32))
    out = subtract_template(b, 6, "sinus")
    want = (b.x - loop_sinus(b.x, b.record, b.rr_prev, 6, SINUS_BEATS)) * b.valid[..., None]
    np.testing.assert_allclose(out.x, want, rtol=1e-5, atol=1e-5)


# -- atrial_lock: the P window's share locked to R over the preceding beats ------------------------------------------


def loop_atrial_lock(x, record, r, fs, k, window=(-0.25, -0.07)):
    """Direct float64 reference: per beat, its record's k preceding P windows, each less its least-squares line."""
    lo, hi = max(int(round(r + window[0] * fs)), 0), int(round(r + window[1] * fs))
    t = np.arange(hi - lo, dtype=np.float64)
    out = np.empty(len(x))
    for i in range(len(x)):
        past = [j for j in range(i) if record[j] == record[i]][-k:]
        if not past:
            out[i] = 1.0
            continue
        ps = []
        for j in past:
            p = x[j, lo:hi, 0].astype(np.float64)
            slope, icpt = np.polyfit(t, p, 1)
            ps.append(p - (slope * t + icpt))
        ps = np.array(ps)
        out[i] = np.sum(ps.mean(0) ** 2) / np.mean(np.sum(ps**2, axis=1))
    return out


@pytest.mark.parametrize("k", [1, 4, 32])
def test_atrial_lock_matches_the_loop_with_interleaved_records(k):
    x, record = interleaved(k, 60, 40)
    got = atrial_lock(x, record, r=20, fs=100.0, k=k)
    np.testing.assert_allclose(got, loop_atrial_lock(x, record, 20, 100.0, k), rtol=1e-5, atol=1e-6)


def test_atrial_lock_closed_forms_and_causality():
    fs, r, n = 100.0, 25, 200
    t = np.arange(40) / fs
    p_wave = np.exp(-((t - (r / fs - 0.15)) ** 2) / (2 * 0.02**2))  # a P wave 0.15 s before R
    rng = np.random.default_rng(0)
    offset, trend = rng.standard_normal(n), rng.standard_normal(n)
    # the same P wave before every beat, on a wandering baseline (each beat's offset and slope): locked, 1
    sinus = (p_wave + offset[:, None] + trend[:, None] * t)[..., None].astype(np.float32)
    lock = atrial_lock(sinus, np.zeros(n), r, fs, 8)
    np.testing.assert_allclose(lock, 1.0, atol=1e-5)
    # independent fibrillation-like windows: about 1/k once k beats precede
    fib = rng.standard_normal((n, 40, 1)).astype(np.float32)
    lock = atrial_lock(fib, np.zeros(n), r, fs, 16)
    assert abs(lock[16:].mean() - 1 / 16) < 0.02
    # a P wave of alternating sign cancels over an even number of beats: 0
    alt = (p_wave * np.where(np.arange(n) % 2, -1.0, 1.0)[:, None])[..., None].astype(np.float32)
    np.testing.assert_allclose(atrial_lock(alt, np.zeros(n), r, fs, 4)[4::2], 0.0, atol=1e-6)
    # a record's first beat: 1 (no past); only earlier beats of the same record count
    assert atrial_lock(fib, np.zeros(n), r, fs, 4)[0] == 1.0
    changed = fib.copy()
    changed[100:] *= -3.0  # beat 100 and after
    np.testing.assert_array_equal(atrial_lock(changed, np.zeros(n), r, fs, 4)[:101], atrial_lock(fib, np.zeros(n), r, fs, 4)[:101])
    with pytest.raises(ValueError, match="k must be >= 1"):
        atrial_lock(fib, np.zeros(n), r, fs, 0)
    with pytest.raises(ValueError, match="holds 0 samples"):
        atrial_lock(fib, np.zeros(n), 0, fs, 4)


def test_atrial_lock_on_real_atrial_fibrillation(real_data_dir):
    """Record 201 (DS1): its N beats inside (AFIB episodes against those in (N rhythm, rhythm from the annotations' aux notes."""
    import wfdb

    from ecgjax.data.dataset import load_beats
    from ecgjax.data.protocols import get

    b = load_beats(get("aami_rr", records=("201",)), real_data_dir, cache=False)
    lock = atrial_lock(b.x, b.record, int(b.r[0]), b.fs, 32)
    ann = wfdb.rdann(str(real_data_dir / "mitdb" / "201"), "atr")
    at = [i for i, s in enumerate(ann.aux_note) if s.startswith("(")]
    starts, names = np.asarray(ann.sample)[at], [ann.aux_note[i].rstrip("\x00") for i in at]
    rhythm = np.asarray(names)[np.searchsorted(starts, b.sample, side="right") - 1]
    n = np.asarray(b.classes)[b.y] == "N"
    af, sinus = np.median(lock[n & (rhythm == "(AFIB")]), np.median(lock[n & (rhythm == "(N")])
    # measured 0.029 and 0.34 (201 is noisy, and the 32 beats after an episode still reach into it)
    assert af < 0.1 and sinus > 10 * af, (af, sinus)


def test_atrial_lock_beats_is_an_rr_feature_of_the_leads_before_the_template():
    from ecgjax.config import DataConfig
    from ecgjax.errors import ConfigError
    from ecgjax.train.data import with_atrial_lock

    b = synthetic_beats(n_records=2, beats_per_record=12, t=64, seed=3)
    rr = dataclasses.replace(b, rr=np.ones((len(b), 2), np.float32), rr_names=("pre", "post"))
    got = with_atrial_lock(rr, 5)
    assert got.rr_names == ("pre", "post", "plock")
    np.testing.assert_array_equal(got.rr[:, :2], 1.0)
    np.testing.assert_array_equal(got.rr[:, 2], atrial_lock(b.x, b.record, int(b.r[0]), b.fs, 5))
    with pytest.raises(ConfigError, match="has no RR features"):
        DataConfig(protocol="aami", atrial_lock_beats=32)
    with pytest.raises(ConfigError, match="rhythm_aug"):
        DataConfig(protocol="aami_rr", atrial_lock_beats=32, rhythm_aug={"fraction": 1.0})
    assert DataConfig(protocol="aami_rr", atrial_lock_beats=32).atrial_lock_beats == 32
