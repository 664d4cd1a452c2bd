"""Rhythm augmentation: synthetic rhythms of real beats, RR features against the direct loop, training part only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ecgjax.config import DataConfig
from ecgjax.data import rhythm, rr
from ecgjax.data.dataset import BeatSet
from ecgjax.data.protocols import DS1, DS2
from ecgjax.errors import ConfigError
from tests.data.test_rr import loop_features

CLASSES = ("N", "S", "V", "F", "Q")
PROTO = {"name": "aami_rr", "rr_local_beats": 4, "rr_long_s": 20.0, "rr_ref_beats": 8, "rr_reference": "median"}


def beatset(counts: dict[str, tuple[int, int, int]], *, t: int = 16, leads: int = 2, names=rr.DEFAULT_FEATURES, seed: int = 0) -> BeatSet:
    """Records with (N, S, V) beat counts; the waveform of beat i is the constant i (so a source is recognisable);
    RR features of a regular 0.8 s rhythm appended as channels, as ``ecgjax.data.rr.append_channels`` does."""
    rng = np.random.default_rng(seed)
    ys, recs = [], []
    for rec, (n, s, v) in counts.items():
        y = np.array([0] * n + [1] * s + [2] * v, np.int32)
        ys.append(rng.permutation(y))
        recs += [rec] * len(y)
    y = np.concatenate(ys)
    m = len(y)
    rrf = np.tile(rr.beat_features(np.arange(m) * 0.8)[:1, [rr.FEATURES.index(f) for f in names]], (m, 1)).astype(np.float32)
    x = np.concatenate([np.broadcast_to(np.arange(m, dtype=np.float32)[:, None, None], (m, t, leads)),
                        np.broadcast_to(rrf[:, None, :], (m, t, len(names)))], axis=2)
    z = np.zeros(m, np.int32)
    record = np.array(recs)
    return BeatSet(x=np.ascontiguousarray(x), y=y, classes=CLASSES, record=record, sample=np.arange(m, dtype=np.int64) * 288,
                   symbol=np.array(["N"] * m), r=z + t // 2, lo=z, hi=z + t, rr_prev=z + 288, rr_next=z + 288, fs=360.0,
                   lead_names={r: ("MLII", "V1") for r in set(recs)}, protocol=PROTO, rr=rrf, rr_names=tuple(names))


@pytest.mark.parametrize("ectopic", ["S", "V"])
@pytest.mark.parametrize("pattern", rhythm.PATTERNS)
def test_synthetic_rhythm_patterns_couplings_and_pauses(pattern, ectopic):
    rng = np.random.default_rng(1)
    t, lab = rhythm.augment_rhythm(rng, 300, pattern, ectopic, 1.0)
    assert t.shape == lab.shape == (300,) and np.all(np.diff(t) > 0) and not lab[0]
    if pattern == "bigeminy":
        assert lab.sum() == 150 and np.all(lab[1::2])
    elif pattern == "trigeminy":
        assert lab.sum() == 100 and np.all(lab[2::3]) and not np.any(lab[0::3] | lab[1::3])
    else:
        assert 0.15 <= lab.mean() <= 0.95
    d = np.diff(t)
    ect = d[lab[1:]]  # intervals before ectopic beats: coupling x cycle (3% jitter, 5% drift)
    assert ect.max() < 0.85 * 1.1 and ect.min() > 0.55 * 0.85 and np.std(ect / np.median(ect)) < 0.1
    after = lab[:-1] & ~lab[1:]  # the sinus beat after an ectopic run
    if ectopic == "V":  # compensatory: a single V's two intervals sum to two cycles
        single = np.flatnonzero(lab[1:-1] & ~lab[:-2] & ~lab[2:]) + 1
        np.testing.assert_allclose(d[single - 1] + d[single], 2.0, rtol=0.12)
    else:
        assert np.all(d[after] > 0.85) and np.all(d[after] < 1.5 * 1.1)


def test_resequenced_features_are_the_direct_loop_of_the_synthetic_times_and_sources_are_training_beats():
    beats = beatset({"a": (60, 20, 0), "b": (50, 12, 15), "c": (40, 3, 30), "d": (40, 30, 30)}, names=rr.FEATURES)
    train = np.flatnonzero(beats.record != "d")  # d: validation
    seqs = rhythm.resequence(beats, train, seed=3, n_beats=50, min_ectopic=10)
    # class counts as specified: one sequence per training record and ectopic class with >= 10 beats of it
    assert [(r, c) for r, c, *_ in seqs] == [("a", "S"), ("b", "S"), ("b", "V"), ("c", "V")]
    for rec, c, pattern, src, times in seqs:
        assert len(src) == len(times) == 50 and set(src) <= set(train) and set(beats.record[src]) == {rec}
        y = beats.y[src]
        assert set(y.tolist()) <= {0, CLASSES.index(c)} and y[0] == 0
        if pattern == "bigeminy":
            assert np.sum(y != 0) == 25
        elif pattern == "trigeminy":
            assert np.sum(y != 0) == 16
    out, new = rhythm.append_sequences(beats, [(s, t) for *_, s, t in seqs])
    assert len(out) == len(beats) + 200 and new.tolist() == list(range(len(beats), len(beats) + 200))
    for name in beats._ARRAYS:  # the real beats are untouched
        np.testing.assert_array_equal(getattr(out, name)[: len(beats)], getattr(beats, name))
    start = len(beats)
    for *_, src, times in seqs:
        sl = slice(start, start + len(src))
        ref = loop_features(times, local_beats=4, long_s=20.0, ref_beats=8)  # the protocol's settings
        np.testing.assert_allclose(out.rr[sl], ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out.x[sl, 0, 2:], ref, rtol=1e-5, atol=1e-6)  # the RR channels
        np.testing.assert_array_equal(out.x[sl, :, :2], beats.x[src, :, :2])  # the waveform is the real beat's
        np.testing.assert_array_equal(out.y[sl], beats.y[src])
        np.testing.assert_array_equal(out.rr_prev[sl][1:], np.round(np.diff(times) * 360).astype(np.int32))
        start = sl.stop


def test_template_subtracted_leads_are_recomputed_in_the_sequence_order():
    """With template subtraction a beat's input is its difference from the preceding beats: in a synthetic rhythm
    those are the rhythm's own past beats (direct loop), not the source record's; an ectopic beat among ectopic
    beats then differs little from its template. Beat i's leads are the constant i (``beatset``)."""
    beats = beatset({"a": (60, 40, 0)})
    raw = beats.x[:, :, :2].copy()
    beats.lo[:] = 2  # samples outside the window are zero in every input
    k = 3
    s_pool, n_pool = np.flatnonzero(beats.y == 1), np.flatnonzero(beats.y == 0)
    lab = np.array([0, 1, 1, 1, 1, 0, 1, 1])
    src = np.where(lab == 1, s_pool[: len(lab)], n_pool[: len(lab)])
    times = np.cumsum(np.where(lab == 1, 0.55, 1.0))
    x, feats = rhythm.sequence_inputs(beats, src, times, leads=raw, template_beats=k)
    for j, i in enumerate(src):
        past = src[max(0, j - k): j]
        want = 0.0 if j == 0 else float(i) - np.mean(past.astype(np.float64))
        np.testing.assert_allclose(x[j, 2:, :2], want, rtol=1e-6)
        np.testing.assert_array_equal(x[j, :2, :2], 0.0)
    np.testing.assert_allclose(x[:, 0, 2:], feats)  # the RR channels are the sequence's features
    # the default keeps the source beats' channels (leads that are the beats themselves)
    np.testing.assert_array_equal(rhythm.sequence_inputs(beats, src, times)[0][:, :, :2], beats.x[src, :, :2])
    with pytest.raises(ValueError, match="leads="):
        rhythm.sequence_inputs(beats, src, times, template_beats=k)
    # the sinus reference reads the sequence's own intervals (the first beat's: its next one's)
    from tests.data.test_template import loop_sinus

    xs, _ = rhythm.sequence_inputs(beats, src, times, leads=raw, template_beats=k, template_reference="sinus")
    pre = np.diff(times, prepend=0.0)
    pre[0] = pre[1]
    want = (raw[src] - loop_sinus(raw[src], np.zeros(len(src)), pre, k, 8)) * (np.arange(16) >= 2)[None, :, None]
    np.testing.assert_allclose(xs[:, :, :2], want, rtol=1e-6, atol=1e-6)
    # append_sequences and augment pass the setting through
    out, new = rhythm.append_sequences(beats, [(src, times)], leads=raw, template_beats=k)
    np.testing.assert_array_equal(out.x[new], x)


def test_augment_is_seeded_and_fraction_and_classes_select_sequences():
    beats = beatset({"a": (60, 20, 12), "b": (50, 12, 15), "c": (40, 0, 30)})
    train = np.arange(len(beats))
    a1, i1, info1 = rhythm.augment(beats, train, seed=[0, 4, 11], n_beats=30)
    a2, i2, _ = rhythm.augment(beats, train, seed=[0, 4, 11], n_beats=30)
    np.testing.assert_array_equal(a1.x, a2.x)
    np.testing.assert_array_equal(i1, i2)
    assert [(d["record"], d["class"], d["n"]) for d in info1] == [("a", "S", 30), ("a", "V", 30), ("b", "S", 30), ("b", "V", 30), ("c", "V", 30)]
    assert i1[: len(train)].tolist() == train.tolist() and len(i1) == len(train) + 150
    for d, s in zip(info1, np.split(np.arange(len(beats), len(a1)), 5)):
        assert d["n_ectopic"] == int(np.sum(a1.y[s] == CLASSES.index(d["class"])))
    _, _, only_s = rhythm.augment(beats, train, seed=0, n_beats=30, classes=("S",))
    assert [d["class"] for d in only_s] == ["S", "S"]
    _, idx, none = rhythm.augment(beats, train, seed=0, fraction=0.0)
    assert none == [] and idx.tolist() == train.tolist()


def test_config_turns_it_on_and_refuses_bad_keys(monkeypatch):
    from ecgjax import interpatient

    assert interpatient.load_config("experiments/configs/aami_rr.py").train.data.rhythm_aug == {}
    aug = interpatient.load_config("experiments/configs/aami_rr.py:both,aug").train.data.rhythm_aug
    assert aug["fraction"] == 1.0 and aug["n_beats"] == 400 and tuple(aug["classes"]) == ("S", "V")
    assert tuple(interpatient.load_config("experiments/configs/aami_rr.py:both,augS").train.data.rhythm_aug["classes"]) == ("S",)
    assert interpatient.load_config("experiments/configs/aami_rr.py:quick,augS").train.data.rhythm_aug["min_ectopic"] == 2
    # seedbaseB: other initialisations, the same folds (position i validates on fold i)
    rerun = interpatient.load_config("experiments/configs/aami_rr.py:both,seedbase5")
    assert rerun.seeds == (5, 6, 7, 8, 9) and [interpatient.seed_config(rerun, s).data.split_kwargs["fold"] for s in rerun.seeds] == [0, 1, 2, 3, 4]
    with pytest.raises(ConfigError, match="rhythm_aug: unknown key"):
        DataConfig(rhythm_aug={"share": 0.5})
    with pytest.raises(ConfigError, match="fraction"):
        DataConfig(rhythm_aug={"fraction": 2})


def test_prepare_appends_synthetic_training_beats_only_and_reads_no_ds2_record(tiny_mitdb, cache_path, monkeypatch):
    from ecgjax import interpatient
    from ecgjax.data import wfdb_io
    from ecgjax.train import data as data_lib

    reads = []
    real = wfdb_io.read_record
    monkeypatch.setattr(wfdb_io, "read_record", lambda folder, name, **kw: reads.append(name) or real(folder, name, **kw))
    cfg = interpatient.load_config("experiments/configs/aami_rr.py:quick,aug")
    d = dataclasses.replace(interpatient.seed_config(cfg, 0).data, max_beats=None)
    plain = data_lib.prepare(dataclasses.replace(d, rhythm_aug={}), seed=0, data_dir=tiny_mitdb.root, cache=cache_path)
    aug = data_lib.prepare(d, seed=0, data_dir=tiny_mitdb.root, cache=cache_path)
    assert reads and set(reads) <= set(DS1) and not set(reads) & set(DS2)
    n = len(plain.beats)
    assert len(aug.beats) > n and set(aug.beats.record) <= set(DS1)
    np.testing.assert_array_equal(aug.beats.x[:n], plain.beats.x)
    np.testing.assert_array_equal(aug.split.val, plain.split.val)
    np.testing.assert_array_equal(aug.split.test, plain.split.test)
    assert aug.split.train[: len(plain.split.train)].tolist() == plain.split.train.tolist()
    new = aug.split.train[len(plain.split.train):]
    assert new.tolist() == list(range(n, len(aug.beats)))
    # every appended beat copies a training record's beat: none of the validation fold's records
    assert set(aug.beats.record[new]) <= set(plain.beats.record[plain.split.train])
    assert not set(aug.beats.record[new]) & set(plain.beats.record[plain.split.val])
    # the config subtracts a running template: each sequence's is recomputed in its own order from the raw leads
    assert d.template_beats > 0
    leads = data_lib.raw_leads(d, data_dir=tiny_mitdb.root, cache=cache_path)
    assert leads.shape == (n, *plain.beats.x.shape[1:2], plain.beats.x.shape[2] - len(plain.beats.rr_names))
    seqs = rhythm.resequence(plain.beats, plain.split.train, seed=[0, d.split_seed, 11], **{**rhythm.DEFAULTS, **d.rhythm_aug})
    start = n
    for *_, src, times in seqs:
        want, _ = rhythm.sequence_inputs(plain.beats, src, times, leads=leads, template_beats=d.template_beats)
        np.testing.assert_array_equal(aug.beats.x[start: start + len(src)], want)
        start += len(src)
    assert start == len(aug.beats)
    with pytest.raises(ConfigError, match="needs a protocol with RR features"):
        data_lib.prepare(DataConfig(protocol="synthetic", rhythm_aug={"fraction": 1.0}), seed=0)


def test_screen_rhythm_has_the_asked_fraction_of_premature_s_beats():
    rng = np.random.default_rng(0)
    for frac in (0.1, 0.85):
        t, y = rhythm.synthetic_record(rng, frac, n_beats=3000)
        assert len(t) == len(y) == 3000 and np.all(np.diff(t) > 0)
        assert abs(y.mean() - frac) < 0.05
        pre = np.diff(t)
        assert np.median(pre[y[1:] == 1]) < 0.85 * np.median(pre[y[1:] == 0])  # S beats are premature
