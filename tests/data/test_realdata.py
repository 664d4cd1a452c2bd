"""Integration on the real MIT-BIH Arrhythmia Database (``$ECGJAX_DATA_DIR/mitdb``).

Reference counts: /work/shared/docs/reference_pipeline.md sections 1.7, 8.3, and
the project's issue 2. The default suite reads five records per protocol and checks each record's counts
(pinned from a whole-database extraction that matches the reference totals); the whole database, extracted
once per session per protocol (conftest), is ``slow``: ``pytest -m slow tests/data/test_realdata.py``.
"""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from ecgjax.data import check_patient_disjoint, load_beats, make_split, protocols
from ecgjax.data import locate
from ecgjax.data.protocols import DS1, DS2, JONES_LPO_TEST, MITDB_RECORDS, PACED_RECORDS
from ecgjax.errors import ChecksumError

pytestmark = pytest.mark.realdata

JONES2020 = {"A": 2297, "E": 99, "j": 200, "L": 8062, "N": 72821, "P": 7020, "R": 6618, "V": 7105}
JONES2020_CODE = {"A": 2455, "E": 115, "j": 208, "L": 8071, "N": 73324, "P": 7024, "R": 6769, "V": 7113}
AAMI_DS1 = {"N": 45866, "S": 944, "V": 3788, "F": 415, "Q": 8}
AAMI_DS2 = {"N": 44259, "S": 1837, "V": 3221, "F": 388, "Q": 7}

# Per-record counts of five records with many classes (100 normal, 124 junctional, 207 L/R/E/A/V, 217 paced,
# 232 mostly A), pinned from the whole-database extractions above; 217 is paced, so not in aami.
FEW = ("100", "124", "207", "217", "232")
PER_RECORD = {
    "jones2020": {"100": {"A": 33, "N": 2237, "V": 1}, "124": {"A": 2, "j": 3, "R": 1308, "V": 46},
                  "207": {"A": 106, "E": 98, "L": 1450, "R": 81, "V": 105}, "217": {"N": 244, "P": 1540, "V": 162},
                  "232": {"A": 1135, "R": 118}},
    "jones2020_code": {"100": {"A": 33, "N": 2238, "V": 1}, "124": {"A": 2, "j": 3, "R": 1311, "V": 47},
                       "207": {"A": 106, "E": 98, "L": 1456, "R": 86, "V": 105}, "217": {"N": 244, "P": 1541, "V": 162},
                       "232": {"A": 1143, "R": 129}},
    "aami": {"100": {"N": 2239, "S": 33, "V": 1}, "124": {"N": 1536, "S": 31, "V": 47, "F": 5},
             "207": {"N": 1543, "S": 107, "V": 210}, "232": {"N": 398, "S": 1382}},
}


def _per_record(b, records) -> dict:
    return {r: {k: v for k, v in b.counts(np.flatnonzero(b.record == r)).items() if v} for r in records}


@pytest.fixture(scope="module")
def few(real_data_dir, tmp_path_factory):
    """Each protocol on the five records, extracted into one cache folder: {name: BeatSet}."""
    cache = tmp_path_factory.mktemp("few-cache")
    out = {}
    for name in PER_RECORD:
        proto = protocols.get(name)
        out[name] = load_beats(protocols.get(name, records=tuple(r for r in FEW if r in proto.records)), real_data_dir,
                               cache=cache, download=False)
    return out, cache


@pytest.mark.parametrize("name", list(PER_RECORD))
def test_per_record_counts_on_five_records(few, name):
    b = few[0][name]
    assert _per_record(b, PER_RECORD[name]) == PER_RECORD[name]
    assert np.isfinite(b.x).all() and ((b.lo <= b.r) & (b.r < b.hi)).all()
    assert b.x.dtype == np.float32 and b.y.dtype == np.int32
    if name == "aami":  # mlii_first: MLII is lead 0 (as stored in these records)
        assert all(names[0] == "MLII" for names in b.lead_names.values())


def test_cached_load_of_few_records_does_not_extract(few, real_data_dir, monkeypatch):
    beats, cache = few
    monkeypatch.setattr("ecgjax.data.dataset.extract", lambda *a, **k: pytest.fail("a cached load re-extracted"))
    proto = protocols.get("aami", records=tuple(r for r in FEW if r in protocols.get("aami").records))
    assert load_beats(proto, real_data_dir, cache=cache, download=False).x.tobytes() == beats["aami"].x.tobytes()


@pytest.mark.slow
def test_jones2020_counts(real_jones):
    b = real_jones.beats
    assert len(b) == 104_222
    assert b.counts() == JONES2020
    assert _per_record(b, PER_RECORD["jones2020"]) == PER_RECORD["jones2020"]
    assert set(b.record.tolist()) == set(MITDB_RECORDS)


@pytest.mark.slow
def test_jones2020_code_counts(real_jones_code):
    b = real_jones_code.beats
    assert len(b) == 105_079
    assert b.counts() == JONES2020_CODE
    assert _per_record(b, PER_RECORD["jones2020_code"]) == PER_RECORD["jones2020_code"]


@pytest.mark.slow
def test_aami_ds1_ds2_counts(real_aami):
    b = real_aami.beats
    assert b.counts(np.flatnonzero(np.isin(b.record, DS1))) == AAMI_DS1
    assert b.counts(np.flatnonzero(np.isin(b.record, DS2))) == AAMI_DS2
    assert _per_record(b, PER_RECORD["aami"]) == PER_RECORD["aami"]
    assert len(b) == 51_021 + 49_712  # only DS1 and DS2: the paced records are excluded
    assert not set(PACED_RECORDS) & set(b.record.tolist())
    # mlii_first: MLII is lead 0 in every aami record (114 is stored V5, MLII).
    assert all(names[0] == "MLII" for names in b.lead_names.values())
    assert b.lead_names["114"] == ("MLII", "V5")


@pytest.mark.slow
@pytest.mark.parametrize("loaded", ["real_jones", "real_jones_code", "real_aami"])
def test_windows_are_well_formed(loaded, request):
    b = request.getfixturevalue(loaded).beats
    assert np.isfinite(b.x).all()
    assert ((b.lo <= b.r) & (b.r < b.hi)).all()  # R inside the real signal
    assert b.x.dtype == np.float32 and b.y.dtype == np.int32
    assert not b.x[~b.valid].any() or b.protocol["normalisation"] == "minmax_beat"


def test_raw_windows_match_the_record(real_data_dir, tmp_path):
    import wfdb

    proto = protocols.get("jones2020", normalisation="none", records=("100", "114"))
    b = load_beats(proto, real_data_dir, cache=False, download=False)
    for rec in ("100", "114"):
        sig = wfdb.rdrecord(str(real_data_dir / "mitdb" / rec)).p_signal.astype(np.float32)
        n = np.flatnonzero(b.record == rec)
        np.testing.assert_array_equal(b.x[n, b.r[n]], sig[b.sample[n]])
        start = b.sample[n] - b.r[n]
        k = n[len(n) // 2]
        s0 = start[len(n) // 2]
        np.testing.assert_array_equal(b.x[k, : b.hi[k]], sig[s0 : s0 + b.hi[k]])
    assert b.lead_names["114"] == ("V5", "MLII")  # as_stored: the paper's layout


@pytest.mark.slow
def test_splits_on_real_data_are_patient_disjoint(real_jones, real_aami):
    jb, ab = real_jones.beats, real_aami.beats
    lpo = make_split("lpo", jb.y, jb.record, seed=0)
    check_patient_disjoint(lpo, jb.record)
    assert set(jb.record[lpo.test].tolist()) == set(JONES_LPO_TEST)

    ds = make_split("ds1ds2", ab.y, ab.record, seed=0)
    check_patient_disjoint(ds, ab.record)
    assert ab.counts(ds.test) == AAMI_DS2

    test_records = []
    for fold in range(5):
        kf = make_split("kfold", jb.y, jb.record, seed=0, fold=fold)
        check_patient_disjoint(kf, jb.record)
        test_records += sorted(set(jb.record[kf.test].tolist()))
    assert sorted(test_records) == sorted(MITDB_RECORDS)


@pytest.mark.slow
def test_lpo_test_composition_matches_reference(real_jones_code):
    b = real_jones_code.beats
    s = make_split("lpo", b.y, b.record, seed=0)
    c = b.counts(s.test)
    assert {k: v for k, v in c.items() if v} == {"N": 7488, "V": 1632, "P": 1379, "A": 28, "E": 1}


@pytest.mark.slow
def test_cold_extraction_time_is_reported(real_jones, capsys):
    # Informational: timings on a shared machine are not asserted (benchmarks/ measures speed).
    with capsys.disabled():
        print(f"\n[realdata] jones2020 cold extraction of 48 records: {real_jones.cold_s:.2f} s")
    assert real_jones.cold_s > 0


@pytest.mark.slow
def test_cached_load_reads_the_cache_without_extracting(real_jones, real_data_dir, capsys, monkeypatch):
    """A second load is served from the cache: extraction is never called, the beats are identical
    (the speed-up is printed for information, not asserted: timings on a shared machine are noise)."""
    def no_extract(*a, **k):
        raise AssertionError("a cached load re-extracted the records")

    monkeypatch.setattr("ecgjax.data.dataset.extract", no_extract)
    t0 = time.perf_counter()
    cached = load_beats(protocols.get("jones2020"), real_data_dir, cache=real_jones.cache_dir, download=False)
    warm_s = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n[realdata] jones2020 cold {real_jones.cold_s:.2f} s, cached {warm_s:.2f} s ({real_jones.cold_s / warm_s:.0f}x)")
    assert cached.x.tobytes() == real_jones.beats.x.tobytes()


def test_sha256sums_of_present_files_verify(real_data_dir):
    folder = real_data_dir / "mitdb"
    sums = locate.read_sha256sums(folder)
    assert sums is not None
    present = {p.name for p in folder.iterdir()}
    assert set(sums) - present, "SHA256SUMS.txt also lists files that are not here"
    for rec in MITDB_RECORDS:
        got = locate.record_checksums(folder, rec, sums)  # raises on a mismatch
        assert set(got) == {f"{rec}.hea", f"{rec}.dat", f"{rec}.atr"}
        assert all(sums[name] == digest for name, digest in got.items())


def test_sha256_mismatch_on_a_copied_record(real_data_dir, tmp_path):
    src = real_data_dir / "mitdb"
    folder = tmp_path / "mitdb"
    folder.mkdir()
    for name in ("100.hea", "100.dat", "100.atr", "SHA256SUMS.txt"):
        shutil.copy(src / name, folder / name)
    sums = locate.read_sha256sums(folder)
    locate.record_checksums(folder, "100", sums)
    data = bytearray((folder / "100.atr").read_bytes())
    data[-3] ^= 0x01
    (folder / "100.atr").write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"record 100: .*100\.atr does not match"):
        locate.record_checksums(folder, "100", sums)
