"""Atomic writes, checked reads, workdir locks and run provenance: the one place for each.

Everything ecgjax writes (caches, results, reports) goes through a temporary
file or folder next to the target and ``os.replace``, so an interrupted run
never leaves a half-written file that a later run would read. Temporary names
carry the writer's pid: they are removed on every exit path of the writer
(Ctrl-C included), and a later writer of the same target removes those of
writers that no longer run (a SIGKILL). Reads of files ecgjax wrote earlier
(``read_json``, ``load_npz``) turn damage into a ``DataError`` naming the file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import re
import shutil
import sys
import uuid
import zipfile
from pathlib import Path

import numpy as np

from ecgjax.errors import DataError, WorkdirError

_TMP_RE = re.compile(r"\.(\d+)\.[0-9a-f]{8}\.(tmp|old)$")


def _tmp_path(path: Path, kind: str = "tmp") -> Path:
    """Hidden, unique per writer (process and call), in the target folder so the rename is atomic."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale(path: Path) -> None:
    """Remove temporaries of ``path`` left by writers that no longer run (killed with SIGKILL)."""
    path = Path(path)
    if not path.parent.is_dir():
        return
    for p in path.parent.glob(f".{glob_escape(path.name)}.*"):
        m = _TMP_RE.search(p.name)
        if m and p.name[: m.start()] == f".{path.name}" and not _alive(int(m.group(1))):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike):
    """A binary file handle whose content appears at ``path`` only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def replace_section(text: str, section: str, begin: str, end: str, *, where: str) -> str:
    """``text`` with its part from the marker ``begin`` through the marker ``end`` replaced by ``section``.

    The generated sections of the docs pages (``<!-- name:begin -->`` ... ``<!-- name:end -->``): ``section``
    carries both markers itself, so a page can be regenerated again. Raises ``DataError`` naming ``where``
    unless each marker occurs exactly once, ``begin`` first.
    """
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise DataError(f"{where} must hold {begin} and {end} once each, in that order: add them where the section goes")
    return text[: text.index(begin)] + section + text[text.index(end) + len(end):]


def atomic_write_json(path: str | os.PathLike, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def atomic_savez(path: str | os.PathLike, **arrays) -> None:
    """``np.savez`` (no pickle: object arrays are refused) to a temp file, then rename."""
    for k, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise TypeError(f"{path}: array {k!r} has dtype object, which would need pickle")
    with atomic_open(path) as f:
        np.savez(f, **arrays)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """A fresh temporary folder whose content replaces ``path`` only if the block completes.

    Yields the temporary folder (write everything there). On success the old
    ``path`` (if any) is moved aside, the new one renamed into place, and the
    old one deleted; on any exception (Ctrl-C included) the temporary folder is
    removed and ``path`` is untouched. A kill between the two renames leaves no
    ``path``: the stage is then simply redone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    tmp = _tmp_path(path)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if path.exists():
            old = _tmp_path(path, "old")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_json(path: str | os.PathLike, what: str = "file"):
    """``json.loads`` of a file ecgjax wrote; a ``DataError`` naming it when missing, unreadable or damaged."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{what} {path} is damaged or unreadable ({type(e).__name__}: {e}); "
                        "delete it (or its folder) and rerun the command that wrote it") from e


def append_jsonl(path: str | os.PathLike, rows) -> None:
    """Append each dict of ``rows`` to ``path`` as one JSON line (keys sorted), making its folder; ``read_jsonl``
    reads them back. A result file grows one line per measurement and no line is ever rewritten."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for r in rows:
            fh.write(json.dumps(r, sort_keys=True) + "\n")


def read_jsonl(path: str | os.PathLike, what: str = "file") -> list[dict]:
    """The rows of a JSON-lines file (blank lines skipped); a ``DataError`` naming it when missing or damaged."""
    path = Path(path)
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{what} {path} is damaged or unreadable ({type(e).__name__}: {e})") from e


def load_npz(path: str | os.PathLike, what: str = "file") -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (no pickle), read eagerly; a ``DataError`` naming a missing or damaged file."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError(f"{what} {path} is missing") from None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise DataError(f"{what} {path} is damaged or truncated ({type(e).__name__}: {e}); "
                        "delete it and rerun the command that wrote it") from e


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike):
    """Hold ``<workdir>/.lock`` (``flock``, released when the process dies) for the block.

    Raises:
      WorkdirError: another process holds it (its pid is in the message).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / ".lock"
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WorkdirError(f"{workdir} is in use by process {pid} (lock file {path}); "
                               "wait for it to finish or stop it, then rerun") from None
        try:  # the holder may have removed the file between our open and lock: lock the current one
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


def check_writable(folder: str | os.PathLike, what: str = "folder") -> None:
    """Create ``folder`` and write a probe file in it, before any long work that ends by writing there.

    Raises:
      DataError: naming the folder and the OS's reason (read-only, full, a file in the way).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_open(folder / ".write-probe") as f:
            f.write(b"ok")
        (folder / ".write-probe").unlink()
    except OSError as e:
        raise DataError(f"{what} {folder} is not writable ({e.strerror or e})") from e


def environment_info() -> dict:
    """Versions and device of this process, for every result file.

    Returns:
      ``{"versions": {package: version}, "device": {platform, kind, count, processes, host, cpu_count,
      cpu_affinity}}`` (``cpu_affinity``: the cores this process may use, e.g. under ``taskset``).
    """
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for pkg in ("ecgjax", "jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy", "wfdb"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    device = {"host": platform.node(), "cpu_count": os.cpu_count()}
    if hasattr(os, "sched_getaffinity"):  # cores this process may run on (taskset, cgroups' cpusets)
        device["cpu_affinity"] = len(os.sched_getaffinity(0))
    try:
        import jax

        devs = jax.devices()
        device.update(platform=devs[0].platform, kind=devs[0].device_kind, count=len(devs), processes=jax.process_count())
    except Exception as e:  # report, never fail, on provenance
        device["error"] = str(e)
    return {"versions": versions, "device": device}


def describe_device(env: dict) -> str:
    """One line, e.g. ``"1 x cpu (2 CPU cores)"`` or ``"1 x NVIDIA H100 80GB HBM3"``."""
    d = env.get("device", {})
    s = f"{d.get('count', '?')} x {d.get('kind', 'unknown')}"
    if d.get("platform") != "cpu":
        return s
    n, usable = d.get("cpu_count"), d.get("cpu_affinity")
    return s + (f" ({usable} of {n} CPU cores)" if usable and usable != n else f" ({n} CPU cores)")
