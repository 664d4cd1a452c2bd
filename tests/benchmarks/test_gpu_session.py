"""The GPU session's scripts: they parse, their bookkeeping is right, and the tiny mode runs every step on CPU.

The device gets 15 minutes at a time, so what can be checked here is checked here: the shell scripts parse,
the step lists keep under the device tool's 8 returned files, an earlier session's ok steps are skipped, a
cut-off run travels back with only its latest checkpoint, and ``scripts/gpu_results.py`` turns returned
files into benchmarks/results/ and the generated part of docs/results.md. The tiny end-to-end runs are slow.
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_results  # noqa: E402
import gpu_session  # noqa: E402


@pytest.mark.parametrize("script", ["benchmarks/gpu_session.sh", "scripts/offline_bundle.sh"])
def test_shell_scripts_parse(script):
    proc = subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_gpu_session_sh_refuses_without_out_and_unknown_phase(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_session.sh"), "bench"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "OUT" in proc.stderr
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_session.sh"), "nonsense"], capture_output=True, text=True,
                          env={**env, "OUT": str(tmp_path)})
    assert proc.returncode == 2 and "unknown phase" in proc.stdout + proc.stderr


@pytest.mark.parametrize("tiny", [False, True])
def test_steps_are_unique_and_fit_the_returned_files(tmp_path, tiny):
    bench = gpu_session.bench_steps(tiny, tmp_path)
    train = gpu_session.train_steps(tiny, tmp_path / "runs", tmp_path / "cfg")
    names = [s.name for s in bench + train]
    assert len(names) == len(set(names))
    assert len({s.workdir for s in train}) == len(train)  # one folder per run
    # every output file a step writes is one of FILES; with the log and the runs archive, <= 8 come back
    outs = {a for s in bench for a in s.argv if a.startswith(str(tmp_path))}
    assert outs <= {str(tmp_path / f) for f in gpu_session.FILES.values()}
    assert len(gpu_session.FILES) + 2 <= 8
    # the headline measurements come first: captum comparison, then the 104k-beat pipeline, then the grid
    assert [s.name for s in bench[:4]] == ["torch_captum_float32_b4096", "pipeline_e2e_jones2020_cnn",
                                            "torch_captum_tf32_b4096", "grid_saliency_float32"]
    assert train[0].name == "train_cnn_holdout"
    if not tiny:
        pipe = next(s for s in bench if s.name == "pipeline_e2e_jones2020_cnn")
        assert pipe.argv[pipe.argv.index("--n-beats") + 1] == "104222"
        grid = next(s for s in bench if s.name == "grid_saliency_float32")
        assert grid.argv[grid.argv.index("--batches") + 1] == "256,1024,4096,16384"
    if tiny:  # the tiny configs load and are tiny
        from ecgjax.config import load_config

        cfg = load_config(str(tmp_path / "cfg" / "jones2020_cnn_holdout.py"))
        assert (cfg.data.max_beats, cfg.train.epochs) == (240, 1)
        corrected = load_config(str(tmp_path / "cfg" / "jones2020_lstm_holdout.py:corrected"))
        assert (corrected.name, corrected.train.epochs) == ("jones2020_lstm_holdout_corrected", 1)
        from ecgjax.interpatient import load_config as load_interpatient
        from ecgjax.study.config import load_study_config

        assert load_interpatient(str(tmp_path / "cfg" / "aami_rr.py")).train.train.epochs == 1
        assert all(r.config.data.max_beats == 240 for r in load_study_config(str(tmp_path / "cfg" / "corrected_study.py")).runs)


def test_done_steps_latest_row_wins(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(json.dumps({"step": "x", "status": "ok"}) + "\n" + json.dumps({"step": "y", "status": "timeout"}) + "\n")
    b.write_text(json.dumps({"step": "y", "status": "ok"}) + "\n" + json.dumps({"step": "x", "status": "failed"}) + "\n")
    assert gpu_session.done_steps([a]) == {"x"}
    assert gpu_session.done_steps([a, b]) == {"y"}
    assert gpu_session.done_steps([tmp_path / "absent.jsonl"]) == set()


def _fake_runs(root: Path, big: int = 10):
    fin, unf = root / "fin", root / "unf"
    for d in (fin, unf):
        (d / "checkpoints" / "100").mkdir(parents=True)
        (d / "checkpoints" / "200").mkdir(parents=True)
        (d / "checkpoints" / "100" / "state").write_bytes(b"a" * big)
        (d / "checkpoints" / "200" / "state").write_bytes(b"b" * big)
        (d / "metrics.jsonl").write_text("{}\n")
    (fin / "results.json").write_text(json.dumps({"name": "fin"}))
    return fin, unf


def test_pack_runs_keeps_only_what_resumes(tmp_path):
    fin, unf = _fake_runs(tmp_path / "runs")
    for d in (fin, unf):
        (d / "best" / "150").mkdir(parents=True)
        (d / "best" / "150" / "state").write_bytes(b"c")
    tar = tmp_path / "runs.tar.gz"
    gpu_session.pack_runs(tmp_path / "runs", tar, log=lambda m: None)
    names = set(tarfile.open(tar).getnames())
    assert names == {"fin/metrics.jsonl", "fin/results.json", "unf/metrics.jsonl", "unf/checkpoints/200/state",
                     "unf/best/150/state"}


def test_pack_runs_drops_checkpoints_over_the_limit(tmp_path, monkeypatch):
    _fake_runs(tmp_path / "runs", big=2000)
    monkeypatch.setattr(gpu_session, "TAR_LIMIT", 1000)
    msgs = []
    gpu_session.pack_runs(tmp_path / "runs", tmp_path / "r.tar.gz", log=msgs.append)
    names = set(tarfile.open(tmp_path / "r.tar.gz").getnames())
    assert "unf/checkpoints/200/state" not in names and "unf/metrics.jsonl" in names
    assert any("left out unf/checkpoints/200" in m for m in msgs)


_SLEEPER = """
import signal, sys, time
from pathlib import Path
folder = Path(sys.argv[1])
def interrupted(*_):
    (folder / "interrupted").write_text("SIGINT")
    sys.exit(130)
signal.signal(signal.SIGINT, interrupted)
(folder / "started").write_text("")
time.sleep(300)
(folder / "finished").write_text("")
"""


def test_run_step_limit_interrupts(tmp_path):
    """At the limit the step gets SIGINT (ecgjax's clean, resumable stop) and is not waited for to the end."""
    step = gpu_session.Step("sleep", (sys.executable, "-c", _SLEEPER, str(tmp_path)), 1, 1)
    status, rc, _ = gpu_session.run_step(step, 1.5, log=lambda m: None)  # ample for a bare interpreter to start
    assert (status, rc) == ("timeout", 130)
    assert (tmp_path / "started").exists() and (tmp_path / "interrupted").read_text() == "SIGINT"
    assert not (tmp_path / "finished").exists()
    status, rc, _ = gpu_session.run_step(gpu_session.Step("bad", (str(tmp_path / "missing"),), 1, 1), 5, log=lambda m: None)
    assert (status, rc) == ("failed", None)


# ---------------------------------------------------------------- scripts/gpu_results.py
def _returned_files(folder: Path, device="gpu"):
    env = {"device": device, "device_kind": "NVIDIA H200", "jax": "0.11.2", "jaxlib": "0.11.2", "flax": "0.12.12",
           "n_devices": 1, "python": "3.12.3", "git_commit": "abc", "timestamp": "t"}
    folder.mkdir(parents=True)
    (folder / "steps.jsonl").write_text("".join(json.dumps(dict(env, step=s, status=st, seconds=3, est_s=5)) + "\n"
                                                for s, st in [("torch_captum_float32_b4096", "ok"), ("train_cnn_holdout", "timeout")]))
    rows = [dict(env, model="ribeiro_cnn", method=m, batch=4096, precision="float32", beats_per_s=v)
            for m, v in [("jax_saliency", 30000.0), ("torch_autograd_grad", 14000.0), ("captum_saliency", 12000.0)]]
    (folder / "gpu_torch_compare.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "gpu_pipeline.jsonl").write_text(json.dumps(dict(env, model="jones2020_cnn", n_beats=104222, batch=8192, total_s=12.5,
                                                               saliency_s=10.0, segments_s=1.5, profiles_s=1.0, compile_s=3.0)) + "\n")
    (folder / "session.log").write_text("log line\n")
    runs = folder.parent / "runs_src"
    _fake_runs(runs)
    with tarfile.open(folder / "runs.tar.gz", "w:gz") as tf:
        tf.add(runs / "fin" / "results.json", arcname="fin/results.json")
        tf.add(runs / "unf" / "checkpoints" / "200" / "state", arcname="unf/checkpoints/200/state")


def test_gpu_results_ingests_and_regenerates(tmp_path):
    files, results, resume, doc = tmp_path / "out", tmp_path / "results", tmp_path / "resume", tmp_path / "results.md"
    _returned_files(files)
    doc.write_text("# Results\n\n| method | a |\n|---|---|\n| ecgjax `aami_jones_cnn` | not yet run (GPU) | | | | `x` |\n")
    args = [str(files), "--results", str(results), "--resume-dir", str(resume), "--doc", str(doc)]
    assert gpu_results.main(args) == 0
    assert (results / "gpu_NVIDIA_H200_torch_compare.jsonl").read_text().count("\n") == 3
    assert (resume / "unf" / "checkpoints" / "200" / "state").exists()  # the next session resumes it
    assert (results / "gpu_runs" / "fin" / "results.json").exists()
    text = doc.read_text()
    assert gpu_results.BEGIN in text and gpu_results.END in text
    assert "| float32 | 4096 | 30,000 | 14,000 | 12,000 | 2.50x | met |" in text  # 30000 / 12000
    assert "| jones2020_cnn | 104,222 | 8192 | 12.50 |" in text and "NOT met" in text  # 12.5 s > 10 s
    assert "Left for the next session (not ok yet): train_cnn_holdout." in text
    assert "| ecgjax `aami_jones_cnn` | not yet run (GPU) |" in text  # no study run yet: the row stays
    # idempotent: ingesting the same files again adds no rows and leaves the page as it is
    assert gpu_results.main(args) == 0
    assert (results / "gpu_NVIDIA_H200_torch_compare.jsonl").read_text().count("\n") == 3
    assert doc.read_text() == text


def test_gpu_results_refuses_cpu_rows_and_missing_files(tmp_path, capsys):
    _returned_files(tmp_path / "out", device="cpu")
    doc = tmp_path / "d.md"
    doc.write_text("x\n")
    common = ["--results", str(tmp_path / "r"), "--resume-dir", str(tmp_path / "s"), "--doc", str(doc)]
    assert gpu_results.main([str(tmp_path / "out"), *common]) == 2
    assert "--allow-cpu" in capsys.readouterr().err
    assert gpu_results.main([str(tmp_path / "nothing"), *common]) == 2
    assert "steps.jsonl not found" in capsys.readouterr().err


def test_gpu_results_fills_the_study_rows(tmp_path):
    runs = tmp_path / "results" / "gpu_runs" / "corrected" / "runs"
    for name, s_se in [("aami_ribeiro_s0", 0.5), ("aami_ribeiro_s1", 0.7), ("aami_jones_cnn", 0.4)]:
        (runs / name).mkdir(parents=True)
        pc = {"S": {"recall": s_se, "precision": 0.2}, "V": {"recall": 0.9, "precision": 0.8}}
        (runs / name / "results.json").write_text(json.dumps({"name": name, "test": {"per_class": pc}}))
    text = "| ecgjax `aami_ribeiro`, 3 seeds, full recipe | not yet run (GPU) | | | | `c` |\n"
    out = gpu_results.fill_placeholders(text, tmp_path / "results" / "gpu_runs")
    assert out.startswith("| ecgjax `aami_ribeiro`, 3 seeds, full recipe | 60.0 ± 14.1 | 20.0 ± 0.0 | 90.0 ± 0.0 | 80.0 ± 0.0 |")


def test_repo_docs_section_is_current():
    """docs/results.md's generated part equals what the committed benchmarks/results/ give."""
    doc = (ROOT / "docs" / "results.md").read_text()
    section = doc[doc.index(gpu_results.BEGIN): doc.index(gpu_results.END) + len(gpu_results.END)]
    assert section == gpu_results.render(ROOT / "benchmarks" / "results")


# ---------------------------------------------------------------- the tiny mode, end to end on CPU
def _tiny(tmp_path, phase, *extra):
    env = dict(os.environ, OUT=str(tmp_path / "out"), ECGJAX_GPU_SESSION_TINY="1", PY=sys.executable,
               GPU_SESSION_SITE=str(tmp_path / "site"), ECGJAX_CACHE_DIR=str(tmp_path / "cache"))
    if os.environ.get("ECGJAX_DATA_DIR"):
        env["GPU_SESSION_DATA"] = os.environ["ECGJAX_DATA_DIR"]
    proc = subprocess.run(["bash", str(ROOT / "benchmarks/gpu_session.sh"), phase, "--budget-s", "900",
                           "--runs", str(tmp_path / "runs"), "--done", str(tmp_path / "none.jsonl"), *extra],
                          capture_output=True, text=True, env=env, timeout=1800, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = gpu_session.latest_status(tmp_path / "out" / "steps.jsonl")
    return rows


@pytest.mark.slow
def test_tiny_bench_runs_every_step(tmp_path):
    rows = _tiny(tmp_path, "bench")
    assert set(rows) == {s.name for s in gpu_session.bench_steps(True, tmp_path)}
    torch_missing = subprocess.run([sys.executable, "-c", "import torch, captum"], capture_output=True).returncode != 0
    for name, status in rows.items():
        assert status == "ok" or (torch_missing and name.startswith("torch_captum")), (name, status)
    assert (tmp_path / "out" / "gpu_pipeline.jsonl").read_text().count("\n") == 3


@pytest.mark.slow
@pytest.mark.realdata
def test_tiny_train_runs_every_step(tmp_path):
    if not os.environ.get("ECGJAX_DATA_DIR"):
        pytest.skip("needs the MIT-BIH records: set ECGJAX_DATA_DIR")
    rows = _tiny(tmp_path, "train")
    assert rows == {s.name: "ok" for s in gpu_session.train_steps(True, tmp_path / "r", tmp_path / "c")}
    names = set(tarfile.open(tmp_path / "out" / "runs.tar.gz").getnames())
    assert "jones2020_cnn_holdout/results.json" in names
    assert not any("/checkpoints/" in n for n in names)  # every run finished: no checkpoint travels
