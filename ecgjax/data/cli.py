"""``ecgjax data summary``: class counts of a protocol, overall and per split."""

from __future__ import annotations

import argparse
import json


def add_data_args(p: argparse.ArgumentParser) -> None:
    """Flags every data-reading command shares."""
    p.add_argument("--data-dir", default=None, help="data root holding mitdb/ (default: $ECGJAX_DATA_DIR, then the user cache)")
    p.add_argument("--cache-dir", default=None, help="beat cache folder (default: $ECGJAX_CACHE_DIR, then the user cache)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading a missing database")


def register(sub) -> None:
    data = sub.add_parser("data", help="beat extraction and protocol summaries")
    dsub = data.add_subparsers(dest="data_command", required=True)
    s = dsub.add_parser("summary", help="class counts overall and per split")
    s.add_argument("--protocol", required=True, help="jones2020 | jones2020_code | aami")
    s.add_argument("--split", default=None, help="holdout | lpo | ds1ds2 | kfold (default: the protocol's)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--json", action="store_true", help="print JSON")
    add_data_args(s)
    s.set_defaults(func=summary_command)


def summarise(protocol_name: str, split_name: str | None = None, *, seed: int = 0, data_dir=None, cache_dir=None, download=True) -> dict:
    """Class counts of a protocol, overall and per split part."""
    from ecgjax.data import load_beats, make_split, protocols

    proto = protocols.get(protocol_name)
    beats = load_beats(proto, data_dir, cache=cache_dir, download=download)
    split_name = split_name or proto.default_split
    split = make_split(split_name, beats.y, beats.record, seed=seed, **({"fold": 0} if split_name == "kfold" else {}))
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


def summary_command(args) -> int:
    s = summarise(args.protocol, args.split, seed=args.seed, data_dir=args.data_dir, cache_dir=args.cache_dir, download=not args.no_download)
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    return 0
