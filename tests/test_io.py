"""Provenance (the device line names the cores a process may use), atomic folders, stale temporaries,
checked reads and workdir locks."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ecgjax.errors import DataError, WorkdirError
from ecgjax.io import atomic_dir, atomic_write_text, describe_device, load_npz, read_json, read_jsonl, sweep_stale, workdir_lock


def test_describe_device_names_usable_cores():
    cpu = {"platform": "cpu", "kind": "cpu", "count": 1, "cpu_count": 2}
    assert describe_device({"device": cpu}) == "1 x cpu (2 CPU cores)"
    assert describe_device({"device": {**cpu, "cpu_affinity": 2}}) == "1 x cpu (2 CPU cores)"
    assert describe_device({"device": {**cpu, "cpu_affinity": 1}}) == "1 x cpu (1 of 2 CPU cores)"
    gpu = {"platform": "gpu", "kind": "NVIDIA H100 80GB HBM3", "count": 1, "cpu_count": 16, "cpu_affinity": 16}
    assert describe_device({"device": gpu}) == "1 x NVIDIA H100 80GB HBM3"


def test_environment_info_sees_a_pinned_process():
    code = ("import os; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]}); "
            "from ecgjax.io import environment_info; print(environment_info()['device']['cpu_affinity'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[-1] == "1"


# -- atomic folders, stale temporaries, workdir locks ------------------------------------------


def test_atomic_dir_replaces_whole_or_not_at_all(tmp_path):
    d = tmp_path / "out"
    with atomic_dir(d) as tmp:
        (tmp / "a").write_text("1")
        assert not d.exists()
    assert (d / "a").read_text() == "1"
    with pytest.raises(KeyboardInterrupt), atomic_dir(d) as tmp:
        (tmp / "b").write_text("2")
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and sorted(p.name for p in d.iterdir()) == ["a"]
    with atomic_dir(d) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(p.name for p in d.iterdir()) == ["c"] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_stale_temporaries_of_dead_writers_are_swept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".x.json.{dead}.0123abcd.tmp"
    stale_dir = tmp_path / f".x.json.{dead}.89abcdef.old"
    mine = tmp_path / f".x.json.{os.getpid()}.0123abcd.tmp"  # a live writer's: kept
    other = tmp_path / f".y.json.{dead}.0123abcd.tmp"  # another target's: not ours to sweep
    stale.write_text("half"), stale_dir.mkdir(), mine.write_text("busy"), other.write_text("y")
    atomic_write_text(tmp_path / "x.json", "{}")
    assert not stale.exists() and not stale_dir.exists() and mine.exists() and other.exists()
    sweep_stale(tmp_path / "y.json")
    assert not other.exists()


def test_damaged_files_name_themselves(tmp_path):
    (tmp_path / "r.json").write_text('{"a": ')
    with pytest.raises(DataError, match=r"r\.json is damaged"):
        read_json(tmp_path / "r.json", "results file")
    with pytest.raises(DataError, match="results file .* is missing"):
        read_json(tmp_path / "none.json", "results file")
    (tmp_path / "r.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_jsonl(tmp_path / "r.jsonl") == [{"a": 1}, {"a": 2}]
    (tmp_path / "r.jsonl").write_text('{"a": 1}\n{"a": ')
    with pytest.raises(DataError, match=r"screen rows .*r\.jsonl is damaged"):
        read_jsonl(tmp_path / "r.jsonl", "screen rows")
    with pytest.raises(DataError, match="screen rows .* is missing"):
        read_jsonl(tmp_path / "none.jsonl", "screen rows")
    np_path = tmp_path / "a.npz"
    np.savez(np_path, x=np.arange(1000))
    np_path.write_bytes(np_path.read_bytes()[:300])
    with pytest.raises(DataError, match=r"a\.npz is damaged or truncated"):
        load_npz(np_path)


def test_workdir_lock_refuses_another_process_with_its_pid(tmp_path):
    code = ("import sys, time; from ecgjax.io import workdir_lock\n"
            "with workdir_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(WorkdirError, match=f"is in use by process {holder.pid} "):
            with workdir_lock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with workdir_lock(tmp_path) as lock:  # a killed holder's lock is free again (flock dies with the process)
        assert Path(lock).read_text().strip() == str(os.getpid())
    assert not (tmp_path / ".lock").exists()


def test_replace_section_swaps_the_marked_part_and_refuses_missing_or_misordered_markers():
    from ecgjax.errors import DataError
    from ecgjax.io import replace_section

    b, e = "<!-- x:begin -->", "<!-- x:end -->"
    page = f"head\n{b}\nold\n{e}\ntail\n"
    new = replace_section(page, f"{b}\nnew\n{e}", b, e, where="doc.md")
    assert new == f"head\n{b}\nnew\n{e}\ntail\n"
    assert replace_section(new, f"{b}\nnew\n{e}", b, e, where="doc.md") == new  # regenerating is idempotent
    for bad in ("head\n", f"{e}\n{b}\n", f"{b}\n{e}\n{b}\n{e}\n"):
        with pytest.raises(DataError, match="doc.md must hold"):
            replace_section(bad, "s", b, e, where="doc.md")


def test_append_jsonl_grows_one_line_per_row_and_reads_back(tmp_path):
    from ecgjax.io import append_jsonl, read_jsonl

    path = tmp_path / "new" / "folder" / "r.jsonl"
    append_jsonl(path, [{"b": 1, "a": [1.5, "x"]}])
    append_jsonl(path, [{"c": None}, {"d": 2}])
    assert read_jsonl(path) == [{"a": [1.5, "x"], "b": 1}, {"c": None}, {"d": 2}]
    assert path.read_text().splitlines()[0] == '{"a": [1.5, "x"], "b": 1}'  # keys sorted, one line each
