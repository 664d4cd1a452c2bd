"""The files tests/conftest.py starts first exist (a renamed file would silently fall back to pytest's order)."""

from pathlib import Path

from tests.conftest import LONGEST_FIRST

ROOT = Path(__file__).resolve().parents[1]


def test_longest_first_names_existing_files():
    missing = [f for f in LONGEST_FIRST if not (ROOT / f).is_file()]
    assert not missing, f"tests/conftest.py LONGEST_FIRST names files that do not exist: {missing}"
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
