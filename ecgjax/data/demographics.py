"""Who each MIT-BIH record comes from: age, sex and medications, from the header's comment lines.

MIT-BIH headers carry two comment lines per record (PhysioNet's ``mitdb``
description): ``# <age> <sex> <...>`` (age ``-1`` when unknown) and the
medications, comma-separated (``None`` when the patient took none). Records 201
and 202 come from one patient; each record is still its own unit here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

#: age groups (years) of :func:`age_group`: [lower bound, upper bound)
AGE_EDGES = (50, 70)


@dataclasses.dataclass(frozen=True)
class RecordInfo:
    """Attributes:
    record: record name.
    age: years, or None when the header gives none (``-1`` or ``?``).
    sex: ``"M"``, ``"F"`` or None.
    medications: the drugs named (``()`` for ``None``), or None when the header says nothing.
    """

    record: str
    age: int | None
    sex: str | None
    medications: tuple[str, ...] | None


def parse_comments(record: str, comments: Sequence[str]) -> RecordInfo:
    """A :class:`RecordInfo` from the header's comment lines (``#`` already removed); missing fields are None."""
    lines = [c.strip().lstrip("#").strip() for c in comments if c.strip().lstrip("#").strip()]
    age = sex = meds = None
    if lines:
        tok = lines[0].split()
        if tok and tok[0].lstrip("-").isdigit() and int(tok[0]) >= 0:
            age = int(tok[0])
        if len(tok) > 1 and tok[1].upper() in ("M", "F"):
            sex = tok[1].upper()
        if len(lines) > 1:
            m = lines[1]
            meds = () if m.lower() in ("none", "none.") else tuple(d.strip().rstrip(".") for d in m.split(",") if d.strip() and d.strip() != "?")
    return RecordInfo(record, age, sex, meds)


def record_info(folder: str | Path, records: Iterable[str]) -> dict[str, RecordInfo]:
    """``{record: RecordInfo}`` read from the headers in the database ``folder`` (``ecgjax.data.wfdb_io``)."""
    from ecgjax.data.wfdb_io import read_header_comments

    return {str(r): parse_comments(str(r), read_header_comments(folder, str(r))) for r in records}


def age_group(age: int | None, edges: Sequence[int] = AGE_EDGES) -> str:
    """``"<50"``, ``"50-69"``, ``">=70"`` (for the default edges) or ``"unknown"``."""
    if age is None:
        return "unknown"
    if age < edges[0]:
        return f"<{edges[0]}"
    for a, b in zip(edges[:-1], edges[1:]):
        if a <= age < b:
            return f"{a}-{b - 1}"
    return f">={edges[-1]}"


def subgroups(info: dict[str, RecordInfo], *, medications: Sequence[str] = ("Digoxin",)) -> dict[str, dict[str, str]]:
    """``{subgrouping: {record: group}}`` for ``"sex"``, ``"age"`` and, per drug named, ``"<drug>"``
    (``"yes"``/``"no"``, ``"unknown"`` where the header says nothing)."""
    out = {"sex": {r: i.sex or "unknown" for r, i in info.items()}, "age": {r: age_group(i.age) for r, i in info.items()}}
    for d in medications:
        out[d] = {r: "unknown" if i.medications is None else ("yes" if any(m.lower() == d.lower() for m in i.medications) else "no")
                  for r, i in info.items()}
    return out
