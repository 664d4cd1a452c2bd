"""benchmarks/suite_time.py: pytest's summary line read back, and one clear line with exit 2 on bad input
(running the suite itself is what the script measures; not repeated here)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import suite_time as tst  # noqa: E402


def test_pytest_summary_reads_the_last_summary_line():
    out = ("tests/a.py ....\n= 1 failed, 3 passed in 9.10s =\nmore\n"
           "================ 852 passed, 1 skipped, 105 deselected, 2 warnings in 164.36s (0:02:44) ================\n")
    assert tst.pytest_summary(out) == {"passed": 852, "skipped": 1, "deselected": 105, "pytest_s": 164.36}
    assert tst.pytest_summary("= 2 failed, 1 error in 3.00s =") == {"failed": 2, "error": 1, "pytest_s": 3.0}
    assert tst.pytest_summary("no summary here") == {}


def test_bad_commit_and_repeat_are_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    assert tst.main(["--commit", "not-a-commit", "--out", str(out)]) == 2
    assert tst.main(["--repeat", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "'not-a-commit' is not a commit" in err[0] and "--repeat must be >= 1" in err[1]
    assert not out.exists()


@pytest.mark.slow  # a few seconds of jax compiling in a subprocess
def test_probe_times_its_fixed_workload_in_the_given_interpreter():
    a, b = tst.probe(Path(sys.executable)), tst.probe(Path(sys.executable))
    assert 0 < a < 60 and 0 < b < 60 and max(a, b) / min(a, b) < 2  # the same work twice: close on one host
