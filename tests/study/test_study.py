"""The study pipeline end to end on synthetic beats: every stage, the report with its figures, resume and --force."""

import json
import re

import numpy as np
import pytest

from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from ecgjax.errors import ConfigError, WorkdirError
from ecgjax.study import AuditSpec, MethodSpec, RunSpec, StudyConfig, run_study
from ecgjax.study.subsets import explain_subset
from tests.chromium import figure_problems, render


def _train_cfg(seed=0):
    return Config(
        name="synthetic",
        data=DataConfig(protocol="synthetic", protocol_overrides={"n_records": 6, "beats_per_record": 30, "t": 200, "n_classes": 3},
                        split="kfold", split_kwargs={"fold": 0, "k": 3, "n_val_records": 1}),
        model=ModelConfig(name="ribeiro_cnn", kwargs={"filters": (4, 4), "lead_layout": "channels"}),
        train=TrainConfig(batch_size=16, eval_batch_size=64, epochs=1, checkpoint_every=100, seed=seed),
        eval=EvalConfig(bootstrap_samples=20),
    )


def _study(**kw):
    base = dict(
        name="synthetic study",
        runs=(RunSpec("a", _train_cfg(0), group="g", explain=True), RunSpec("b", _train_cfg(1), group="g")),
        methods=(MethodSpec("saliency", target="label", transform="abs"), MethodSpec("grad_cam", target="pred", transform="relu"),
                 # the paper's layer saliency needs jones2020_cnn's last conv: skipped for ribeiro_cnn, not a crash
                 MethodSpec("jones2020_layer_saliency", target="label", transform="paper"),
                 MethodSpec("integrated_gradients", target="label", transform="abs", hparams={"steps": 4})),
        explain_max_per_class=10, n_boot=20, sanity_beats=12, notes=("a note",), expert_rules=True,
        # the audit's subset equals the sanity checks' (12 beats): their compiled steps are shared
        audit=AuditSpec(sanity_beats=12, permuted_steps=3, road_fractions=(0.0, 0.5, 0.9), glocal_splits=5,
                        methods=("saliency", "integrated_gradients"), cluster_ks=(2, 3), cluster_min_beats=5,
                        tcav_beats=4, tcav_concept_beats=10, tcav_random_sets=3),
    )
    base.update(kw)
    return StudyConfig(**base)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The study run once; records how often each run was loaded and the StudyResult the report got."""
    import ecgjax.study.report
    import ecgjax.train

    wd = tmp_path_factory.mktemp("study")
    loads, results = [], []
    load_run, build_report = ecgjax.train.load_run, ecgjax.study.report.build_report
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ecgjax.train, "load_run", lambda d, **kw: loads.append(d.name) or load_run(d, **kw))
        mp.setattr(ecgjax.study.report, "build_report", lambda r: results.append(r) or build_report(r))
        paths = run_study(_study(), wd)
    return wd, paths, loads, results[0]


@pytest.mark.heavy
def test_every_stage_and_the_report(finished):
    wd, paths, *_ = finished
    for stage in ("data", "train", "explain", "sanity", "expert_rules", "report"):
        assert (wd / "stages" / f"{stage}.json").exists(), stage
    assert (wd / "runs" / "a" / "results.json").exists() and (wd / "runs" / "b" / "results.json").exists()
    for key in ("saliency-label-abs", "grad_cam-pred-relu"):
        prof = wd / "profiles" / "a" / key
        assert (prof / "profiles.npz").exists() and (prof / "figures" / "class_heatmap.png").exists()
        assert (prof / "figures" / "example_beats.png").exists()
    html = (wd / "report" / "report.html").read_text()
    n_img = html.count("<img ")
    # confusion + per-class per run (4), then per method heat map + example beats + class lines, then sanity figures
    assert n_img >= 4 + 2 * 3 + 2
    for needle in ("Table 1", "Across seeds", "Sanity checks", "a note", "Provenance",
                   "Expert rules: relevance in the defining wave (a)", "come from no records to delineate"):
        assert needle in html, needle
    md = (wd / "report" / "summary.md").read_text()
    assert "| a | ribeiro_cnn |" in md
    explain = json.loads((wd / "stages" / "explain.json").read_text())["runs"]["a"]
    assert set(explain["methods"]) == {"saliency-label-abs", "grad_cam-pred-relu", "integrated_gradients-label-abs"}
    assert "has no layer 'final_conv'" in explain["skipped"]["jones2020_layer_saliency-label-paper"]
    assert "jones2020_layer_saliency-label-paper: not applicable" in html
    sanity = json.loads((wd / "stages" / "sanity.json").read_text())
    assert set(sanity["cascade"]) == {"saliency", "grad_cam", "integrated_gradients"} and sanity["faithfulness"]["deletion_auc"]


def _md_table(md: str, caption: str) -> list[list[str]]:
    table = md.split(f"**{caption}**", 1)[1].strip().split("\n\n", 1)[0]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in table.splitlines()]
    return [rows[0]] + rows[2:]


@pytest.mark.heavy
def test_table_1_states_its_definitions_and_equals_summarize(finished):
    from ecgjax.train.summary import summarize

    wd, *_ = finished
    md = (wd / "report" / "summary.md").read_text()
    assert "'sklearn' (the paper's)" in md and "'present'" in md and "r > 0: A's values" in md
    t1 = _md_table(md, "Table 1: test-set results beside the paper's")
    head, rows = t1[0], {r[0]: dict(zip(t1[0], r)) for r in t1[1:]}
    summ = [[c.strip() for c in ln.strip("|").split("|")] for ln in summarize([wd / "runs" / "a", wd / "runs" / "b"]).splitlines()]
    for name, r in zip(("a", "b"), summ[2:]):  # summarize names a run by its config, the report by the study's run name
        got = dict(zip(summ[0], r))
        for col in ("accuracy", "macro F1 (sklearn)", "macro F1 (present)"):
            assert rows[name][col] == got[col], (name, col)
    results = json.loads((wd / "runs" / "a" / "results.json").read_text())
    assert rows["a"]["test beats"] == str(results["test"]["n"]) and "paper macro F1 (sklearn)" in head
    used = {r[0]: r for r in _md_table(md, "Beats each run actually used (the tables above count the whole split; a cap samples from it)")[1:]}
    assert used["a"][5] == str(results["test"]["n"])
    per_class = {(r[0], r[1]): r for r in _md_table(md, "Per class on the test beats (classes with test beats or predictions)")[1:]}
    pc = results["test"]["per_class"]
    assert {c for run, c in per_class if run == "a"} == {c for c, v in pc.items() if v["support"] or v["predicted"]}
    for c in {c for run, c in per_class if run == "a"}:
        assert per_class[("a", c)][2] == str(pc[c]["support"]) and per_class[("a", c)][6].startswith(f"{pc[c]['f1']:.3f} [")


@pytest.mark.heavy
def test_report_lists_comparisons_uncompared_classes_and_ig_completeness(finished):
    wd, *_, result = finished
    md = (wd / "report" / "summary.md").read_text()
    comps = result.attributions["a"].methods["saliency-label-abs"].comparisons
    listed = {r[1] for r in _md_table(md, "Not compared: fewer than 5 beats in a group")[1:] if r[0] == "saliency-label-abs"}
    want = {f"{c}: correct vs incorrect" for c in comps["not_compared"]["correct_vs_incorrect"]}
    want |= {f"{p.split('->')[0]} taken for {p.split('->')[1]} vs correct {p.split('->')[1]}" for p in comps["not_compared"]["mistaken_vs_class"]}
    assert want and listed == want
    assert ("Misclassified beats (A) vs the class they were taken for (B)" in md) == bool(comps["mistaken_vs_class"])
    ig = _md_table(md, "Integrated gradients completeness: |sum of attributions - (f(x) - f(baseline))| / |f(x) - f(baseline)|")
    meta = json.loads((result.attributions["a"].methods["integrated_gradients-label-abs"].attr_dir / "meta.json").read_text())
    assert ig[1][:4] == ["integrated_gradients-label-abs", "4", str(meta["completeness"]["n"]),
                         f"{100 * meta['completeness']['median_rel_error']:.1f}%"]


@pytest.mark.heavy
def test_each_run_is_loaded_once_and_the_report_renders_the_result_alone(finished, monkeypatch):
    from pathlib import Path

    from ecgjax.study.report import build_report
    from ecgjax.study.result import StudyResult

    wd, _, loads, result = finished
    assert loads == ["a"], "the explained run is loaded once for explain, sanity and the report"
    assert isinstance(result, StudyResult) and list(result.runs) == ["a", "b"] and list(result.attributions) == ["a"]
    sal = result.attributions["a"].methods["saliency-label-abs"]
    assert sal.comparisons["method"] == "saliency" and len(sal.segment_labels) > 0
    assert result.sanity.run == "a" and set(result.sanity.cascade) == {"saliency", "grad_cam", "integrated_gradients"}

    def no_reading(*a, **kw):
        raise AssertionError("the report read a file")

    monkeypatch.setattr(Path, "read_text", no_reading)
    monkeypatch.setattr(np, "load", no_reading)
    written = (wd / "report" / "summary.md").read_bytes().decode()
    assert build_report(result).to_markdown() == written


@pytest.mark.heavy
def test_report_renders_with_every_figure(finished, tmp_path):
    wd, paths, *_ = finished
    n_img = (wd / "report" / "report.html").read_text().count("<img ")
    dom, img = render(wd / "report" / "report.html", tmp_path)
    m = re.search(r'data-figures-loaded="(\d+)/(\d+)"', dom)
    assert m and int(m.group(1)) == int(m.group(2)) == n_img, dom[:300]
    assert figure_problems(dom) == []
    assert img.std() > 0.02, "screenshot is blank"


@pytest.mark.heavy
def test_rerun_skips_finished_stages_and_force_redoes_them(finished, caplog):
    wd, *_ = finished
    marks = {s: (wd / "stages" / f"{s}.json").stat().st_mtime_ns for s in ("data", "train", "explain", "sanity", "audit_sanity", "glocal", "clusters", "tcav")}
    npz = sorted((wd / "attributions").rglob("class_*.npz"))[0]
    npz_time = npz.stat().st_mtime_ns
    caplog.set_level("INFO")
    run_study(_study(), wd)
    assert {s: (wd / "stages" / f"{s}.json").stat().st_mtime_ns for s in marks} == marks
    assert npz.stat().st_mtime_ns == npz_time
    assert "stage train: finished earlier, skipped" in caplog.text
    # an interrupted explain stage resumes: drop its marker, the per-method files are reused
    (wd / "stages" / "explain.json").unlink()
    run_study(_study(), wd)
    assert npz.stat().st_mtime_ns == npz_time and (wd / "stages" / "explain.json").exists()


@pytest.mark.heavy
def test_a_method_killed_while_drawing_figures_is_redone(finished):
    """Without its completion marker (written after the last figure) a method is explained and profiled again."""
    wd, *_ = finished
    prof = wd / "profiles" / "a" / "saliency-label-abs"
    other = wd / "profiles" / "a" / "grad_cam-pred-relu" / "profiles.npz"
    t_other = other.stat().st_mtime_ns
    (prof / "complete.json").unlink()
    (prof / "figures" / "example_beats.png").unlink()  # as a kill before the last figure leaves it
    (wd / "stages" / "explain.json").unlink()
    run_study(_study(), wd)
    assert (prof / "figures" / "example_beats.png").exists() and (prof / "complete.json").exists()
    assert other.stat().st_mtime_ns == t_other  # the finished method is reused


@pytest.mark.heavy
def test_force_refuses_another_studys_workdir_before_deleting(finished, tmp_path):
    wd, *_ = finished
    before = sorted(p.relative_to(wd) for p in wd.rglob("*"))
    with pytest.raises(WorkdirError, match="holds another study"):
        run_study(_study(n_boot=21), wd, force=True)
    assert sorted(p.relative_to(wd) for p in wd.rglob("*")) == before
    (tmp_path / "mine.txt").write_text("not a study")
    with pytest.raises(WorkdirError, match="holds no study config.json"):
        run_study(_study(), tmp_path, force=True)
    assert (tmp_path / "mine.txt").exists()


def test_force_redoes_everything(tmp_path):
    """Every stage of a finished study runs again (a study of one run and its report: the stages' marker and outputs)."""
    cfg = _study(runs=(RunSpec("a", _train_cfg(0)),), methods=(), sanity_beats=0, audit=None, expert_rules=False)
    run_study(cfg, tmp_path)
    made = [tmp_path / "runs" / "a" / "results.json", tmp_path / "report" / "report.html", *sorted((tmp_path / "stages").glob("*.json"))]
    assert len(made) == 5, made  # data, train, report
    before = [p.stat().st_mtime_ns for p in made]
    run_study(cfg, tmp_path, force=True)
    assert all(p.stat().st_mtime_ns != t for p, t in zip(made, before)), made


@pytest.mark.heavy
def test_workdir_of_another_study_is_refused(finished):
    wd, *_ = finished
    with pytest.raises(WorkdirError, match="another study"):
        run_study(_study(n_boot=21), wd)


def test_config_errors_are_clear():
    with pytest.raises(ConfigError, match="unknown"):
        _study(methods=(MethodSpec("salency"),))
    with pytest.raises(ConfigError, match="transform"):
        _study(methods=(MethodSpec("saliency", transform="square"),))
    with pytest.raises(ConfigError, match="unique"):
        _study(runs=(RunSpec("a", _train_cfg(), explain=True), RunSpec("a", _train_cfg())))
    with pytest.raises(ConfigError, match="explain=True"):
        _study(runs=(RunSpec("a", _train_cfg()),))


def test_explain_subset_caps_each_class():
    y = np.array([0] * 50 + [1] * 5 + [2] * 30)
    idx = np.arange(10, 85)
    got = explain_subset(y, idx, 10, seed=0)
    assert np.all(np.diff(got) > 0) and set(got) <= set(idx)
    assert np.bincount(y[got]).tolist() == [10, 5, 10]
    np.testing.assert_array_equal(got, explain_subset(y, idx, 10, seed=0))
    np.testing.assert_array_equal(explain_subset(y, idx, None, seed=0), idx)


def test_audit_cpu_run_is_the_rr_recipe_on_ds1ds2():
    """audit_study.py:cpu trains aami_rr.py's model and recipe with the running-mean RR reference (``:meanref``, the
    features its documented run used), changing only the split (DS2 as the test part) and the records (all of the
    protocol's, so DS2 is there to test on)."""
    import dataclasses
    from pathlib import Path

    from ecgjax.config import call_get_config
    from ecgjax.study import load_study_config

    root = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    run = load_study_config(str(root / "audit_study.py:cpu")).runs[0].config
    rr = call_get_config(str(root / "aami_rr.py:meanref")).train
    assert run.data.split == "ds1ds2" and rr.data.split == "ds1" and run.data.protocol_overrides == {"rr_reference": "mean"}
    assert run.model == rr.model and run.train == rr.train and run.eval == rr.eval
    assert dataclasses.replace(run.data, split="ds1", protocol_overrides=rr.data.protocol_overrides) == rr.data


def test_audit_mitbih8_keeps_l_and_r_apart_with_the_rr_recipe():
    """audit_study.py:mitbih8 classifies the 8 MIT-BIH classes (so the expert rules have L and R rows), with aami_rr.py's
    model and training recipe on raw beats; validation (seed 0) leaves every DS1 record with L or R beats in training;
    the hold-out variant differs only in the split."""
    import dataclasses
    from pathlib import Path

    from ecgjax.config import call_get_config
    from ecgjax.data import protocols
    from ecgjax.data.splits import make_split
    from ecgjax.study import load_study_config
    from ecgjax.study.expert_rules import RULES

    root = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    run = load_study_config(str(root / "audit_study.py:mitbih8")).runs[0].config
    hold = load_study_config(str(root / "audit_study.py:mitbih8_holdout")).runs[0].config
    p = protocols.get(run.data.protocol, **run.data.protocol_overrides)
    assert {c: RULES[c] for c in p.classes if c in RULES} == {"A": "P", "E": "QRS", "L": "QRS", "R": "QRS", "V": "QRS"}
    assert set(p.records) == set(protocols.DS1) | set(protocols.DS2) and p.rr_features and run.data.template_beats == 0
    rr = call_get_config(str(root / "aami_rr.py")).train
    assert run.model == rr.model and run.train == rr.train and run.eval == rr.eval
    record = np.array(sorted(p.records))
    split = make_split(run.data.split, np.zeros(len(record), int), record, seed=run.data.split_seed, **run.data.split_kwargs)
    assert {"109", "207", "118", "124"} <= set(record[split.train]) and set(record[split.test]) == set(protocols.DS2)
    assert hold.data.split == "holdout" and dataclasses.replace(hold.data, split="ds1ds2", split_kwargs=run.data.split_kwargs) == run.data
    assert dataclasses.replace(hold, name=run.name, data=run.data) == run


@pytest.mark.parametrize("spec", ["reproduce_jones2020.py", "reproduce_jones2020.py:quick", "reproduce_jones2020.py:cpu", "corrected_study.py", "corrected_study.py:quick", "corrected_study.py:quick,traverse", "audit_study.py", "audit_study.py:quick", "audit_study.py:cpu", "audit_study.py:mitbih8", "audit_study.py:mitbih8_holdout"])
def test_study_config_files_load_and_document_their_commands(spec):
    from pathlib import Path

    from ecgjax.study import load_study_config

    root = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    cfg = load_study_config(str(root / spec))
    assert cfg.runs and cfg.methods and any(r.explain for r in cfg.runs)
    doc = (root / spec.split(":")[0]).read_text()
    assert "--workdir" in doc and ":quick" in doc
    with pytest.raises(ConfigError, match="get_config.*failed|quick"):
        load_study_config(str(root / (spec.split(":")[0] + ":fast")))


def test_cpu_reproduction_is_the_faithful_recipe_with_capped_epochs():
    """``reproduce_jones2020.py:cpu`` differs from the single-run configs only in ``train.epochs``, so
    ``ecgjax train --set train.epochs=N`` work folders are valid runs of it (docs/results.md)."""
    from pathlib import Path

    from ecgjax import config as config_lib
    from ecgjax.study import load_study_config

    root = Path(__file__).resolve().parents[2] / "experiments" / "configs"
    cpu = load_study_config(str(root / "reproduce_jones2020.py:cpu"))
    full = {r.name: r.config for r in load_study_config(str(root / "reproduce_jones2020.py")).runs}
    for r in cpu.runs:
        d = config_lib.diff(full[r.name], r.config)
        assert [k for k, _, _ in d] == ["train.epochs"], (r.name, d)
        assert d[0][2] < d[0][1]
    assert cpu.explain_max_per_class and [r.name for r in cpu.runs if r.explain] == ["cnn_holdout", "lstm_holdout"]


@pytest.mark.heavy
def test_audit_stages_files_and_report(finished):
    wd, *_ = finished
    s = json.loads((wd / "stages" / "audit_sanity.json").read_text())
    both = {"saliency", "integrated_gradients"}
    assert set(s["independent"]) == set(s["random_logit"]) == set(s["data_randomization"]) == both
    assert set(s["completeness"]) == {"integrated_gradients"} and s["completeness"]["integrated_gradients"]["n"] == 12
    assert set(s["road"]["morf_auc"]) == both | {"grad_cam", "random_order"}  # completeness and ROAD: every method
    assert all(v["beats_per_s"] > 0 for v in s["throughput"].values())
    assert 0 <= s["permuted"]["train_accuracy"] <= 1 and s["permuted"]["steps"] == 3
    g = json.loads((wd / "stages" / "glocal.json").read_text())
    assert set(g["methods"]) == {"saliency-label-abs", "grad_cam-pred-relu", "integrated_gradients-label-abs"}
    assert list(g["subgroupings"]) == ["record"]  # synthetic records have no demographic headers
    assert all(abs(sum(r) - 1) < 1e-9 for r in g["methods"]["saliency-label-abs"]["lead_matrix"]["share"])
    assert (wd / "audit" / "a" / "glocal" / "saliency-label-abs" / "glocal_record.npz").exists()
    assert (wd / "audit" / "a" / "sanity" / "road.png").exists()
    c = json.loads((wd / "stages" / "clusters.json").read_text())["methods"]["saliency-label-abs"]
    assert c and all(r["k"] in (2, 3) and -1 <= r["silhouette"] <= 1 for r in c.values())
    t = json.loads((wd / "stages" / "tcav.json").read_text())
    assert "synthetic" in t["left_out"] and set(t["concept_beats"]) == {"premature"}
    assert all(0 <= r["score_mean"] <= 1 and 0 <= r["p_value"] <= 1 for r in t["rows"])
    html = (wd / "report" / "report.html").read_text()
    for needle in ("More sanity checks", "Independent layer randomisation", "ROAD", "Completeness:", "Glocal aggregation",
                   "Split-half stability", "class x lead matrix", "Throughput of each check", "Clusters of attributions",
                   "Concepts (TCAV)"):
        assert needle in html, needle


def test_audit_config_errors_are_clear():
    with pytest.raises(ConfigError, match="road_fractions"):
        AuditSpec(road_fractions=(0.5, 0.1))
    with pytest.raises(ConfigError, match="sanity_beats"):
        AuditSpec(sanity_beats=-1)
    with pytest.raises(ConfigError, match="AuditSpec"):
        _study(audit={"sanity_beats": 3})
    with pytest.raises(ConfigError, match="does not run"):
        _study(audit=AuditSpec(methods=("lrp",)))
