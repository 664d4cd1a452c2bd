"""Flags for the study scripts (``experiments/*.py``) and ``ecgjax study``."""

from __future__ import annotations

import argparse


def add_args(p: argparse.ArgumentParser, default_config: str | None = None) -> None:
    p.add_argument("--config", default=default_config, required=default_config is None, help="study config FILE.py[:arg]")
    p.add_argument("--workdir", required=True, help="output folder; re-running it skips finished stages")
    p.add_argument("--force", action="store_true",
                   help="redo every stage (training runs included); only in a workdir holding this same study")
    p.add_argument("--data-dir", default=None, help="data root holding mitdb/ and nstdb/ (default: $ECGJAX_DATA_DIR)")
    p.add_argument("--cache-dir", default=None, help="beat cache folder")
    p.add_argument("--memory-budget", default=None, metavar="SIZE",
                   help="memory each evaluation may hold: 4G, 512M or a share of the available memory like 30%% (default 50%%)")


def run_from_args(args) -> int:
    from ecgjax.study.config import load_study_config
    from ecgjax.study.pipeline import run_study

    from ecgjax.batched import parse_memory

    paths = run_study(load_study_config(args.config), args.workdir, force=args.force, data_dir=args.data_dir, cache=args.cache_dir,
                      memory_budget=parse_memory(args.memory_budget))
    print(f"report: {paths['html']}\nsummary: {paths['markdown']}")
    return 0


def register(sub) -> None:
    s = sub.add_parser("study", help="run a study config end to end (train, explain, profile, report)",
                       epilog="configs: experiments/configs/reproduce_jones2020.py[:quick|:cpu], "
                              "experiments/configs/corrected_study.py[:quick]\n\nexample:\n  ecgjax study --config "
                              "experiments/configs/reproduce_jones2020.py:quick --workdir runs/reproduce_quick")
    add_args(s)
    s.set_defaults(func=run_from_args)


def main(argv: list[str] | None = None, default_config: str | None = None) -> int:
    from ecgjax.cli import enable_compilation_cache, run_guarded, setup_logging

    ap = argparse.ArgumentParser(description="Run an ecgjax study end to end.")
    add_args(ap, default_config)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    enable_compilation_cache()
    return run_guarded(run_from_args, args, prog=ap.prog)
