"""Experiment scripts: those appending to a result file of benchmarks/results find it from any working folder; bad input
to the measurement scripts is one line and exit 2."""

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


@pytest.mark.parametrize("script, argv, message", [
    ("lstm_diagnose", ["{tmp}/nowhere"], "nowhere is not an ecgjax run (no config.json)"),
    ("ig_completeness", ["{tmp}/nowhere", "--out", "{tmp}/rows.jsonl"], "nowhere is not an ecgjax run (no config.json)"),
    ("ig_completeness", ["--out", "{tmp}/foreign.jsonl"], "rows are not this script's completeness rows"),
    ("ig_completeness", ["--out", "{tmp}/foreign.jsonl", "--path-profile"], "rows are not this script's --path-profile rows"),
    ("ig_completeness", ["--out", "{tmp}/damaged.jsonl"], "damaged.jsonl is damaged or unreadable"),
])
def test_bad_input_is_one_line_exit_2(script, argv, message, tmp_path, capsys):
    """Before: a traceback each (a missing run's EcgjaxError; a KeyError on another script's rows after the work)."""
    (tmp_path / "foreign.jsonl").write_text('{"benchmark": "conv_layers"}\n')
    (tmp_path / "damaged.jsonl").write_text("{not json\n")
    mod = load_script(ROOT / "experiments" / f"{script}.py")
    assert mod.main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith(f"{script}: error: "), err
    assert not (tmp_path / "rows.jsonl").exists() and (tmp_path / "foreign.jsonl").read_text() == '{"benchmark": "conv_layers"}\n'
