"""benchmarks/saliency_throughput.py --render: the throughput table of the attribution methods in docs/performance.md
is what the script writes from the committed result files, the latest row per cell, with every method of issue 17."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "benchmarks")]
import saliency_throughput as S  # noqa: E402

RESULTS = "benchmarks/results/cpu_methods.jsonl,benchmarks/results/cpu_shapley.jsonl"  # as the docs' command names them


def _row(method, ts, bps, **kw):
    return {"model": "m", "method": method, "method_source": "ecgjax.attribution", "batch": 4, "path": "kernel",
            "hparams": {}, "timestamp": ts, "beats_per_s": bps, "beats_per_s_min": bps, "beats_per_s_max": bps,
            "seconds_per_call_median": 4 / bps, "compile_s": 1.0, "load_avg_1m": 2.0, "jax": "0.1", "device_kind": "cpu",
            "xla_flags": "", "command": f"cmd {method} {ts}", **kw}


def _body(table):
    return [line for line in table.splitlines() if line.startswith("| m |")]


def test_latest_row_per_cell_settings_apart_and_missing_methods_named(tmp_path):
    f = tmp_path / "r.jsonl"
    rows = [_row("lrp", "2026-01-01T00:00", 1.0), _row("lrp", "2026-01-02T00:00", 2.0),  # the later one stays
            _row("lrp", "2026-01-01T00:00", 3.0, hparams={"rule": "'zplus'"}),  # other settings: its own row
            _row("saliency", "2026-01-01T00:00", 9.0), _row("deeplift", "2026-01-03T00:00", 5.0, error="OOM"),
            _row("vmap_grad", "2026-01-01T00:00", 7.0, method_source="local")]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    body = _body(S.methods_table([f]))
    assert [line.split(" | ")[1:3] for line in body] == [["saliency", "defaults"], ["lrp", "defaults"], ["lrp", "rule='zplus'"]]
    assert "**2**" in body[1] and "**3**" in body[2]
    text = S.methods_table([f])
    assert "Not measured: expected_gradients, deeplift, kernel_shap, guided_backprop." in text  # an error row is no measurement
    assert "**1**" not in text and "cmd lrp 2026-01-02T00:00" in text  # the older row of the same cell is gone


def test_docs_table_is_the_rendered_results_with_every_issue17_method(monkeypatch):
    monkeypatch.chdir(ROOT)
    doc = (ROOT / "docs" / "performance.md").read_text()
    block = doc[doc.index(S.BEGIN) + len(S.BEGIN) + 1 : doc.index(S.END) - 1]
    assert block == S.methods_table([Path(p) for p in RESULTS.split(",")]), f"regenerate: python benchmarks/saliency_throughput.py --render {RESULTS}"
    methods = {line.split(" | ")[1] for line in block.splitlines() if line.startswith("| jones2020_cnn |")}
    assert set(S.ISSUE17_METHODS) <= methods and "Not measured" not in block


def test_render_refuses_missing_files_and_markers(tmp_path, capsys):
    assert S.main(["--render", str(tmp_path / "absent.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err
    f, doc = tmp_path / "r.jsonl", tmp_path / "page.md"
    f.write_text(json.dumps(_row("saliency", "2026-01-01T00:00", 1.0)) + "\n")
    doc.write_text("no markers here\n")
    assert S.main(["--render", str(f), "--docs", str(doc)]) == 2
    assert "must hold <!-- method-throughput:begin -->" in capsys.readouterr().err
    doc.write_text(f"before\n{S.BEGIN}\nold\n{S.END}\nafter\n")
    assert S.main(["--render", str(f), "--docs", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text and "| m | saliency |" in text
