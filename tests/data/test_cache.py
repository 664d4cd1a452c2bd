"""The beat cache: keyed by protocol fields and record checksums, written atomically."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ecgjax.data import dataset, load_beats, protocols
from ecgjax.data.dataset import BeatSet, cache_key

ANN = [(200, "N"), (500, "N"), (800, "V"), (1100, "A"), (1400, "N"), (1700, "N")]


@pytest.fixture
def db(tiny_db):
    tiny_db.record("c1", ANN)
    tiny_db.record("c2", [(100, "N"), (400, "N"), (700, "V"), (1000, "N")])
    return tiny_db


PROTO = protocols.get("jones2020", records=("c1", "c2"))


def npz_files(folder):
    return sorted(p.name for p in folder.iterdir())


def assert_same(a: BeatSet, b: BeatSet):
    for k in BeatSet._ARRAYS:
        x, y = getattr(a, k), getattr(b, k)
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), k
    assert (a.classes, a.fs, a.lead_names, a.protocol) == (b.classes, b.fs, b.lead_names, b.protocol)


def test_second_load_comes_from_cache(db, cache_path, monkeypatch):
    first = load_beats(PROTO, db.root, cache=cache_path, download=False)
    (name,) = npz_files(cache_path)
    assert name.startswith("jones2020-") and name.endswith(".npz")
    monkeypatch.setattr(dataset, "extract", lambda *a: pytest.fail("cache hit must not extract"))
    again = load_beats(PROTO, db.root, cache=cache_path, download=False)
    assert_same(first, again)
    assert_same(first, BeatSet.load(cache_path / name))


def test_protocols_differing_only_in_default_split_share_one_entry(db, cache_path, monkeypatch):
    """The default split does not change the beats: one cache file serves both, never rebuilt in turn, and each
    load carries its caller's protocol."""
    first = load_beats(PROTO, db.root, cache=cache_path, download=False)
    other = dataclasses.replace(PROTO, default_split="kfold")
    monkeypatch.setattr(dataset, "extract", lambda *a: pytest.fail("cache hit must not extract"))
    for proto in (other, PROTO, other):
        got = load_beats(proto, db.root, cache=cache_path, download=False)
        assert got.protocol["default_split"] == proto.default_split
        assert got.x.tobytes() == first.x.tobytes()
    assert len(npz_files(cache_path)) == 1


def test_cache_file_has_no_pickled_objects(db, cache_path):
    load_beats(PROTO, db.root, cache=cache_path, download=False)
    (name,) = npz_files(cache_path)
    with np.load(cache_path / name, allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)


CHANGES = {
    "records": ("c1",),
    "symbol_map": PROTO.symbol_map + (("a", "A"),),
    "window": "fixed",
    "boundary": "all",
    "skip_first_last": False,
    "max_len": 400,
    "before_s": 0.3,
    "after_s": 0.5,
    "normalisation": "zscore_lead",
    "lead_order": "mlii_first",
    "fs": 250.0,
    "database": "nstdb",
}


def test_every_semantic_field_is_in_the_key():
    # Every field but the two display ones must be listed above.
    fields = {f.name for f in dataclasses.fields(PROTO)} - {"name", "default_split"}
    # the RR fields are keyed only when rr_features is set: tests/data/test_rr.py
    missing = fields - set(CHANGES) - {"classes", "rr_features", "rr_local_beats", "rr_long_s", "rr_ref_beats", "rr_reference"}
    assert not missing, f"add a cache-key test for {missing}"
    sums = {"c1": {"c1.dat": "ab"}}
    base = cache_key(PROTO, sums)
    for field, value in CHANGES.items():
        assert cache_key(PROTO.replace(**{field: value}), sums) != base, field
    assert cache_key(PROTO.replace(classes=PROTO.classes[::-1]), sums) != base
    # Display-only fields do not change the key (the file name carries the name).
    assert cache_key(PROTO.replace(name="other", default_split="lpo"), sums) == base
    assert cache_key(PROTO, {"c1": {"c1.dat": "ac"}}) != base


def test_protocol_change_gives_a_new_cache_file(db, cache_path):
    a = load_beats(PROTO, db.root, cache=cache_path, download=False)
    b = load_beats(PROTO.replace(max_len=250), db.root, cache=cache_path, download=False)
    assert len(npz_files(cache_path)) == 2
    assert a.x.shape[1] == 430 and b.x.shape[1] == 250


def test_record_change_invalidates_the_cache(db, cache_path):
    a = load_beats(PROTO, db.root, cache=cache_path, download=False)
    db.record("c1", ANN + [(2000, "V"), (2300, "N")])  # two more beats in the .atr
    b = load_beats(PROTO, db.root, cache=cache_path, download=False)
    assert len(b) == len(a) + 2
    assert len(npz_files(cache_path)) == 2


def test_crash_while_writing_leaves_nothing(db, cache_path, monkeypatch):
    real_savez = np.savez

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise KeyboardInterrupt("killed while writing the cache")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        load_beats(PROTO, db.root, cache=cache_path, download=False)
    assert npz_files(cache_path) == []  # no .npz, no temporary file

    monkeypatch.setattr(np, "savez", real_savez)
    b = load_beats(PROTO, db.root, cache=cache_path, download=False)
    assert len(npz_files(cache_path)) == 1
    assert_same(b, load_beats(PROTO, db.root, cache=False, download=False))


def test_unreadable_cache_is_rebuilt(db, cache_path):
    a = load_beats(PROTO, db.root, cache=cache_path, download=False)
    (name,) = npz_files(cache_path)
    (cache_path / name).write_bytes(b"not a zip")
    b = load_beats(PROTO, db.root, cache=cache_path, download=False)
    assert_same(a, b)
    assert_same(a, BeatSet.load(cache_path / name))


def test_cache_false_writes_nothing(db, tmp_path, monkeypatch):
    monkeypatch.setenv("ECGJAX_CACHE_DIR", str(tmp_path / "envcache"))
    load_beats(PROTO, db.root, cache=False, download=False)
    assert not (tmp_path / "envcache").exists()


def test_cache_folder_order(db, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_beats(PROTO, db.root, download=False)
    assert len(npz_files(tmp_path / "xdg" / "ecgjax" / "beats")) == 1
    monkeypatch.setenv("ECGJAX_CACHE_DIR", str(tmp_path / "env"))
    load_beats(PROTO, db.root, download=False)
    assert len(npz_files(tmp_path / "env")) == 1
    load_beats(PROTO, db.root, cache=tmp_path / "flag", download=False)
    assert len(npz_files(tmp_path / "flag")) == 1


def test_subset_and_counts(db):
    b = load_beats(PROTO, db.root, cache=False, download=False)
    assert sum(b.counts().values()) == len(b)
    idx = np.flatnonzero(b.record == "c2")
    sub = b.subset(idx)
    assert len(sub) == len(idx) and set(sub.record.tolist()) == {"c2"}
    assert sub.counts() == b.counts(idx)
    assert list(b.counts()) == list(b.classes)


def test_object_arrays_are_refused_not_pickled(tmp_path):
    from ecgjax.io import atomic_savez

    with pytest.raises(TypeError, match="pickle"):
        atomic_savez(tmp_path / "o.npz", o=np.array([{"a": 1}], dtype=object))
    assert not list(tmp_path.iterdir())


def test_lead_axis_names_positions_from_the_headers():
    """Names come from the record headers; a position some records store differently is starred and explained."""
    from ecgjax.data.dataset import BeatSet

    n = 4
    z = np.zeros(n, np.int32)
    b = BeatSet(x=np.zeros((n, 8, 2), np.float32), y=z, classes=("N",), record=np.array(["100", "101", "102", "114"]),
                sample=z.astype(np.int64), symbol=np.array(["N"] * n), r=z, lo=z, hi=z + 8, rr_prev=z, rr_next=z, fs=360.0,
                lead_names={"100": ("MLII", "V5"), "101": ("MLII", "V1"), "102": ("V5", "V2"), "114": ("MLII", "V1")}, protocol={})
    names, note = b.lead_axis()
    assert names == ("MLII*", "V1*") and note == "MLII* is V5 in 102. V1* is V2 in 102; V5 in 100"
    assert b.lead_axis(np.array([1, 3])) == (("MLII", "V1"), "")


def test_lead_axis_names_only_the_waveform_leads():
    """A BeatSet with RR-feature channels (aami_rr: 2 leads + 8 features) names its 2 leads, not 10 positions."""
    from ecgjax.data.dataset import BeatSet

    n = 2
    z = np.zeros(n, np.int32)
    b = BeatSet(x=np.zeros((n, 8, 5), np.float32), y=z, classes=("N",), record=np.array(["100", "101"]),
                sample=z.astype(np.int64), symbol=np.array(["N"] * n), r=z, lo=z, hi=z + 8, rr_prev=z, rr_next=z, fs=360.0,
                lead_names={"100": ("MLII", "V5"), "101": ("MLII", "V5")}, protocol={}, rr=np.zeros((n, 3), np.float32),
                rr_names=("pre", "post", "local"))
    assert b.lead_axis() == (("MLII", "V5"), "")
