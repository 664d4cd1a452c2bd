"""Where the databases live: a flag, then ``ECGJAX_DATA_DIR``, then a per-user cache.

A data root holds one folder per PhysioNet database (``<root>/mitdb``,
``<root>/nstdb``). When no root has the database, it is downloaded from
PhysioNet with wfdb into the per-user cache (with progress), or, offline, a
``DataNotFoundError`` says where ecgjax looked and how to point it at a copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from ecgjax.errors import ChecksumError, DataError, DataNotFoundError, RecordError

log = logging.getLogger(__name__)

ENV_VAR = "ECGJAX_DATA_DIR"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ecgjax`` (default ``~/.cache/ecgjax``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ecgjax"


def candidate_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """Data roots in the order they are tried, each with where it came from."""
    roots = []
    if data_dir is not None:
        roots.append(("--data-dir flag", Path(data_dir)))
    elif os.environ.get(ENV_VAR):
        roots.append((f"${ENV_VAR}", Path(os.environ[ENV_VAR])))
    roots.append(("per-user cache", user_cache_dir() / "data"))
    return roots


def _has_database(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.hea"))


def find_database(
    database: str = "mitdb",
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = True,
) -> Path:
    """The folder holding ``database``, downloading it if it is nowhere.

    Args:
      database: PhysioNet database name (``"mitdb"``, ``"nstdb"``).
      data_dir: a data root given on the command line; overrides the
        environment variable.
      download: download into the per-user cache when absent.

    Returns:
      Path of the database folder (``<root>/<database>``).

    Raises:
      DataNotFoundError: absent everywhere and the download failed or was off.
    """
    roots = candidate_roots(data_dir)
    for _, root in roots:
        if _has_database(root / database):
            return root / database
    target = roots[-1][1] / database
    looked = "\n".join(f"  - {root / database}  ({why})" for why, root in roots)
    hint = (
        f"Point ecgjax at a local copy with --data-dir DIR or {ENV_VAR}=DIR, where DIR/{database}/ holds "
        f"the .hea/.dat/.atr files (e.g. unpacked from https://physionet.org/content/{database}/)."
    )
    if not download:
        raise DataNotFoundError(f"database {database!r} not found. Looked in:\n{looked}\n{hint}")
    try:
        download_database(database, target)
    except Exception as e:  # network errors come in many types (requests, OSError, ...)
        raise DataNotFoundError(
            f"database {database!r} not found and the download from PhysioNet failed "
            f"({type(e).__name__}: {e}). Looked in:\n{looked}\n{hint}"
        ) from e
    return target


def download_database(database: str, target: Path) -> None:
    """Download every record of ``database`` into ``target``, one record at a time.

    The files land in a temporary sibling folder ``<target>.partial`` that is
    renamed into place only when the whole database is there, so an interrupted
    download is never mistaken for a complete one. A rerun resumes: records
    listed in ``<target>.partial/.complete`` (appended after each record's
    files are all written) are not fetched again; a record cut off half-way
    is fetched again in full.
    """
    import wfdb  # heavy import, kept off the package import path

    tmp = target.with_name(target.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    done_file = tmp / ".complete"
    done = set(done_file.read_text().split()) if done_file.exists() else set()
    records = wfdb.get_record_list(database)
    log.info("downloading %s (%d records) from PhysioNet into %s", database, len(records), target)
    for i, rec in enumerate(records, 1):
        if rec not in done:
            wfdb.dl_database(database, str(tmp), records=[rec], annotators="all", keep_subdirs=False)
            with open(done_file, "a") as f:
                f.write(rec + "\n")
        log.info("  %s: %d/%d records", database, i, len(records))
    try:
        wfdb.io.download.dl_files(database, str(tmp), ["SHA256SUMS.txt"], keep_subdirs=False)
    except Exception as e:  # optional file
        log.warning("could not download SHA256SUMS.txt for %s: %s", database, e)
    done_file.unlink()
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_sha256sums(folder: Path) -> dict[str, str] | None:
    """PhysioNet's ``SHA256SUMS.txt`` as {file name: hex digest}, or None if absent."""
    p = folder / "SHA256SUMS.txt"
    if not p.exists():
        return None
    try:
        text = p.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read {p} ({e}); fix or delete it") from e
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[1].lstrip("*")] = parts[0].lower()
    return out


def record_checksums(folder: Path, record: str, sums: dict[str, str] | None) -> dict[str, str]:
    """sha256 of a record's files (``.hea``, ``.dat``, ``.atr``), verified against ``sums``.

    Raises:
      ChecksumError: a file's digest differs from SHA256SUMS.txt.
      RecordError: a file is a folder or cannot be read.
    """
    out = {}
    for ext in ("hea", "dat", "atr"):
        p = folder / f"{record}.{ext}"
        if not p.exists():
            continue  # the reader reports missing files with context
        if not p.is_file():
            raise RecordError(record, f"{p} is not a regular file")
        try:
            digest = sha256_file(p)
        except OSError as e:
            raise RecordError(record, f"cannot read {p} ({e.strerror or e})") from e
        if sums is not None and p.name in sums and sums[p.name] != digest:
            raise ChecksumError(
                record,
                f"{p} does not match {folder / 'SHA256SUMS.txt'} (sha256 {digest[:12]}..., "
                f"expected {sums[p.name][:12]}...): the file is corrupt or was modified",
            )
        out[p.name] = digest
    return out
