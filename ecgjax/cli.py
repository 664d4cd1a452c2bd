"""The ``ecgjax`` command line.

Each area adds its own sub-commands in a ``cli.py`` of its package
(``ecgjax/data/cli.py`` ...), exposing ``register(subparsers)``; this module only
collects them. Sub-command modules must not import heavy libraries at module
level, so ``ecgjax --help`` stays fast; a parser's ``epilog_fn`` (choices read
from the registries, an example) runs only when its help is printed.

Errors: an ``EcgjaxError`` (bad config, flag, record or file) or an ``OSError``
(a read-only or full folder) is one line ``ecgjax: error: ...`` and exit
status 2; Ctrl-C is ``ecgjax: interrupted; rerun the same command to resume``
and status 130 (every writer removes its temporary files on the way out).
``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from pathlib import Path

from ecgjax.errors import EcgjaxError

# Areas whose cli module provides register(subparsers), in --help order.
_AREAS = ("ecgjax.data.cli", "ecgjax.train.cli", "ecgjax.attribution.cli", "ecgjax.study.cli", "ecgjax.generative.cli")


class Parser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose ``epilog_fn()`` fills the epilog when help is printed."""

    def __init__(self, *args, epilog_fn=None, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.epilog_fn = epilog_fn

    def format_help(self) -> str:
        if self.epilog_fn is not None:
            self.epilog = self.epilog_fn()
        return super().format_help()


def _int_at_least(minimum: int, text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {v}")
    return v


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(1, text)


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (seeds)."""
    return _int_at_least(0, text)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="ecgjax", description=__doc__.splitlines()[0])
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


COMPILE_CACHE_ENV = "ECGJAX_COMPILE_CACHE"


def enable_compilation_cache() -> Path | None:
    """Keep compiled XLA programs in ``$XDG_CACHE_HOME/ecgjax/xla`` (jax's persistent compilation cache).

    A command's later runs, and its own runs of the same program (the hold-out and the leave-patients-out
    trainings of one model), then skip the compilation; jax stores only programs that took over a second
    to compile. Left alone when a cache folder is already set (``JAX_COMPILATION_CACHE_DIR``, a test run);
    ``ECGJAX_COMPILE_CACHE=0`` turns it off. Returns the folder used, or None.
    """
    import jax

    from ecgjax.data.locate import user_cache_dir

    if os.environ.get(COMPILE_CACHE_ENV, "1") == "0" or jax.config.jax_compilation_cache_dir:
        return None
    folder = user_cache_dir() / "xla"
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder


def run_guarded(func, args, prog: str = "ecgjax") -> int:
    """``func(args)`` with the CLI's error handling (see the module docstring); returns the exit status."""
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"{prog}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except (EcgjaxError, OSError) as e:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        if isinstance(e, OSError) and e.filename is not None:
            msg = f"{e.filename}: {e.strerror or e}"
        else:
            msg = str(e)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # the command as typed, for result files
    setup_logging(args.verbose)
    enable_compilation_cache()
    return run_guarded(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
