"""Experiment scripts as modules, for tests of their functions: they are files (``experiments/*.py``), not a package."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def load_script(path: Path):
    """The module of the script at ``path``, executed afresh (its ``main`` is not run)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
