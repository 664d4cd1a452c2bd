"""The experiment scripts that append to a result file of benchmarks/results find it from any working folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script", ["ds1_rhythm_screen", "ds1_rr_screen", "ds1_af_rule_screen", "interpatient_gate"])
def test_table_of_the_default_result_file_from_another_folder(script, tmp_path, monkeypatch, capsys):
    """``--table`` without ``--out`` prints the committed rows' table when run outside the repository (the default was
    relative to the working folder: exit 2 there, and a new row's folder missing was a traceback after the work)."""
    mod = load_script(ROOT / "experiments" / f"{script}.py")
    monkeypatch.chdir(tmp_path)
    assert mod.main(["--table"]) == 0
    table = capsys.readouterr().out
    assert table.count("\n|") >= 2, table  # a header, its rule and at least one row
    assert not (tmp_path / "benchmarks").exists()
