"""The running template: each beat minus the mean of its record's preceding beats (causal, per record)."""

import dataclasses

import numpy as np
import pytest

from ecgjax.data.template import SINUS_BEATS, running_template, sinus_template, subtract_template, template_of
from ecgjax.train.data import synthetic_beats


def loop_template(x, record, k):
    """Direct float64 reference: one beat at a time."""
    out = np.empty(x.shape, np.float64)
    for i in range(len(x)):
        past = [j for j in range(i) if record[j] == record[i]][-k:]
        out[i] = np.mean(x[past].astype(np.float64), axis=0) if past else x[i]
    return out


@pytest.mark.parametrize("k", [1, 3, 50])
def test_matches_the_loop_with_interleaved_records(k):
    rng = np.random.default_rng(k)
    x = rng.standard_normal((40, 7, 2)).astype(np.float32)
    record = rng.choice(np.array(["a", "b", "c"]), 40)
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
