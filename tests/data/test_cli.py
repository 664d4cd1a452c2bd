"""``ecgjax data summary`` on a tiny stand-in for mitdb."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ecgjax.cli import main
from ecgjax.data.protocols import MITDB_RECORDS
from tests.conftest import tiny_mitdb_annotations


def expected_jones_counts() -> Counter:
    """jones2020 on tiny_mitdb, counted by hand: every window is 300 samples, so
    all beats but each record's first and last are kept if their symbol is mapped."""
    c = Counter()
    for i, _ in enumerate(MITDB_RECORDS):
        beats = [s for _, s in tiny_mitdb_annotations(i) if s != "+"]
        for s in beats[1:-1]:
            if s in "AEjLNRV":
                c[s] += 1
            elif s == "/":
                c["P"] += 1
    return c


def run(capsys, *args):
    rc = main(["data", "summary", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out


@pytest.fixture
def args(tiny_mitdb, cache_path):
    return ["--data-dir", str(tiny_mitdb.root), "--cache-dir", str(cache_path), "--no-download"]


def test_summary_json(args, capsys):
    rc, out = run(capsys, "--protocol", "jones2020", "--json", *args)
    assert rc == 0
    s = json.loads(out)
    assert {"protocol", "total", "classes", "splits"} <= set(s)
    assert s["protocol"] == "jones2020" and s["split"] == "holdout" and s["patient_wise"] is False
    want = expected_jones_counts()
    assert s["classes"] == {c: want[c] for c in ("A", "E", "j", "L", "N", "P", "R", "V")}
    assert s["total"] == sum(want.values())
    assert set(s["splits"]) == {"train", "val", "test"}
    assert sum(p["total"] for p in s["splits"].values()) == s["total"]
    for c, n in s["classes"].items():
        assert sum(p["classes"][c] for p in s["splits"].values()) == n


def test_summary_json_lpo_and_seed(args, capsys):
    _, out = run(capsys, "--protocol", "jones2020", "--split", "lpo", "--seed", "3", "--json", *args)
    s = json.loads(out)
    assert s["patient_wise"] is True
    assert s["splits"]["test"]["records"] == ["104", "113", "119", "208", "210"]
    _, out2 = run(capsys, "--protocol", "jones2020", "--split", "lpo", "--seed", "3", "--json", *args)
    _, out4 = run(capsys, "--protocol", "jones2020", "--split", "lpo", "--seed", "4", "--json", *args)
    assert out2 == out
    assert json.loads(out4)["splits"]["val"]["records"] != s["splits"]["val"]["records"]


def test_summary_aami_default_split_is_ds1ds2(args, capsys):
    _, out = run(capsys, "--protocol", "aami", "--json", *args)
    s = json.loads(out)
    assert s["split"] == "ds1ds2" and list(s["classes"]) == ["N", "S", "V", "F", "Q"]
    assert "102" not in s["splits"]["train"]["records"] + s["splits"]["test"]["records"]


def test_summary_kfold(args, capsys):
    _, out = run(capsys, "--protocol", "jones2020", "--split", "kfold", "--json", *args)
    s = json.loads(out)
    assert s["split"] == "kfold0of5" and len(s["splits"]["test"]["records"]) == 10


def test_summary_human_readable(args, capsys):
    rc, out = run(capsys, "--protocol", "jones2020", *args)
    assert rc == 0
    lines = out.splitlines()
    assert lines[0] == "protocol jones2020, split holdout (MIXES PATIENTS)"
    assert lines[1].split() == ["A", "E", "j", "L", "N", "P", "R", "V", "total"]
    want = expected_jones_counts()
    assert lines[2].split() == ["all"] + [str(want[c]) for c in "AEjLNPRV"] + [str(sum(want.values()))]
    assert [ln.split()[0] for ln in lines[3:6]] == ["train", "val", "test"]

    rc, out = run(capsys, "--protocol", "jones2020", "--split", "lpo", *args)
    assert "split lpo (patient-wise)" in out
    assert "test records (5): 104 113 119 208 210" in out
