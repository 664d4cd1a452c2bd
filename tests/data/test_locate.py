"""Finding the database: flag > $ECGJAX_DATA_DIR > user cache, then a download
that never leaves a half-complete folder. No test touches the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from ecgjax.data import locate
from ecgjax.errors import DataNotFoundError

# The real downloader, taken before the autouse fixture replaces it with one that raises.
real_download_database = locate.download_database


def make_db(root: Path, database: str = "mitdb") -> Path:
    folder = root / database
    folder.mkdir(parents=True)
    (folder / "100.hea").write_text("100 1 360 10\n")
    return folder


@pytest.fixture
def three_roots(tmp_path, monkeypatch):
    """A database under a flag root, an env-var root and the user cache."""
    flag = make_db(tmp_path / "flag")
    env = make_db(tmp_path / "env")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    user = make_db(tmp_path / "xdg" / "ecgjax" / "data")
    return flag, env, user


def test_flag_beats_env_beats_user_cache(three_roots, monkeypatch):
    flag, env, user = three_roots
    monkeypatch.setenv("ECGJAX_DATA_DIR", str(env.parent))
    assert locate.find_database("mitdb", flag.parent) == flag
    assert locate.find_database("mitdb") == env
    monkeypatch.delenv("ECGJAX_DATA_DIR")
    assert locate.find_database("mitdb") == user


def test_flag_without_the_database_falls_back_to_user_cache_not_env(three_roots, monkeypatch, tmp_path):
    _, env, user = three_roots
    monkeypatch.setenv("ECGJAX_DATA_DIR", str(env.parent))
    # An explicit flag replaces the environment variable (it is not consulted).
    assert locate.find_database("mitdb", tmp_path / "empty") == user


def test_user_cache_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert locate.user_cache_dir() == tmp_path / "x" / "ecgjax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert locate.user_cache_dir() == tmp_path / "home" / ".cache" / "ecgjax"


def test_folder_without_headers_is_not_a_database(tmp_path, monkeypatch):
    (tmp_path / "d" / "mitdb").mkdir(parents=True)
    (tmp_path / "d" / "mitdb" / "README").write_text("no records")
    with pytest.raises(DataNotFoundError):
        locate.find_database("mitdb", tmp_path / "d", download=False)


def test_absent_and_download_fails(tmp_path, monkeypatch):
    monkeypatch.setenv("ECGJAX_DATA_DIR", str(tmp_path / "envroot"))
    calls = []

    def offline(database, target):
        calls.append((database, target))
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(locate, "download_database", offline)
    with pytest.raises(DataNotFoundError) as ei:
        locate.find_database("mitdb")
    msg = str(ei.value)
    user = locate.user_cache_dir() / "data" / "mitdb"
    assert calls == [("mitdb", user)]  # downloads go to the user cache
    assert "ConnectionError: Name or service not known" in msg
    assert str(tmp_path / "envroot" / "mitdb") in msg and "$ECGJAX_DATA_DIR" in msg
    assert str(user) in msg and "per-user cache" in msg
    assert "--data-dir" in msg and "ECGJAX_DATA_DIR=DIR" in msg


def test_absent_without_download(tmp_path, monkeypatch):
    monkeypatch.setattr(locate, "download_database", lambda *a: pytest.fail("must not download"))
    with pytest.raises(DataNotFoundError, match=r"(?s)not found\. Looked in:.*--data-dir .*ECGJAX_DATA_DIR"):
        locate.find_database("mitdb", tmp_path, download=False)


# -- the download itself, with wfdb's network functions faked ----------------------------


class FakePhysioNet:
    """Stands in for wfdb.get_record_list / dl_database / io.download.dl_files.

    ``fail_at``: the record whose download raises (a dropped connection).
    Each call checks that files go to the ``.partial`` folder and that the final
    folder does not exist yet.
    """

    def __init__(self, target: Path, records=("100", "101", "102"), fail_at=None):
        self.target, self.records, self.fail_at = target, list(records), fail_at
        self.downloaded: list[str] = []

    def get_record_list(self, database):
        assert database == "mitdb"
        return list(self.records)

    def dl_database(self, database, dl_dir, records, annotators, keep_subdirs):
        assert Path(dl_dir) == self.target.with_name("mitdb.partial")
        assert not self.target.exists(), "final folder must appear only when complete"
        (rec,) = records
        for ext in ("hea", "dat", "atr"):
            if rec == self.fail_at and ext == "dat":
                # The header arrived, then the connection dropped.
                raise ConnectionError(f"connection reset while fetching {rec}.dat")
            (Path(dl_dir) / f"{rec}.{ext}").write_text(f"{rec} {ext}")
        self.downloaded.append(rec)

    def dl_files(self, database, dl_dir, files, keep_subdirs=False):
        assert files == ["SHA256SUMS.txt"]
        (Path(dl_dir) / "SHA256SUMS.txt").write_text("")


@pytest.fixture
def fake_physionet(monkeypatch, tmp_path):
    import wfdb

    def install(**kw):
        fake = FakePhysioNet(tmp_path / "cache" / "mitdb", **kw)
        monkeypatch.setattr(wfdb, "get_record_list", fake.get_record_list)
        monkeypatch.setattr(wfdb, "dl_database", fake.dl_database)
        monkeypatch.setattr(wfdb.io.download, "dl_files", fake.dl_files)
        return fake

    return install


def test_download_goes_to_partial_then_renamed(fake_physionet):
    fake = fake_physionet()
    real_download_database("mitdb", fake.target)
    assert fake.downloaded == ["100", "101", "102"]
    assert not fake.target.with_name("mitdb.partial").exists()
    assert sorted(p.name for p in fake.target.iterdir()) == sorted(
        [f"{r}.{e}" for r in fake.records for e in ("hea", "dat", "atr")] + ["SHA256SUMS.txt"]
    )


def test_interrupted_download_is_not_a_database_and_resumes(fake_physionet, monkeypatch):
    fake = fake_physionet(fail_at="101")
    with pytest.raises(ConnectionError):
        real_download_database("mitdb", fake.target)
    partial = fake.target.with_name("mitdb.partial")
    assert not fake.target.exists()
    assert sorted(p.name for p in partial.iterdir()) == [".complete", "100.atr", "100.dat", "100.hea", "101.hea"]
    # Nothing under the cache root counts as the database.
    with pytest.raises(DataNotFoundError):
        locate.find_database("mitdb", fake.target.parent, download=False)
    # A second run fetches only what is missing, including the record cut off
    # after its header.
    fake.fail_at, fake.downloaded = None, []
    real_download_database("mitdb", fake.target)
    assert fake.downloaded == ["101", "102"]
    assert (fake.target / "101.dat").exists() and (fake.target / "102.hea").exists()
    assert not partial.exists() and not (fake.target / ".complete").exists()


def test_find_database_downloads_into_user_cache(fake_physionet, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    target = locate.user_cache_dir() / "data" / "mitdb"
    fake = fake_physionet()
    fake.target = target
    monkeypatch.setattr(locate, "download_database", real_download_database)
    assert locate.find_database("mitdb") == target
    assert (target / "100.hea").exists()
