"""Data summaries: class counts of a protocol, overall and per split part (``ecgjax data summary``, study reports)."""

from __future__ import annotations


def summarize(protocol_name: str, split_name: str | None = None, *, seed: int = 0, data_dir=None, cache_dir=None, download=True) -> dict:
    """Class counts of a protocol, overall and per split part."""
    from ecgjax.data import load_beats, make_split, protocols
    from ecgjax.data.splits import check_split_args

    proto = protocols.get(protocol_name)
    split_name = split_name or proto.default_split
    split_kwargs = {"fold": 0} if split_name == "kfold" else {}
    check_split_args(split_name, split_kwargs)  # before any record is read
    beats = load_beats(proto, data_dir, cache=cache_dir, download=download)
    split = make_split(split_name, beats.y, beats.record, seed=seed, **split_kwargs)
    return {
        "protocol": proto.name,
        "total": len(beats),
        "classes": beats.counts(),
        "split": split.name,
        "patient_wise": split.patient_wise,
        "splits": {
            part: {"total": int(len(idx)), "records": sorted(set(beats.record[idx].tolist())), "classes": beats.counts(idx)}
            for part, idx in split.parts().items()
        },
    }


def format_summary(s: dict) -> str:
    """:func:`summarize`'s dict as a fixed-width table (what ``ecgjax data summary`` prints)."""
    classes = list(s["classes"])
    w = max(6, *(len(c) for c in classes))
    head = f"{'':8}" + "".join(f"{c:>{w + 2}}" for c in classes) + f"{'total':>10}"
    rows = [f"protocol {s['protocol']}, split {s['split']} ({'patient-wise' if s['patient_wise'] else 'MIXES PATIENTS'})", head]
    rows.append(f"{'all':8}" + "".join(f"{s['classes'][c]:>{w + 2}}" for c in classes) + f"{s['total']:>10}")
    for part, d in s["splits"].items():
        rows.append(f"{part:8}" + "".join(f"{d['classes'][c]:>{w + 2}}" for c in classes) + f"{d['total']:>10}")
    for part, d in s["splits"].items():
        if s["patient_wise"]:
            rows.append(f"{part} records ({len(d['records'])}): {' '.join(d['records'])}")
    return "\n".join(rows)
