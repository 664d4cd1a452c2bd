"""``ecgjax train --config FILE.py[:arg] --workdir DIR [--set k=v ...]``: thin, calls ``train_and_evaluate``."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a config file and evaluate it on the test split")
    p.add_argument("--config", required=True, help="experiments/configs/NAME.py[:arg]")
    p.add_argument("--workdir", required=True, help="run folder (re-running resumes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=3e-4 (repeatable)")
    p.add_argument("--data-dir", default=None, help="data root holding mitdb/ (default: $ECGJAX_DATA_DIR)")
    p.add_argument("--cache-dir", default=None, help="beat cache folder (default: $ECGJAX_CACHE_DIR)")
    p.set_defaults(func=train_command)


def train_command(args: argparse.Namespace) -> int:
    from ecgjax.config import load_config
    from ecgjax.train.loop import train_and_evaluate

    cfg = load_config(args.config, args.overrides)
    train_and_evaluate(cfg, args.workdir, data_dir=args.data_dir, cache=args.cache_dir)
    return 0
