"""experiments/ds1_rhythm_screen.py: the table from result rows, bad input as one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "ds1_rhythm_screen.py"


def _mod():
    return load_script(SCRIPT)


def _row(wd, s_se, offset, order="sequence"):
    d = {"S_se": s_se, "N_called_S": 0.01, "n_S": 10, "n_N": 90}
    row = {"config": f"cfg:{wd}", "workdir": wd, "offsets": {"S": offset}, "fractions": {"0.5": {"offsets": d, "argmax": {**d, "S_se": s_se / 2}}}}
    return {**row, "template_order": order} if order else row  # rows before eeb3698 have no key


def test_table_keeps_each_workdirs_last_row_of_the_asked_screen(tmp_path):
    mod = _mod()
    rows = [_row("a", 0.2, 1.0), _row("b", 0.4, -0.5), _row("a", 0.3, 1.25), _row("a", 0.9, 2.0, order=None), _row("c", 0.1, 0.0, order=None)]
    lines = mod.table(rows).splitlines()
    assert len(lines) == 4 and "50% S beats" in lines[0]
    assert lines[2] == "| cfg:a (+1.25) | 30.0 / 15.0 / 1.0 |" and lines[3] == "| cfg:b (-0.50) | 40.0 / 20.0 / 1.0 |"
    old = mod.table(rows, "source").splitlines()  # the screen that kept each source beat's own template
    assert old[2:] == ["| cfg:a (+2.00) | 90.0 / 45.0 / 1.0 |", "| cfg:c (+0.00) | 10.0 / 5.0 / 1.0 |"]
    absolute = {**_row("d", 0.5, 0.5), "config": f"{SCRIPT.parents[1]}/experiments/configs/aami_rr.py:both"}
    assert mod.table([absolute]).splitlines()[2].startswith("| experiments/configs/aami_rr.py:both (+0.50) |")  # as the repo's
    out = tmp_path / "rows.jsonl"
    out.write_text("\n".join(json.dumps(r) for r in (_row("a", 0.2, 1.0),)) + "\n")
    assert mod.main(["--table", "--out", str(out)]) == 0


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    mod = _mod()
    assert mod.main(["--table", "--out", str(tmp_path / "missing.jsonl")]) == 2
    assert mod.main([]) == 2
    assert mod.main(["--run", "experiments/configs/aami_rr.py:both", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err), err
