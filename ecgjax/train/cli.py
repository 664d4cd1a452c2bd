"""``ecgjax train --config FILE.py[:arg] --workdir DIR [--set k=v ...]`` and ``ecgjax summarize WORKDIR...``: thin."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a config file and evaluate it on the test split", epilog_fn=_train_epilog)
    p.add_argument("--config", required=True, help="experiments/configs/NAME.py[:arg]")
    p.add_argument("--workdir", required=True, help="run folder (re-running resumes)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr=3e-4 (repeatable)")
    p.add_argument("--data-dir", default=None, help="data root holding mitdb/ (default: $ECGJAX_DATA_DIR)")
    p.add_argument("--cache-dir", default=None, help="beat cache folder (default: $ECGJAX_CACHE_DIR)")
    p.set_defaults(func=train_command)

    q = sub.add_parser("summarize", help="one Markdown table of finished training runs (from their results.json)",
                       epilog="example:\n  ecgjax summarize runs/smoke runs/smoke_lr --classes S,V")
    q.add_argument("workdirs", nargs="+", help="run folders")
    q.add_argument("--classes", default="", help="comma list of classes whose Se and +P get columns, e.g. S,V")
    q.set_defaults(func=summarize_command)


def _train_epilog() -> str:
    from ecgjax import models
    from ecgjax.data import protocols
    from ecgjax.data.splits import SPLITS

    return (f"models (model.name): {', '.join(models.available())}\n"
            f"protocols (data.protocol): {', '.join(protocols.available())}, synthetic\n"
            f"splits (data.split): {', '.join(SPLITS)}\n"
            "configs: experiments/configs/*.py (each docstring gives its command and wall time)\n\n"
            "example:\n  ecgjax train --config experiments/configs/smoke.py --workdir runs/smoke --set train.lr=3e-3")


def train_command(args: argparse.Namespace) -> int:
    from ecgjax.config import load_config
    from ecgjax.train.loop import train_and_evaluate

    cfg = load_config(args.config, args.overrides)
    train_and_evaluate(cfg, args.workdir, data_dir=args.data_dir, cache=args.cache_dir)
    return 0


def summarize_command(args: argparse.Namespace) -> int:
    from ecgjax.train.summary import summarize

    print(summarize(args.workdirs, [c for c in args.classes.split(",") if c]))
    return 0
