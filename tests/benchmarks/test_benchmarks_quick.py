"""The benchmark scripts run end to end (--quick, in a subprocess, into tmp_path)
and write JSON lines with the documented fields. No timing assertions beyond > 0."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_FIELDS = {"device", "device_kind", "jax", "jaxlib", "flax", "command", "timestamp"}
CELL_FIELDS = {"model", "method", "batch", "beats_per_s", "beats_per_s_min", "beats_per_s_max", "compile_s", "conv_impl", "precision"}


def _run(script, tmp_path, *extra):
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--out", str(out), *extra],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows
    for r in rows:
        assert "error" not in r, r.get("error")
        missing = (ENV_FIELDS | CELL_FIELDS) - set(r)
        assert not missing, missing
        assert r["beats_per_s"] > 0 and r["beats_per_s_min"] <= r["beats_per_s"] <= r["beats_per_s_max"]
        assert r["compile_s"] > 0 and r["batch"] > 0
        assert script in r["command"]
    return rows


@pytest.mark.slow  # two models through the subprocess (22 s); the library-path test below runs the script in CI (heavy)
def test_saliency_throughput_quick(tmp_path):
    rows = _run("saliency_throughput.py", tmp_path)
    assert {(r["model"], r["method"]) for r in rows} >= {("ribeiro_cnn", "saliency"), ("jones2020_lstm", "vmap_grad")}
    assert {r["conv_impl"] for r in rows if r["model"] == "ribeiro_cnn"} == {"auto"}
    assert {r["path"] for r in rows} == {"kernel"}


@pytest.mark.heavy
def test_saliency_throughput_quick_library_path(tmp_path):
    """--path library times attribute_dataset (ecgjax.batched.map_batches) over host beats."""
    (row,) = _run("saliency_throughput.py", tmp_path, "--path", "library", "--models", "jones2020_lstm", "--methods", "saliency")
    assert row["path"] == "library" and row["n_beats_per_call"] == 4 * row["batch"] and row["batch_run"] == row["batch"]


@pytest.mark.slow  # two more model compiles: minutes on the shared 2-core CPU
def test_saliency_throughput_quick_shapley(tmp_path):
    rows = _run("saliency_throughput.py", tmp_path, "--models", "ribeiro_cnn", "--methods", "expected_gradients,kernel_shap")
    assert {r["method"] for r in rows} == {"expected_gradients", "kernel_shap"}
    assert all(r["method_source"] == "ecgjax.attribution" for r in rows)


@pytest.mark.heavy
def test_train_throughput_quick(tmp_path):
    pytest.importorskip("optax")
    rows = _run("train_throughput.py", tmp_path, "--models", "jones2020_lstm")
    assert all(r["method"] == "train_step" and r["loss_last"] == r["loss_last"] for r in rows)


@pytest.mark.slow  # the script's defaults; tests/attribution/test_memory.py runs the same script (also slow)
def test_memory_rss_quick(tmp_path):
    out = tmp_path / "mem.jsonl"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory_rss.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["peak_rss_bytes"] > 0 and row["n_beats"] > 0 and row["finite"]


def test_torch_compare_quick_or_clean_exit(tmp_path):
    """With torch+captum the quick comparison runs (logits checked first); without them the
    script says so and exits 2 (the project does not depend on them)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "torch_captum_compare.py"), "--quick", "--out", str(tmp_path / "t.jsonl")],
        capture_output=True, text=True, timeout=900, cwd=tmp_path,
    )
    assert proc.returncode in (0, 2), proc.stderr[-3000:]
    if proc.returncode == 2:
        assert "torch" in proc.stderr.lower()
    else:
        rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
        assert {r["method"] for r in rows} == {"torch_autograd_grad", "captum_saliency", "jax_saliency"}
        assert all(r["logits_max_rel_diff"] < 1e-4 and r["beats_per_s"] > 0 for r in rows)


@pytest.mark.slow  # compiles every check's program on a small LSTM: about a minute on the shared 2-core CPU
def test_audit_throughput_quick(tmp_path):
    out = tmp_path / "audit.jsonl"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "audit_throughput.py"), "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["method"] for r in rows} == {"independent_randomization", "random_logit", "data_randomization",
                                            "completeness_integrated_gradients", "road", "glocal_means", "split_half",
                                            "cluster_class", "tcav"}
    for r in rows:
        assert not (ENV_FIELDS - set(r)) and r["beats_per_s"] > 0 and r["n"] == 40 and "audit_throughput.py" in r["command"]


def test_interpatient_train_time_reads_a_workdir(tmp_path):
    """One row per seed run, values read from its results.json and metrics.jsonl; a missing workdir exits 2."""
    for seed, (wall, epochs) in {0: (300.0, [60.0, 70.0, 80.0]), 1: (120.0, [40.0])}.items():
        run = tmp_path / "work" / "runs" / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"wall_time_s": wall, "epochs_run": len(epochs), "best_epoch": 0,
                                                      "split": {"train_balanced": 1000}}))
        (run / "config.json").write_text(json.dumps({"name": "x", "model": {"name": "rr_net", "kwargs": {"inputs": "both"}}}))
        (run / "metrics.jsonl").write_text("".join(json.dumps({"kind": "epoch", "epoch_time_s": t, "beats_per_s": 1000 / t}) + "\n"
                                                   for t in epochs) + json.dumps({"kind": "step"}) + "\n")
    out = tmp_path / "out.jsonl"
    script = str(ROOT / "benchmarks" / "interpatient_train_time.py")
    proc = subprocess.run([sys.executable, script, str(tmp_path / "work"), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["seed"], r["wall_time_s"], r["epochs_run"], r["median_epoch_time_s"]) for r in rows] == [(0, 300.0, 3, 70.0), (1, 120.0, 1, 40.0)]
    assert rows[0]["inputs"] == "both" and not (ENV_FIELDS - set(rows[0]))
    bad = subprocess.run([sys.executable, script, str(tmp_path / "nothing"), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not a finished inter-patient workdir" in bad.stderr


def test_delineation_methods_summary_takes_the_latest_row(tmp_path):
    """The --summary table: one row per method over its records, the latest row of a record winning."""
    import json

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import delineation_methods

    rows = [{"method": "delineation_dwt", "record": "100", "quality_share": 0.1, "quality_share_V": None, "qrs_ms_median_N": 150.0,
             "seconds": None},
            {"method": "delineation_dwt", "record": "100", "quality_share": 0.8, "quality_share_V": 0.5, "qrs_ms_median_N": 90.0,
             "seconds": None},
            {"method": "delineation_prominence", "record": "100", "quality_share": 0.9, "quality_share_V": 0.6,
             "qrs_ms_median_N": 80.0, "seconds": 2.0},
            {"method": "delineation_prominence", "record": "101", "quality_share": 0.3, "quality_share_V": 0.2,
             "qrs_ms_median_N": 70.0, "seconds": 4.0}]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = delineation_methods.summary(str(path)).splitlines()
    assert lines[2] == "| dwt | 1 | 0.80 (0.80-0.80) | 1 | 0.50 | 90 (90-90) | not timed (cached) |"
    assert lines[3] == "| prominence | 2 | 0.60 (0.30-0.90) | 1 | 0.40 | 75 (70-80) | 3.0 |"
    assert len(lines) == 4  # no row has by_class: no per-class table


def test_delineation_methods_per_class_table_and_render(tmp_path):
    """The per-class table: per method, the median over records with >= 10 beats of the class of the share passing
    / the median QRS width; --render replaces only the marked block of a docs page."""
    import json

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import delineation_methods

    def row(rec, v_pass, v_ms, v_n=20):
        return {"method": "delineation_envelope", "record": rec, "quality_share": 0.9, "quality_share_V": v_pass,
                "qrs_ms_median_N": 80.0, "seconds": 1.0, "command": "python benchmarks/delineation_methods.py --records x",
                "device": "cpu", "host_cpus": 2, "host": "h", "neurokit2": "0.3.0", "numpy": "2", "scipy": "1", "python": "3.12",
                "by_class": {"N": {"beats": 100, "passing": 1.0, "qrs_ms_median": 80.0},
                             "V": {"beats": v_n, "passing": v_pass, "qrs_ms_median": v_ms}}}

    path = tmp_path / "rows.jsonl"
    rows = [row("100", 0.5, 130.0), row("101", 1.0, 150.0), row("102", 0.0, None, v_n=5)]  # 102: too few V beats
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = delineation_methods.summary(str(path)).splitlines()
    assert lines[4] == "| method | N | L | R | V | A | F |"
    assert lines[6] == "| envelope | 1.00 / 80 (3) | - | - | 0.75 / 140 (2) | - | - |"
    docs = tmp_path / "page.md"
    docs.write_text("before\n" + delineation_methods.BEGIN + "\nold\n" + delineation_methods.END + "\nafter\n")
    delineation_methods.main(["--render", str(path), str(docs)])
    text = docs.read_text()
    assert text.startswith("before\n" + delineation_methods.BEGIN) and text.endswith(delineation_methods.END + "\nafter\n")
    assert "old" not in text and lines[6] in text and "`python benchmarks/delineation_methods.py --records x`" in text


def test_delineation_closed_form_rows_and_render(tmp_path):
    """--closed-form measures a case against its planted boundaries (no P planted: no P error and no P IoU; a P
    found where none was planted is counted); --render-closed-form writes the marked block, the statement that no
    expert-marked boundaries are available offline first, the latest row per method and case."""
    import json

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import delineation_methods as D

    row = D.closed_form_row("envelope", "wide, no P, discordant T")
    assert row["beats"] == 18 and row["quality_share"] == 1.0 and (row["p_planted"], row["p_found"], row["p_spurious"]) == (0, 0, 0)
    assert row["error_ms_median"]["P_on"] is None and row["iou_median"]["P"] is None and row["iou_median"]["QRS"] > 0.8
    assert abs(row["error_ms_median"]["QRS_on"]) <= 8 and abs(row["error_ms_median"]["QRS_off"]) <= 16
    env = {"command": "python benchmarks/delineation_methods.py --closed-form x", "device": "cpu", "host_cpus": 2, "host": "h",
           "neurokit2": "0.3.0", "numpy": "2", "scipy": "1", "python": "3.12"}
    old = {**env, **row, "p_spurious": 5}
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in (old, {**env, **row})))
    docs = tmp_path / "page.md"
    docs.write_text("before\n" + D.CF_BEGIN + "\nold\n" + D.CF_END + "\nafter\n")
    D.main(["--render-closed-form", str(path), str(docs)])
    text = docs.read_text()
    assert text.startswith("before\n" + D.CF_BEGIN) and text.endswith(D.CF_END + "\nafter\n") and "\nold\n" not in text
    assert "**No expert-marked wave boundaries are available offline.**" in text
    (line,) = [s for s in text.splitlines() if s.startswith("| envelope |")]  # one row: the latest wins
    assert line.startswith("| envelope | wide, no P, discordant T | 18 | 1.00 | 0 / 0 (0) | - (-) | - (-) |"), line


def test_delineation_closed_form_docs_block_is_the_rendered_results():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import delineation_methods as D

    results = "benchmarks/results/cpu_delineation_closed_form.jsonl"
    doc = (ROOT / "docs" / "results.md").read_text()
    block = doc[doc.index(D.CF_BEGIN) : doc.index(D.CF_END) + len(D.CF_END)]
    assert block == D.render_closed_form(results), f"regenerate: python benchmarks/delineation_methods.py --render-closed-form {results} docs/results.md"
    methods_cases = {(r.split(" | ")[0], r.split(" | ")[1]) for r in block.splitlines() if r.startswith("| envelope |")}
    from ecgjax.data import closed_form

    assert {c for _, c in methods_cases} == set(closed_form.CASES)  # every case of the tests is in the table


@pytest.mark.slow  # compiles the full-size ribeiro_cnn saliency twice
def test_bn_fold_bound_times_both_programs(tmp_path):
    out = tmp_path / "bn.jsonl"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bn_fold_bound.py"), "--batch", "2", "--repeats", "1",
                           "--rounds", "1", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["variant"] for r in rows] == ["as is", "BatchNorm removed"]
    assert all(r["beats_per_s"] > 0 and r["model"] == "ribeiro_cnn" and r["command"] for r in rows)


@pytest.mark.slow  # compiles and traces the full-size ribeiro_cnn saliency
def test_profile_saliency_sums_op_kinds(tmp_path):
    out = tmp_path / "p.jsonl"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_saliency.py"), "--batch", "2", "--calls", "1",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(out.read_text().splitlines()[-1])
    assert row["ms_per_call"] and all(v >= 0 for v in row["ms_per_call"].values()) and "| op kind |" in proc.stdout


@pytest.mark.heavy
def test_model_build_counts_one_compiled_initialisation(tmp_path):
    """A cold build in a new process: the model's initialisation is one XLA program (with the few that seed its Rngs),
    not one per initialiser and parameter shape (the LSTM's three initialisers and the Rngs' programs were 25 before);
    an unknown model exits 2 naming it."""
    out = tmp_path / "b.jsonl"
    script = str(ROOT / "benchmarks" / "model_build.py")
    from ecgjax.models.base import INIT_ENV

    users = {k: v for k, v in os.environ.items() if k != INIT_ENV}  # the default initialisation (the suite's is op by op)
    proc = subprocess.run([sys.executable, script, "--models", "jones2020_lstm", "--repeats", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, env=users)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["model"] == "jones2020_lstm" and row["build_s_median"] > 0 and not (ENV_FIELDS - set(row)) and row["init"] == "program"
    assert 1 <= row["xla_compiles"] <= 5
    bad = subprocess.run([sys.executable, script, "--models", "lstm", "--out", str(out)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown models lstm" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
