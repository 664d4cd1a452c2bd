"""The running template: each beat minus the mean of its record's preceding beats (causal, per record)."""

import dataclasses

import numpy as np
import pytest

from ecgjax.data.template import running_template, subtract_template
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
