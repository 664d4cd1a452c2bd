"""``ecgjax data ...`` flags (the summary itself: ``ecgjax.data.summary``)."""

from __future__ import annotations

import argparse
import json

from ecgjax.cli import nonnegative_int


def add_data_args(p: argparse.ArgumentParser) -> None:
    """Flags every data-reading command shares."""
    p.add_argument("--data-dir", default=None, help="data root holding mitdb/ (default: $ECGJAX_DATA_DIR, then the user cache)")
    p.add_argument("--cache-dir", default=None, help="beat cache folder (default: $ECGJAX_CACHE_DIR, then the user cache)")
    p.add_argument("--no-download", action="store_true", help="fail instead of downloading a missing database")


def register(sub) -> None:
    data = sub.add_parser("data", help="beat extraction and protocol summaries")
    dsub = data.add_subparsers(dest="data_command", required=True)
    s = dsub.add_parser("summary", help="class counts overall and per split", epilog_fn=_summary_epilog)
    s.add_argument("--protocol", required=True, help="a protocol preset (listed below)")
    s.add_argument("--split", default=None, help="holdout | lpo | ds1ds2 | kfold (default: the protocol's)")
    s.add_argument("--seed", type=nonnegative_int, default=0)
    s.add_argument("--json", action="store_true", help="print JSON")
    add_data_args(s)
    s.set_defaults(func=summary_command)


def _summary_epilog() -> str:
    from ecgjax.data import protocols
    from ecgjax.data.splits import SPLITS

    return (f"protocols: {', '.join(protocols.available())}\nsplits: {', '.join(SPLITS)}\n\n"
            "example:\n  ecgjax data summary --protocol jones2020 --split lpo --json")


def summary_command(args) -> int:
    from ecgjax.data.summary import format_summary, summarize

    s = summarize(args.protocol, args.split, seed=args.seed, data_dir=args.data_dir, cache_dir=args.cache_dir, download=not args.no_download)
    print(json.dumps(s, indent=2) if args.json else format_summary(s))
    return 0
