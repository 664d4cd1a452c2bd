"""benchmarks/study_stage_times.py: stage times in finishing order, per-run medians, the rendered table in
docs/performance.md equal to its result file, and a clear exit 2 on a folder that is not a finished study."""

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import study_stage_times as sst  # noqa: E402


def _study(wd: Path) -> Path:
    for i, (stage, s) in enumerate([("data", 2.0), ("train", 30.0), ("explain", 5.5), ("report", 1.0)]):
        p = wd / "stages" / f"{stage}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps({"wall_s": s}))
        os.utime(p, (1000 + i, 1000 + i))  # finishing order, not alphabetical
    run = wd / "runs" / "cnn"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"model": {"name": "jones2020_cnn"}, "train": {"batch_size": 32}}))
    (run / "metrics.jsonl").write_text("".join(json.dumps({"kind": "epoch", "epoch_time_s": t, "beats_per_s": b}) + "\n"
                                               for t, b in [(10.0, 50.0), (12.0, 40.0), (30.0, 60.0)]) + '{"kind": "step"}\n')
    (run / "results.json").write_text(json.dumps({"test": {"n": 400, "accuracy": 0.5, "ci": {"accuracy": [0.25, 0.75]},
                                                           "ci_level": 0.95}}))
    (wd / "config.json").write_text(json.dumps({"name": "quick"}))
    return wd


def test_rows_and_render(tmp_path, capsys):
    wd = _study(tmp_path / "wd")
    row = sst.stage_row(wd)
    assert row["stages_wall_s"] == [["data", 2.0], ["train", 30.0], ["explain", 5.5], ["report", 1.0]]
    assert row["stages_total_s"] == 38.5 and row["config_name"] == "quick"
    assert row["runs"]["cnn"] == {"model": "jones2020_cnn", "batch_size": 32, "epochs": 3, "median_epoch_time_s": 12.0,
                                  "median_train_beats_per_s": 50.0, "test_n": 400, "test_accuracy": 0.5,
                                  "test_accuracy_ci": [0.25, 0.75], "test_ci_level": 0.95}
    out = tmp_path / "rows.jsonl"
    assert sst.main([str(wd), "--out", str(out), "--total-s", "40", "--command", "make run"]) == 0
    doc, readme = tmp_path / "doc.md", tmp_path / "README.md"
    doc.write_text(f"before\n{sst.BEGIN}\nold\n{sst.END}\nafter\n")
    readme.write_text(f"intro\n{sst.README_BEGIN}\n{sst.README_END}\n")
    assert sst.main(["--render", str(out), "--doc", str(doc), "--readme", str(readme)]) == 0
    assert "`make run` took **40 s** (" in readme.read_text()
    text = doc.read_text()
    assert "old" not in text and text.startswith("before\n") and text.endswith("after\n")
    table = text.split(sst.BEGIN)[1]
    assert table.index("| data | 2.0 |") < table.index("| train | 30.0 |") < table.index("| report | 1.0 |")
    assert "| cnn | jones2020_cnn | 32 | 3 | 12.0 | 50.0 | 400 | 0.500 [0.250, 0.750] (95%) |" in table
    assert "whole command 40 s" in table


def test_not_a_study_exits_2(tmp_path, capsys):
    assert sst.main([str(tmp_path), "--out", str(tmp_path / "o.jsonl")]) == 2
    assert "not a finished study workdir" in capsys.readouterr().err
    assert sst.main(["--render", str(tmp_path / "missing.jsonl"), "--doc", str(tmp_path / "d.md")]) == 2


def test_repo_doc_is_the_rendered_result_file():
    rows = [json.loads(line) for line in (ROOT / "benchmarks/results/cpu_make_run.jsonl").read_text().splitlines()]
    text = (ROOT / "docs/performance.md").read_text()
    assert text.split(sst.BEGIN)[1].split(sst.END)[0] == "\n" + sst.render(rows)
    readme = (ROOT / "README.md").read_text()
    assert readme.split(sst.README_BEGIN)[1].split(sst.README_END)[0] == "\n" + sst.render_readme(rows)
