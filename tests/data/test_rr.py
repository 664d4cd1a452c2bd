"""RR-interval features: the vectorised code against a direct loop, causality, the cache."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest

from ecgjax.data import load_beats, protocols, rr
from ecgjax.data.beats import BEAT_SYMBOLS
from ecgjax.data.dataset import BeatSet, cache_key
from ecgjax.errors import ConfigError


def loop_features(times, *, local_beats=10, long_s=300.0, ref_beats=32, reference="median"):
    """The definitions of ``ecgjax.data.rr`` written out beat by beat, in float64 (``statistics.median``): f64[K, 12]."""
    t = [float(v) for v in times]
    k = len(t)
    if k < 2:
        return np.array([[0.0] * 4 + [1.0] * 4 + [0.0] * 3 + [1.0] for _ in range(k)]).reshape(k, 12)
    pre = [t[1] - t[0]] + [t[i] - t[i - 1] for i in range(1, k)]
    rows = []
    for i in range(k):
        post = t[i + 1] - t[i] if i + 1 < k else pre[i]
        loc = pre[max(0, i - local_beats + 1) : i + 1]
        lng = [pre[j] for j in range(i + 1) if t[j] >= t[i] - long_s]
        if reference == "median":
            run = statistics.median(pre[max(0, i - ref_beats + 1) : i + 1])
        elif reference == "upper75":  # linear interpolation between order statistics, written out
            w = sorted(pre[max(0, i - ref_beats + 1) : i + 1])
            pos = 0.75 * (len(w) - 1)
            lo = int(pos)
            run = w[lo] + (pos - lo) * (w[min(lo + 1, len(w) - 1)] - w[lo])
        else:
            run = sum(pre[: i + 1]) / (i + 1)
        raw = [pre[i], post, sum(loc) / len(loc), sum(lng) / len(lng)]
        before = pre[max(0, i - local_beats) : i] or [pre[i]]  # the local_beats intervals before this beat
        local_context = [pre[i - 1] if i else pre[i], min(before), max(before)]  # prev, lmin, lmax
        # irreg: median |log ratio| of the successive pairs among the local_beats intervals before this beat
        pairs = [abs(math.log(max(pre[j], 1e-3) / max(pre[j - 1], 1e-3))) for j in range(max(1, i - local_beats + 1), i)]
        irreg = math.exp(statistics.median(pairs)) if pairs else 1.0
        rows.append(raw + [v / run if run > 0 else 1.0 for v in raw] + local_context + [irreg])
    return np.array(rows)


def test_closed_form_on_a_regular_rhythm_with_one_premature_beat():
    # beats every 1 s, beat 5 comes 0.4 s early (0.6 s after beat 4, 1.4 s before beat 6)
    t = np.arange(12, dtype=np.float64)
    t[5] -= 0.4
    f = rr.beat_features(t, local_beats=3, long_s=4.0)
    col = {n: f[:, i] for i, n in enumerate(rr.FEATURES)}
    np.testing.assert_allclose(col["pre"][4:7], [1.0, 0.6, 1.4], rtol=1e-6)
    np.testing.assert_allclose(col["post"][4:7], [0.6, 1.4, 1.0], rtol=1e-6)
    np.testing.assert_allclose(col["local"][5], (1 + 1 + 0.6) / 3, rtol=1e-6)
    # long window of 4 s at t=4.6: beats at 1, 2, 3, 4, 4.6 (t >= 0.6)
    np.testing.assert_allclose(col["long"][5], (1 + 1 + 1 + 1 + 0.6) / 5, rtol=1e-6)
    # the reference is the median pre-RR of the beats so far: 1 s, untouched by the premature beat
    np.testing.assert_allclose(col["pre_norm"][5], 0.6, rtol=1e-6)
    np.testing.assert_allclose(col["post_norm"][5], 1.4, rtol=1e-6)
    assert col["pre_norm"][5] < 0.7 < col["post_norm"][5]  # premature, then compensatory pause
    # reference-free local context: the previous interval, the shortest / longest of the 3 before the beat
    np.testing.assert_allclose(col["prev"][4:8], [1.0, 1.0, 0.6, 1.4], rtol=1e-6)
    np.testing.assert_allclose(col["lmin"][5:10], [1.0, 0.6, 0.6, 0.6, 1.0], rtol=1e-6)
    np.testing.assert_allclose(col["lmax"][5:10], [1.0, 1.0, 1.4, 1.4, 1.4], rtol=1e-6)
    np.testing.assert_allclose(f, loop_features(t, local_beats=3, long_s=4.0), rtol=1e-5)


def test_irregularity_ignores_an_isolated_premature_beat_and_sees_an_irregular_rhythm():
    # regular 1 s rhythm with one premature beat (0.6 s, then 1.4 s): two irregular pairs of the 9 in the window
    pre = [1.0] * 20 + [0.6, 1.4] + [1.0] * 20
    t = np.concatenate([[0.0], np.cumsum(pre)])
    irreg = rr.beat_features(t)[:, rr.FEATURES.index("irreg")]
    np.testing.assert_allclose(irreg, 1.0, rtol=1e-6)
    # the premature beat itself: its window holds only 1 s intervals, so it is premature in a regular rhythm
    assert irreg[21] == pytest.approx(1.0)
    # intervals alternating 0.8 / 1.25 s (every pair's ratio 1.5625): irregular from the third beat on
    t = np.concatenate([[0.0], np.cumsum([0.8, 1.25] * 15)])
    irreg = rr.beat_features(t)[:, rr.FEATURES.index("irreg")]
    # beat 0 takes its post as pre (0.8 s), so beats 0-2 see only 0.8 s pairs, beat 3 the pairs 1 and 1.5625
    # (median of two: their geometric mean 1.25), every later beat a majority of 1.5625
    np.testing.assert_allclose(irreg[:4], [1.0, 1.0, 1.0, 1.25], rtol=1e-6)
    np.testing.assert_allclose(irreg[4:], 1.5625, rtol=1e-5)
    # an irregular rhythm (ratios drawn independently) against the same rhythm made regular
    rng = np.random.default_rng(0)
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 1.1, 200))])
    assert np.median(rr.beat_features(t)[20:, rr.FEATURES.index("irreg")]) > 1.2


def test_the_reference_follows_the_dominant_rhythm_not_pauses_or_bursts():
    # 1 s rhythm; a 6 s pause, then a run of 5 premature beats at 0.6 s
    pre = [1.0] * 40 + [6.0] + [1.0] * 10 + [0.6] * 5 + [1.0] * 5
    t = np.concatenate([[0.0], np.cumsum(pre)])
    f = rr.beat_features(t, ref_beats=32)
    col = {n: f[:, i] for i, n in enumerate(rr.FEATURES)}
    run = slice(52, 57)  # the 5 premature beats
    np.testing.assert_allclose(col["pre"][run], 0.6, rtol=1e-5)
    np.testing.assert_allclose(col["pre_norm"][run], 0.6, rtol=1e-5)  # reference still 1 s
    # the running mean over all past beats is pulled up to 57.6 / 53 s by the pause
    mean = rr.beat_features(t, reference="mean")[:, rr.FEATURES.index("pre_norm")]
    np.testing.assert_allclose(mean[52], 0.6 / (57.6 / 53), rtol=1e-5)
    with pytest.raises(ValueError, match="reference"):
        rr.beat_features(t, reference="mode")


@pytest.mark.parametrize("k", [1, 2, 5, 64])
def test_running_median_matches_the_loop(k):
    v = np.random.default_rng(k).uniform(0, 2, 40)
    want = [statistics.median(v[max(0, i - k + 1) : i + 1]) for i in range(len(v))]
    np.testing.assert_allclose(rr.running_median(v, k), want, rtol=1e-12)
    assert rr.running_median(np.zeros(0), k).shape == (0,)


@pytest.mark.parametrize("seed", range(5))
def test_random_rhythms_match_the_loop(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(0, 60))
    t = np.cumsum(rng.uniform(0.0, 2.0, k))  # zero-length intervals allowed
    lb, ls, rb = int(rng.integers(1, 12)), float(rng.uniform(0.5, 20)), int(rng.integers(1, 20))
    for ref in rr.REFERENCES:
        f = rr.beat_features(t, local_beats=lb, long_s=ls, ref_beats=rb, reference=ref)
        assert f.shape == (k, len(rr.FEATURES)) and f.dtype == np.float32
        np.testing.assert_allclose(f, loop_features(t, local_beats=lb, long_s=ls, ref_beats=rb, reference=ref), rtol=1e-5, atol=1e-6)


def test_features_never_look_past_the_next_beat():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.3, 1.5, 200))
    full = rr.beat_features(t, local_beats=10, long_s=30.0)
    for cut in (50, 120):
        # beats up to `cut` only, plus the next one (post-RR): identical features up to `cut`
        part = rr.beat_features(t[: cut + 2], local_beats=10, long_s=30.0)
        np.testing.assert_array_equal(part[: cut + 1], full[: cut + 1])


def test_record_features_picks_kept_beats_among_all_beat_annotations():
    # non-beat marks are ignored; unkept beat symbols still count as neighbours
    samples = np.array([0, 360, 400, 720, 900, 1080, 1440])
    symbols = np.array(["N", "N", "+", "Q", "A", "N", "N"])
    kept = np.array([360, 900, 1440])
    f = rr.record_features(samples, symbols, kept, 360.0)
    beats = samples[np.isin(symbols, list(BEAT_SYMBOLS))] / 360.0
    np.testing.assert_allclose(f, loop_features(beats)[[1, 3, 5]], rtol=1e-6)
    with pytest.raises(ValueError, match="not beat annotations"):
        rr.record_features(samples, symbols, np.array([400]), 360.0)


def test_two_beats_on_one_sample_take_their_own_rows():
    samples = np.array([0, 360, 360, 720])
    symbols = np.array(["N", "N", "V", "N"])
    f = rr.record_features(samples, symbols, np.array([360, 360]), 360.0)
    assert f[0, 0] == pytest.approx(1.0) and f[1, 0] == pytest.approx(0.0)


def test_protocol_checks_feature_names():
    with pytest.raises(ConfigError, match="rr_features"):
        protocols.get("aami", rr_features=("post", "pre"))
    with pytest.raises(ConfigError, match="rr_features"):
        protocols.get("aami", rr_features=("nope",))
    assert protocols.get("aami_rr").rr_features == rr.DEFAULT_FEATURES == rr.FEATURES[:8]


def test_rr_fields_are_in_the_cache_key_and_leave_other_keys_alone():
    sums = {"c1": {"c1.dat": "ab"}}
    base = protocols.get("aami")
    with_rr = protocols.get("aami_rr")
    assert cache_key(base, sums) != cache_key(with_rr, sums)
    assert cache_key(with_rr, sums) != cache_key(with_rr.replace(rr_local_beats=5), sums)
    assert cache_key(with_rr, sums) != cache_key(with_rr.replace(rr_long_s=60.0), sums)
    assert cache_key(with_rr, sums) != cache_key(with_rr.replace(rr_ref_beats=64), sums)
    assert cache_key(with_rr, sums) != cache_key(with_rr.replace(rr_reference="mean"), sums)
    with pytest.raises(ConfigError, match="rr_reference"):
        protocols.get("aami_rr", rr_reference="mode")
    assert cache_key(with_rr, sums) != cache_key(with_rr.replace(rr_features=("pre",)), sums)
    # without RR features the local/long settings are not part of the beats
    assert cache_key(base, sums) == cache_key(base.replace(rr_local_beats=5), sums)


ANN = [(200, "N"), (500, "N"), (600, "+"), (800, "V"), (1000, "A"), (1400, "Q"), (1700, "N"), (2100, "N")]


def test_tiny_records_extract_and_cache_the_features(tiny_db, cache_path):
    tiny_db.record("c1", ANN)
    proto = protocols.get("aami_rr", records=("c1",))
    beats = load_beats(proto, tiny_db.root, cache=cache_path, download=False)
    assert beats.rr_names == rr.DEFAULT_FEATURES and beats.rr.shape == (len(beats), 8)
    times = np.array([s for s, sym in ANN if sym in BEAT_SYMBOLS]) / 360.0
    kept = [i for i, (s, sym) in enumerate((a for a in ANN if a[1] in BEAT_SYMBOLS)) if sym in proto.keep_symbols]
    np.testing.assert_allclose(beats.rr, loop_features(times)[kept, :8], rtol=1e-6)
    # the same pre-RR as rr_prev (which is 0 for the first beat, where the feature takes post-RR)
    np.testing.assert_allclose(beats.rr[1:, 0] * 360, beats.rr_prev[1:], rtol=1e-5)
    again = load_beats(proto, tiny_db.root, cache=cache_path, download=False)
    np.testing.assert_array_equal(again.rr, beats.rr)
    assert again.rr_names == beats.rr_names
    sub = beats.subset(np.array([2, 0]))
    np.testing.assert_array_equal(sub.rr, beats.rr[[2, 0]])
    plain = load_beats(protocols.get("aami", records=("c1",)), tiny_db.root, cache=cache_path, download=False)
    assert plain.rr.shape == (len(plain), 0) and plain.rr_names == ()
    np.testing.assert_array_equal(plain.x, beats.x)


def test_beatset_refuses_mismatched_rr():
    with pytest.raises(ValueError, match="rr has shape"):
        BeatSet(x=np.zeros((2, 3, 1)), y=np.zeros(2, np.int32), classes=("a",), record=np.array(["r", "r"]),
                sample=np.zeros(2), symbol=np.array(["N", "N"]), r=np.zeros(2), lo=np.zeros(2), hi=np.zeros(2),
                rr_prev=np.zeros(2), rr_next=np.zeros(2), fs=360.0, lead_names={}, protocol={},
                rr=np.zeros((2, 3)), rr_names=("pre",))


@pytest.mark.realdata
def test_real_records_match_the_loop(real_data_dir, tmp_path):
    import wfdb

    recs = ("106", "201", "232")  # PVCs; atrial fibrillation and flutter; long pauses
    # every feature, the reference-free local context (prev, lmin, lmax) included
    beats = load_beats(protocols.get("aami_rr", records=recs, rr_features=rr.FEATURES), real_data_dir, cache=tmp_path, download=False)
    for rec in recs:
        ann = wfdb.rdann(str(real_data_dir / "mitdb" / rec), "atr")
        sym = np.array(ann.symbol)
        is_beat = np.isin(sym, list(BEAT_SYMBOLS))
        times = ann.sample[is_beat] / 360.0
        ref = loop_features(times)
        keep = np.isin(sym[is_beat], list(protocols.get("aami").keep_symbols))
        mine = beats.rr[beats.record == rec]
        assert len(mine) == keep.sum()
        np.testing.assert_allclose(mine, ref[keep], rtol=1e-5, atol=1e-6)
