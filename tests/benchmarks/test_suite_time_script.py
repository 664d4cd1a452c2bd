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
    pair = tst.probe(Path(sys.executable), 2)  # both cores at once: not faster than one alone
    assert 0.8 * min(a, b) < pair < 60


def test_jax_events_sums_the_test_processes_files(tmp_path):
    (tmp_path / "1.json").write_text('{"backend_compiles": 10.0, "backend_compile_s": 1.25, "trace_s": 0.5}')
    (tmp_path / "2.json").write_text('{"backend_compiles": 5.0, "backend_compile_s": 2.0, "cache_hits": 3.0}')
    assert tst.jax_events(tmp_path) == {"jax_backend_compile_s": 3.2, "jax_cache_hits": 3, "jax_xla_compiles": 12, "jax_trace_s": 0.5}
    assert tst.jax_events(tmp_path / "none") == {}


def test_jax_events_ranks_programs_and_files_over_the_processes(tmp_path):
    """Programs summed over the processes and ranked by compile seconds; files by wall seconds; ``top`` of each."""
    import json

    (tmp_path / "1.json").write_text(json.dumps({"backend_compiles": 3.0, "programs": {"jit(init)": [2, 3.0], "jit(a)": [1, 0.5]},
                                                 "files": {"tests/x.py": [10.0, 4.0], "tests/y.py": [1.0, 0.5]}}))
    (tmp_path / "2.json").write_text(json.dumps({"backend_compiles": 2.0, "programs": {"jit(a)": [1, 3.0], "jit(b)": [1, 0.1]},
                                                 "files": {"tests/z.py": [20.0, 2.0]}}))
    out = tst.jax_events(tmp_path, top=2)
    assert out["jax_xla_compiles"] == 5
    assert out["jax_programs"] == [["jit(a)", 2, 3.5], ["jit(init)", 2, 3.0]]
    assert out["test_files"] == [["tests/z.py", 20.0, 2.0], ["tests/x.py", 10.0, 4.0]]


@pytest.mark.slow  # a pytest run in a subprocess
def test_conftest_records_the_compiles_of_a_test_process(tmp_path):
    import json
    import os
    import subprocess

    env = {**os.environ, "ECGJAX_TEST_JAX_EVENTS": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/train/test_optim.py"],
                          cwd=ROOT, env=env, capture_output=True, text=True)  # a short file of the suite that compiles
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = [json.loads(p.read_text()) for p in tmp_path.glob("*.json")]
    assert row["backend_compiles"] >= 1 and row["backend_compile_s"] > 0 and row["compile_requests"] >= row["cache_hits"]
    assert sum(n for n, _ in row["programs"].values()) == row["backend_compiles"]
    assert abs(sum(s for _, s in row["programs"].values()) - row["backend_compile_s"]) < 0.01
    ((file, (wall, jax_s)),) = row["files"].items()
    assert file == "tests/train/test_optim.py" and wall >= jax_s >= row["backend_compile_s"] - 0.01
