"""scripts/explain_results.py: the whole-part table is rendered from `ecgjax explain` folders' meta.json, between
its markers, and bad input exits 2 with one line."""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import explain_results as S  # noqa: E402


def _folder(tmp_path, name, method, bps, **hp):
    d = tmp_path / name
    d.mkdir()
    meta = {"method": method, "hparams": {k: repr(v) for k, v in hp.items()}, "target": "label", "n": 49712,
            "model": {"name": "rr_net", "protocol": "aami_rr", "split": "ds1ds2"}, "beats_per_s": bps, "batch_size": 256,
            "n_devices": 1, "environment": {"versions": {"jax": "0.12.1"}, "device": {"kind": "cpu", "cpu_count": 2, "cpu_affinity": 1}}}
    (d / "meta.json").write_text(json.dumps(meta))
    return d


def test_rows_from_meta_between_the_markers(tmp_path):
    a, b = _folder(tmp_path, "a", "deeplift", 669.3, baseline="zeros"), _folder(tmp_path, "b", "expected_gradients", 102.1, n=16)
    doc = tmp_path / "page.md"
    doc.write_text(f"before\n{S.BEGIN}\nold\n{S.END}\nafter\n")
    assert S.main([str(a), str(b), "--command", "ecgjax explain ...", "--docs", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "\nold\n" not in text
    rows = [line for line in text.splitlines() if line.startswith("| deeplift") or line.startswith("| expected_gradients")]
    assert rows == ["| deeplift | baseline='zeros' | rr_net (aami_rr, ds1ds2) | 49,712 | **669** | 256 | 1 x cpu (1 of 2 CPUs), jax 0.12.1 |",
                    "| expected_gradients | n=16 | rr_net (aami_rr, ds1ds2) | 49,712 | **102** | 256 | 1 x cpu (1 of 2 CPUs), jax 0.12.1 |"]
    assert "Commands: `ecgjax explain ...`" in text


def test_bad_input_exits_2_with_one_line(tmp_path, capsys):
    doc = tmp_path / "page.md"
    doc.write_text("no markers\n")
    assert S.main([str(tmp_path), "--command", "x", "--docs", str(doc)]) == 2
    assert "holds no meta.json" in capsys.readouterr().err
    a = _folder(tmp_path, "a", "lrp", 1.0)
    assert S.main([str(a), "--command", "x", "--docs", str(doc)]) == 2
    assert "must hold <!-- explain-dataset:begin -->" in capsys.readouterr().err
