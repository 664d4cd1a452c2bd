"""Atomic writes and run provenance (versions, device): the one place for both.

Everything ecgjax writes (caches, results, reports) goes through a temporary
file in the target folder and ``os.replace``, so an interrupted run never
leaves a half-written file that a later run would read.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import uuid
from pathlib import Path

import numpy as np


def _tmp_path(path: Path) -> Path:
    """Hidden, unique per writer (process and call), in the target folder so the rename is atomic."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike):
    """A binary file handle whose content appears at ``path`` only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
