"""experiments/interpatient_gate.py: the multi-seed-set DS1 rule, its table and its bad input."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import interpatient_gate as ig  # noqa: E402


def _workdir(root: Path, name: str, s_f1: float, s_ap: float, v_ap: float, seed0: int = 0) -> Path:
    """A finished seed set: ds1_cv.json with these scores; each seed predicts 3 beats of record 201 (N, N, S) and
    one N beat of 203, and calls the first N beat of 201 S only once the S offset (+1) is added."""
    wd = root / name
    for s in range(seed0, seed0 + 5):
        (wd / "runs" / f"seed{s}").mkdir(parents=True)
        logits = np.zeros((4, 5), np.float32)
        logits[:, 0] = 1.0
        logits[0, 1], logits[2, 1] = 0.5, 2.0  # beat 0 (N): S only with the offset; beat 2 (S): S
        np.savez(wd / "runs" / f"seed{s}" / "predictions.npz", logits=logits, y_true=np.array([0, 0, 1, 0]),
                 record=np.array(["201", "201", "201", "203"]), index=np.arange(4))
    cv = {"records": ["101", "106"], "offsets": {"N": 0.0, "S": 1.0, "V": 0.0, "F": 0.0, "Q": 0.0},
          "S": {"ap": s_ap, "offsets": {"f1": s_f1, "se": 0.5, "ppv": 0.2}},
          "V": {"ap": v_ap, "offsets": {"f1": 0.8}}}
    (wd / "ds1_cv.json").write_text(json.dumps(cv))
    return wd


def test_gate_by_hand(tmp_path):
    base = [ig.seed_set_scores(_workdir(tmp_path, f"b{i}", f, 0.2, 0.8, 5 * i)) for i, f in enumerate((0.20, 0.30, 0.25))]
    # new: mean S F1 35 against 25, sds 5 and 5 -> se sqrt(25/3 + 25/3) = 4.08, d = 10 >= 2 se
    new = [ig.seed_set_scores(_workdir(tmp_path, f"n{i}", f, 0.25, 0.79, 5 * i)) for i, f in enumerate((0.30, 0.40, 0.35))]
    assert base[1]["seeds"] == [5, 6, 7, 8, 9] and base[0]["S F1"] == pytest.approx(20.0)
    assert base[0]["n_called_s"] == {"201": 5}  # one N beat of 201 per seed, at the offsets
    g = ig.gate(base, new)
    assert g["d"]["S F1"] == pytest.approx(10.0) and g["se"]["S F1"] == pytest.approx((50 / 3) ** 0.5)
    assert g["passed"] and not g["reasons"]
    # the same seeds in both arms: paired differences 10, 10, 10 (se 0)
    assert g["paired"]["d"]["S F1"] == pytest.approx(10.0) and g["paired"]["se"]["S F1"] == pytest.approx(0.0, abs=1e-9)
    # the same difference with seed-set noise 4x larger: d = 10 < 2 se = 32.7, so not met
    noisy = [ig.seed_set_scores(_workdir(tmp_path, f"m{i}", f, 0.25, 0.79, 20 + 5 * i)) for i, f in enumerate((0.15, 0.55, 0.35))]
    g = ig.gate(base, noisy)
    assert g["paired"] is None  # other seeds than the base's: no pairing
    assert not g["passed"] and len(g["reasons"]) == 1 and "se" in g["reasons"][0]
    # V AP 3 points lower fails on its own
    worse_v = [ig.seed_set_scores(_workdir(tmp_path, f"v{i}", f, 0.25, 0.77)) for i, f in enumerate((0.30, 0.40, 0.35))]
    g = ig.gate(base, worse_v)
    assert not g["passed"] and g["reasons"] == ["V AP -3.0 points < -2.0"]
    with pytest.raises(ValueError, match="at least 2 seed sets"):
        ig.gate(base[:1], new)
    # paired: new - base per seed set, -1, -1, +2 points: mean 0
    mixed = [ig.seed_set_scores(_workdir(tmp_path, f"p{i}", f, 0.25, 0.8, 5 * i)) for i, f in enumerate((0.19, 0.29, 0.27))]
    g = ig.gate(base, mixed, paired=True)
    assert g["d"]["S F1"] == pytest.approx(0.0, abs=1e-9) and g["rule"]["paired"] and not g["passed"]
    # a small but consistent gain: +4, +4.5, +3.5 points, paired se 0.29: met paired, not met unpaired (se 4.1)
    steady = [ig.seed_set_scores(_workdir(tmp_path, f"s{i}", f, 0.25, 0.8, 5 * i)) for i, f in enumerate((0.24, 0.345, 0.285))]
    assert ig.gate(base, steady, paired=True)["passed"]
    assert not ig.gate(base, steady)["passed"]
    with pytest.raises(ValueError, match="same seed sets"):
        ig.gate(base, noisy, paired=True)


def test_cli_appends_a_line_prints_the_table_and_writes_the_doc(tmp_path, capsys):
    b = [_workdir(tmp_path, f"b{i}", f, 0.2, 0.8) for i, f in enumerate((0.20, 0.30))]
    n = [_workdir(tmp_path, f"n{i}", f, 0.1, 0.8) for i, f in enumerate((0.30, 0.40))]
    out = tmp_path / "gates.jsonl"
    argv = ["--label", "x", "--base", *map(str, b), "--new", *map(str, n), "--out", str(out)]
    assert ig.main(argv) == 0
    row = json.loads(out.read_text())
    # d S F1 = 10 against se sqrt(50 / 2 + 50 / 2) = 7.1: under 2 se; and S AP lower
    assert row["label"] == "x" and not row["gate"]["passed"]
    assert row["gate"]["reasons"] == ["S F1 +10.0 points < 2 se (14.1)", "S AP -10.0 points < 0"]
    # the records holding most N beats called S are listed by count, whatever the order of the line's keys (sorted)
    row["new"][1]["n_called_s"] = {"101": 1, "108": 2, "201": 5, "203": 9}
    out.write_text(out.read_text() + json.dumps(row, sort_keys=True) + "\n")
    doc = tmp_path / "doc.md"
    doc.write_text(f"before\n{ig.MARK_BEGIN}\nold\n{ig.MARK_END}\nafter\n")
    capsys.readouterr()
    assert ig.main(["--table", "--out", str(out), "--doc", str(doc)]) == 0
    text = capsys.readouterr().out
    assert "| base | `b0` (seeds 0-4) | 20.0 | 20.0 | 50.0 | 20.0 | 80.0 | 80.0 | 5 (201: 5) |" in text
    assert "| 17 (203: 9, 201: 5, 108: 2) |" in text
    assert "| new | mean ± sd over 2 | 35.0 ± 7.1 | 10.0 ± 0.0 |" in text and "**not met** (S F1 +10.0 points < 2 se (14.1); S AP -10.0 points < 0)" in text
    written = doc.read_text()
    assert written.startswith("before\n") and written.endswith("after\n") and "old" not in written and text in written
    # --only one label, into its own block of the doc; the main block is left as it was
    row["label"] = "y"
    out.write_text(out.read_text() + json.dumps(row, sort_keys=True) + "\n")
    doc.write_text(written + "<!-- interpatient_gate y: begin -->\n<!-- interpatient_gate y: end -->\n")
    capsys.readouterr()
    assert ig.main(["--table", "--out", str(out), "--only", "y", "--doc", str(doc), "--block", "y"]) == 0
    only = capsys.readouterr().out
    assert only.count("**`") == 1 and "**`y`**" in only and "**`x`**" not in only
    assert doc.read_text() == written + f"<!-- interpatient_gate y: begin -->\n{only}<!-- interpatient_gate y: end -->\n"
    assert ig.main(["--table", "--out", str(out), "--only", "z"]) == 2
    assert "no gate line labelled 'z'" in capsys.readouterr().err
    assert ig.main(["--table", "--out", str(out), "--only"]) == 0 and capsys.readouterr().out == ""  # no gate line


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    b = [_workdir(tmp_path, f"b{i}", 0.2, 0.2, 0.8) for i in range(2)]
    missing = tmp_path / "not_trained"
    assert ig.main(["--label", "x", "--base", *map(str, b), "--new", str(b[0]), str(missing), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not_trained/ds1_cv.json" in err[0] and "--ds1-only" in err[0]
    assert ig.main(["--label", "x", "--base", str(b[0]), "--new", str(b[1])]) == 2
    assert ig.main(["--table", "--out", str(tmp_path / "none.jsonl")]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_ds2_table_and_goal_line(tmp_path, capsys):
    from ecgjax import interpatient as ip

    summary = {c: {m: {"mean": v, "sd": 0.01} for m in ip._METRICS} for c, v in (("S", 0.85), ("V", 0.90))}
    res = {"name": "toy", "seeds": [0, 1], "classes": ["N", "S", "V", "F", "Q"], "config": {"tune_offsets": []},
           "ds2": {"summary": summary, "per_seed": {}}, "published": [], "goal": ip.GOAL}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(res))
    (tmp_path / "ds2").mkdir()
    for seed in (0, 1):  # N beats of 222 called S (2 per seed) and of 231 called V (1 per seed)
        np.savez(tmp_path / "ds2" / f"seed{seed}.npz", y_true=np.array([0, 0, 0, 0, 1]), y_pred=np.array([1, 1, 2, 0, 1]),
                 record=np.array(["222", "222", "231", "100", "222"]))
    text = ig.ds2_text([path])
    assert "| **toy** (2 seeds, mean ± sd) | 85.0 ± 1.0 |" in text
    # SVEB Se 85 >= 80 reached, +P 85 >= 55 reached; VEB 90 < 92 both not
    assert ("SVEB Se 85.0 (reached), +P 85.0 (reached); VEB Se 90.0 (not reached), +P 90.0 (not reached)." in text)
    assert "* toy: called S: 4 (222: 4); called V: 2 (231: 2); S missed: 0 ()" in text
    b = [_workdir(tmp_path, f"b{i}", 0.2, 0.2, 0.8) for i in range(2)]
    out = tmp_path / "g.jsonl"
    assert ig.main(["--label", "x", "--base", *map(str, b), "--new", *map(str, b), "--out", str(out)]) == 0
    capsys.readouterr()
    assert ig.main(["--table", "--out", str(out), "--ds2", str(path)]) == 0
    assert "against the goal" in capsys.readouterr().out
    assert ig.main(["--table", "--out", str(out), "--ds2", str(tmp_path / "nope.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.json" in err[0]


def test_ds2_seed_sets_by_hand(tmp_path, capsys):
    def results(name, seeds, se_values, ens_se):
        summ = {c: {m: {"mean": float(np.mean(se_values)), "sd": 0.0, "values": list(se_values)} for m in ("se", "ppv", "f1")}
                for c in ("S", "V")}
        ens = {"per_class": {c: {"se": ens_se, "ppv": 0.5} for c in ("S", "V")}}
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({"seeds": seeds, "ds2": {"summary": summ, "ensemble": {"report": ens}}}))
        return path

    a, b = results("a", [0, 1], [0.2, 0.4], 0.3), results("b", [5, 6], [0.6, 0.8], 0.5)
    text = ig.seed_sets_text({"r": [a, b]})
    assert "| r | 0-1 | 30.0 | 30.0 | 30.0 | 30.0 | 30.0 | 30.0 | 30.0 / 50.0 | 30.0 / 50.0 |" in text
    # all 4 seeds: 20, 40, 60, 80 -> 50.0 ± 25.8; ensembles 30, 50 -> 40.0 ± 14.1
    assert "| **r** | all 4 seeds, mean ± sd | 50.0 ± 25.8 |" in text and "40.0 ± 14.1 / 50.0 ± 0.0 |" in text
    gates = tmp_path / "g.jsonl"
    wd = [_workdir(tmp_path, f"w{i}", 0.2, 0.2, 0.8) for i in range(2)]
    assert ig.main(["--label", "x", "--base", *map(str, wd), "--new", *map(str, wd), "--out", str(gates)]) == 0
    capsys.readouterr()
    assert ig.main(["--table", "--out", str(gates), "--ds2-sets", f"r={a},{b}"]) == 0
    assert "| **r** | all 4 seeds" in capsys.readouterr().out
    assert ig.main(["--table", "--out", str(gates), "--ds2-sets", "r"]) == 2
    assert "LABEL=RESULTS.json" in capsys.readouterr().err
