"""The ``ecgjax`` command line.

Each area adds its own sub-commands in a ``cli.py`` of its package
(``ecgjax/data/cli.py`` ...), exposing ``register(subparsers)``; this module only
collects them. Sub-command modules must not import heavy libraries at module
level, so ``ecgjax --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ecgjax.errors import EcgjaxError

# Areas whose cli module provides register(subparsers), in --help order.
_AREAS = ("ecgjax.data.cli", "ecgjax.train.cli", "ecgjax.attribution.cli", "ecgjax.study.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecgjax", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in _AREAS:
        importlib.import_module(mod).register(sub)
    return parser


def setup_logging(verbose: bool = False) -> None:
    """Progress on stderr; orbax's absl and jax's backend probing only when something is wrong."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("absl", "jax._src.xla_bridge"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except EcgjaxError as e:
        print(f"ecgjax: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
