"""Where metrics go: a JSON-lines file in the workdir and the log.

No global state: the loop creates its writers and closes them. Every record
carries the global ``step``, so a resumed run can drop records written after
the checkpoint it resumed from (``JsonlWriter.truncate_after``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

from ecgjax.io import atomic_write_text

log = logging.getLogger("ecgjax.train")


def _clean(v):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "tolist"):
        return _clean(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def dumps(obj, **kw) -> str:
    return json.dumps(_clean(obj), **kw)


class JsonlWriter:
    """Appends one JSON object per line to ``path``, flushed and fsynced per record."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(dumps(record, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[dict]:
        """Every record; a damaged line (cut by a kill, or edited) is skipped with a warning, not the lines after it."""
        if not self.path.exists():
            return []
        out = []
        for i, line in enumerate(self.path.read_text(errors="replace").splitlines(), 1):
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if isinstance(rec, dict):
                out.append(rec)
            elif line.strip():
                log.warning("%s line %d is damaged; skipped: %.60r", self.path, i, line)
        return out

    def truncate_after(self, step: int) -> None:
        """Keep only the records with ``step <= step`` (atomic rewrite)."""
        if not self.path.exists():
            return
        keep = [r for r in self.read() if isinstance(r.get("step", 0), int) and r.get("step", 0) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in keep))


class LogWriter:
    """Scalars to ``logging`` (INFO), one line per record."""

    def write(self, record: dict) -> None:
        parts = []
        for k, v in record.items():
            if isinstance(v, float):
                parts.append(f"{k}={v:.4g}")
            elif isinstance(v, (int, str)):
                parts.append(f"{k}={v}")
        log.info(" ".join(parts))


class MultiWriter:
    def __init__(self, *writers):
        self.writers = writers

    def write(self, record: dict) -> None:
        for w in self.writers:
            w.write(record)
