"""Bad records fail with an ``ecgjax.errors`` error naming the record and the problem,
leave no cache file behind, and reach the CLI as ``ecgjax: error: ...`` with exit 2."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from ecgjax.cli import main
from ecgjax.data import load_beats, protocols
from ecgjax.data.wfdb_io import read_record
from ecgjax.errors import ChecksumError, ConfigError, DataNotFoundError, RecordError
from tests.conftest import tiny_mitdb_annotations

ANN = [(200, "N"), (500, "N"), (800, "V"), (1100, "N"), (1400, "N")]


def corrupt(db, how: str, name: str, ann=ANN) -> str:
    """Break record ``name`` (written first) in one way; return a regex the error must match."""
    base = db.folder / name
    if how == "truncated_dat":
        db.record(name, ann)
        dat = base.with_suffix(".dat")
        dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])
        return r"truncated"
    if how == "missing_dat":
        db.record(name, ann)
        base.with_suffix(".dat").unlink()
        return r"signal file .*\.dat is missing"
    if how == "missing_atr":
        db.record(name, ann)
        base.with_suffix(".atr").unlink()
        return r"annotation file .*\.atr is missing"
    if how == "garbled_header":
        db.record(name, ann)
        base.with_suffix(".hea").write_text("this is not # a header\n\x00\x01 garbage\n")
        return r"header .*\.hea"
    if how == "nan_samples":
        sig = np.tile(np.arange(1600, dtype=np.int16)[:, None] % 50, (1, 2))
        sig[900, 1] = -32768  # format 16's invalid-sample value: wfdb returns NaN
        db.record(name, ann, signal=sig)
        return r"NaN .* first at sample 900 \(lead V1\)"
    if how == "checksum":
        db.record(name, ann)
        dat = base.with_suffix(".dat")
        good = hashlib.sha256(dat.read_bytes()).hexdigest()
        hea = hashlib.sha256(base.with_suffix(".hea").read_bytes()).hexdigest()
        # A listing like PhysioNet's, also naming files that are not present.
        (db.folder / "SHA256SUMS.txt").write_text(
            f"{hea}  {name}.hea\n{good}  {name}.dat\n{'0' * 64}  not_here.dat\n"
        )
        data = bytearray(dat.read_bytes())
        data[10] ^= 0xFF  # one flipped byte
        dat.write_bytes(bytes(data))
        return r"does not match .*SHA256SUMS\.txt"
    if how == "garbled_atr":
        db.record(name, ann)
        base.with_suffix(".atr").write_bytes(bytes(range(7, 71)))
        # Depending on the bytes, wfdb fails or returns nonsense annotations.
        return r"could not read .*\.atr|\.atr has annotations out of order or outside the signal"
    if how == "empty_atr":
        db.record(name, ann)
        base.with_suffix(".atr").write_bytes(b"")
        return r"\.atr holds no annotations"
    raise ValueError(how)


CASES = [
    "truncated_dat", "missing_dat", "missing_atr", "garbled_header", "garbled_atr", "empty_atr", "nan_samples",
    "checksum",
]


@pytest.mark.parametrize("how", CASES)
def test_bad_record_raises_named_error_and_writes_no_cache(tiny_db, cache_path, how):
    tiny_db.record("ok1", ANN)
    pattern = corrupt(tiny_db, how, "bad7")
    proto = protocols.get("jones2020", records=("ok1", "bad7"))
    with pytest.raises(RecordError, match=pattern) as ei:
        load_beats(proto, tiny_db.root, cache=cache_path, download=False)
    assert ei.value.record == "bad7"
    assert str(ei.value).startswith("record bad7: ")
    if how == "checksum":
        assert isinstance(ei.value, ChecksumError)
    assert list(cache_path.iterdir()) == []


def test_checksums_of_present_files_that_match_pass(tiny_db, cache_path):
    tiny_db.record("ok1", ANN)
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(tiny_db.folder.iterdir())]
    lines.append(f"{'f' * 64}  absent_record.dat")  # listed but not present: not checked
    (tiny_db.folder / "SHA256SUMS.txt").write_text("\n".join(lines) + "\n")
    b = load_beats(protocols.get("jones2020", records=("ok1",)), tiny_db.root, cache=cache_path, download=False)
    assert len(b) == 3


def test_annotations_outside_the_signal(tiny_db):
    tiny_db.record("oob", [(200, "N"), (500, "N"), (5000, "N")], n_samples=1000)
    with pytest.raises(RecordError, match=r"record oob: .*outside the signal"):
        read_record(tiny_db.folder, "oob")


def test_unknown_protocol_lists_available():
    with pytest.raises(ConfigError) as ei:
        protocols.get("jones2021")
    msg = str(ei.value)
    assert "jones2021" in msg
    for name in protocols.available():
        assert name in msg
    assert {"aami", "jones2020", "jones2020_code"} <= set(protocols.available())


def test_unknown_protocol_field():
    with pytest.raises(ConfigError, match="max_length"):
        protocols.get("jones2020", max_length=400)
    with pytest.raises(ConfigError, match="normalisation"):
        protocols.get("jones2020", normalisation="l2")


# -- sampling rate --------------------------------------------------------------------


def _peaky_record(db, name, fs, peaks, n_samples):
    """Gaussian bumps (sigma 3 samples) at ``peaks`` on both leads; digital i16[S, 2]."""
    t = np.arange(n_samples)[:, None]
    bumps = np.exp(-0.5 * ((t - np.asarray(peaks)[None, :]) / 3.0) ** 2).sum(axis=1)
    sig = np.round(1000 * bumps)[:, None] * np.array([[1, -1]])
    db.record(name, [(int(p), "N") for p in peaks], fs=fs, signal=sig.astype(np.int16), n_samples=n_samples)


def test_250hz_record_is_resampled_to_360hz_with_r_on_the_peaks(tiny_db):
    # At 360/250 = 1.44 these land on every fractional position, e.g. 213 -> 306.72.
    peaks = np.arange(200, 2300, 213)
    _peaky_record(tiny_db, "r250", 250, peaks, 2500)
    rec = read_record(tiny_db.folder, "r250")
    assert rec.fs == 360
    assert rec.signal.shape == (3600, 2)
    for s in rec.ann_samples:
        seg = rec.signal[s - 6 : s + 7, 0]
        assert np.argmax(seg) == 6, f"annotation at {s}, peak at {s - 6 + np.argmax(seg)}"
    np.testing.assert_array_equal(rec.ann_samples, np.rint(peaks * 1.44).astype(np.int64))

    proto = protocols.get("jones2020", records=("r250",), normalisation="none")
    b = load_beats(proto, tiny_db.root, cache=False, download=False)
    assert b.fs == 360 and len(b) == len(peaks) - 2
    # R inside every window is the window's maximum on lead 0 and minimum on lead 1.
    n = np.arange(len(b))
    assert (b.x[n, b.r, 0] == b.x[:, :, 0].max(axis=1)).all()
    assert (b.x[n, b.r, 1] == b.x[:, :, 1].min(axis=1)).all()
    at360 = np.rint(peaks * 1.44).astype(np.int64)
    np.testing.assert_array_equal(b.sample, at360[1:-1])
    np.testing.assert_array_equal(b.rr_prev, np.diff(at360)[:-1])


def test_other_rate_refused_without_resampling(tiny_db):
    _peaky_record(tiny_db, "r250", 250, [300, 600, 900], 1200)
    with pytest.raises(RecordError, match=r"record r250: .*sampling rate of 250 Hz; ecgjax expects 360 Hz"):
        read_record(tiny_db.folder, "r250", resample=False)


def test_record_at_360hz_is_not_touched(tiny_db):
    tiny_db.record("r360", ANN)
    rec = read_record(tiny_db.folder, "r360", resample=False)
    np.testing.assert_array_equal(rec.signal, tiny_db.physical("r360"))
    assert rec.ann_samples.tolist() == [s for s, _ in ANN]


# -- the same problems through the CLI ---------------------------------------------------


def _summary(root, cache, *extra):
    return main(["data", "summary", "--protocol", "jones2020", "--data-dir", str(root), "--cache-dir", str(cache), "--no-download", *extra])


@pytest.mark.parametrize("how", CASES)
def test_cli_reports_bad_record_without_traceback(tiny_mitdb, cache_path, capsys, how):
    corrupt(tiny_mitdb, how, "105", ann=tiny_mitdb_annotations(5))
    assert _summary(tiny_mitdb.root, cache_path) == 2
    out, err = capsys.readouterr()
    assert err.startswith("ecgjax: error: record 105: ") or "\necgjax: error: record 105: " in err
    assert "Traceback" not in err and out == ""
    assert list(cache_path.iterdir()) == []


def test_cli_unknown_protocol(capsys, tmp_path):
    assert main(["data", "summary", "--protocol", "nope", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"ecgjax: error: unknown protocol 'nope'; available: {', '.join(protocols.available())}" in err
    assert "Traceback" not in err


def test_cli_missing_data(capsys, tmp_path):
    # Download allowed, but it fails (the test suite's downloader raises ConnectionError).
    assert main(["data", "summary", "--protocol", "jones2020", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "ecgjax: error: database 'mitdb' not found and the download from PhysioNet failed (ConnectionError" in err
    assert "--data-dir" in err and "ECGJAX_DATA_DIR" in err and "Traceback" not in err


def test_cli_unknown_split(tiny_mitdb, cache_path, capsys):
    assert _summary(tiny_mitdb.root, cache_path, "--split", "loo") == 2
    assert "ecgjax: error: unknown split 'loo'" in capsys.readouterr().err


def test_missing_database_error_lists_where_it_looked(tmp_path):
    with pytest.raises(DataNotFoundError) as ei:
        load_beats(protocols.get("jones2020"), tmp_path, download=False)
    assert str(tmp_path / "mitdb") in str(ei.value)
    with pytest.raises(DataNotFoundError, match="mitdb"):  # a preset's name works as well
        load_beats("jones2020", tmp_path, download=False)


def test_truncated_format_212(tiny_db):
    # mitdb's own format: two 12-bit samples in 3 bytes.
    tiny_db.record("f212", ANN, fmt="212")
    np.testing.assert_array_equal(read_record(tiny_db.folder, "f212").signal, tiny_db.physical("f212"))
    dat = tiny_db.folder / "f212.dat"
    dat.write_bytes(dat.read_bytes()[:-3])
    with pytest.raises(RecordError, match=r"record f212: .*f212\.dat is truncated: 8997 bytes, .* needs 9000"):
        read_record(tiny_db.folder, "f212")


def test_records_with_different_lead_counts(tiny_db, cache_path):
    tiny_db.record("two", ANN)
    tiny_db.record("one", ANN, n_leads=1)
    with pytest.raises(RecordError, match="record one: has 1 leads, earlier records have 2"):
        load_beats(protocols.get("jones2020", records=("two", "one")), tiny_db.root, cache=cache_path, download=False)
    assert list(cache_path.iterdir()) == []
