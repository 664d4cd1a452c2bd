"""scripts/audit_results.py: the docs block is the study report's sections, between the markers, nothing else changed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import audit_results  # noqa: E402

SUMMARY = """# Audit study

## About this run

intro

## Classification (Table 1)

| run | acc |
|---|---|
| r | 0.9 |

## Attributions: r

huge profiles table

## Expert rules: relevance in the defining wave (r)

| method | class |
|---|---|
| saliency | V |

*Figure: a caption* (`figures/x.png`, embedded in report.html)

## Ground truth: regressing known quantities (Wagner et al.)

gt text

## Provenance

```json
{"environment": {"versions": {"jax": "0.1"}, "device": {"platform": "cpu"}}}
```
"""


def _study(tmp_path: Path) -> Path:
    wd = tmp_path / "study"
    (wd / "report").mkdir(parents=True)
    (wd / "stages").mkdir()
    (wd / "report" / "summary.md").write_text(SUMMARY)
    for name, wall in (("train", 120.0), ("report", 3.0)):
        (wd / "stages" / f"{name}.json").write_text(json.dumps({"wall_s": wall}))
    return wd


def test_block_replaced_between_markers(tmp_path):
    wd = _study(tmp_path)
    docs = tmp_path / "results.md"
    docs.write_text(f"# top\n\n{audit_results.BEGIN}\nold\n{audit_results.END}\n\n## after\n")
    assert audit_results.main([str(wd), "--docs", str(docs), "--command", "python run it"]) == 0
    page = docs.read_text()
    assert page.startswith("# top\n\n") and page.endswith("\n\n## after\n") and "old" not in page
    block = page[page.index(audit_results.BEGIN):page.index(audit_results.END)]
    assert "Command: `python run it`" in block and "jax 0.1" in block and '"platform": "cpu"' in block
    assert "train 2.0 min" in block
    # the chosen sections, in SECTIONS order, demoted; profiles, intro and figure lines left out
    assert block.index("#### Classification") < block.index("#### Expert rules") < block.index("#### Ground truth")
    assert "huge profiles" not in block and "intro" not in block and "*Figure" not in block
    assert "| saliency | V |" in block
    # a rerun gives the same page
    assert audit_results.main([str(wd), "--docs", str(docs), "--command", "python run it"]) == 0
    assert docs.read_text() == page


def test_refuses_unfinished_study_and_missing_markers(tmp_path, capsys):
    wd = _study(tmp_path)
    docs = tmp_path / "results.md"
    docs.write_text("no markers\n")
    assert audit_results.main([str(wd), "--docs", str(docs)]) == 2
    assert "must hold" in capsys.readouterr().err and docs.read_text() == "no markers\n"
    (wd / "stages" / "report.json").unlink()
    assert audit_results.main([str(wd), "--docs", str(docs)]) == 2
    assert "no finished study" in capsys.readouterr().err


def test_named_block_leaves_the_default_block_alone(tmp_path, capsys):
    wd = _study(tmp_path)
    docs = tmp_path / "results.md"
    begin, end = audit_results.markers("expert-rules-mitbih8")
    docs.write_text(f"{audit_results.BEGIN}\nold audit\n{audit_results.END}\n\n{begin}\nold 8\n{end}\n")
    assert audit_results.main([str(wd), "--docs", str(docs), "--command", "c", "--block", "expert-rules-mitbih8"]) == 0
    page = docs.read_text()
    assert "old audit" in page and "old 8" not in page
    assert page.index(begin) < page.index("#### Expert rules") < page.index(end)
    assert audit_results.main([str(wd), "--docs", str(docs), "--block", "Bad Name"]) == 2
    assert "--block" in capsys.readouterr().err and docs.read_text() == page
