"""experiments/interpatient_docs.py: it rewrites its own section of docs/results.md and nothing after it."""

from __future__ import annotations

from pathlib import Path

from tests.scripts import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "interpatient_docs.py"


def _mod():
    return load_script(SCRIPT)


def test_replace_section_keeps_the_sections_after_it():
    doc = ("## 3. Inter-patient\n\n### With RR-interval features: old\n\nold text\n\n#### DS2\n\nold table\n\n"
           "### Recipe changes gated on DS1\n\nhand-written bullets\n\n### Corrected study, quick\n\nrest\n")
    out = _mod().replace_section(doc, "### With RR-interval features: new\n\n#### DS2\n\nnew table\n")
    assert out == ("## 3. Inter-patient\n\n### With RR-interval features: new\n\n#### DS2\n\nnew table\n\n"
                   "### Recipe changes gated on DS1\n\nhand-written bullets\n\n### Corrected study, quick\n\nrest\n")
    # the real document: the section ends where the gated recipe changes begin
    real = (SCRIPT.parents[1] / "docs" / "results.md").read_text()
    kept = _mod().replace_section(real, "### With RR-interval features: x\n")
    assert "### Recipe changes gated on DS1 over several seed sets" in kept and "<!-- interpatient_gate: begin -->" in kept


def test_refuses_to_drop_rows_whose_runs_are_missing(tmp_path, capsys):
    runs = tmp_path / "runs"
    (runs / "cv_both").mkdir(parents=True)
    (runs / "cv_both" / "results.json").write_text("{}")
    doc = tmp_path / "results.md"
    doc.write_text("### With RR-interval features\n\nthe documented numbers\n")
    assert _mod().main(["--runs", str(runs), "--doc", str(doc)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "cv_rr/" in err[0] and "cv_both_aug.ds1.log" in err[0]
    assert doc.read_text() == "### With RR-interval features\n\nthe documented numbers\n"
