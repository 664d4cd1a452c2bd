"""Configs: every file loads; overrides are type-checked; JSON round trip; bad keys are named."""

from pathlib import Path

import pytest

from ecgjax import config as C
from ecgjax.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "experiments" / "configs").glob("*.py"))


def test_the_required_config_files_exist():
    names = {p.stem for p in CONFIGS}
    assert {"jones2020_cnn_holdout", "jones2020_cnn_lpo", "jones2020_lstm_holdout", "jones2020_lstm_lpo",
            "aami_ribeiro", "aami_jones_cnn", "smoke"} <= names


STUDIES = {"reproduce_jones2020", "corrected_study", "audit_study"}  # study configs (ecgjax.study), tested in tests/study
BENCHMARKS = {"aami_rr"}  # inter-patient benchmark configs (ecgjax.interpatient), tested in tests/test_interpatient.py


@pytest.mark.parametrize("path", [p for p in CONFIGS if p.stem not in STUDIES | BENCHMARKS], ids=lambda p: p.stem)
def test_every_config_file_loads_round_trips_and_documents_itself(path):
    cfg = C.load_config(str(path))
    assert isinstance(cfg, C.Config)
    assert C.from_json(C.to_json(cfg)) == cfg
    doc = path.read_text()
    assert "ecgjax train --config experiments/configs/" in doc and "Expected wall time" in doc and "Expected metric" in doc


def test_a_study_file_is_not_a_training_config():
    with pytest.raises(ConfigError, match="expected a Config, got StudyConfig"):
        C.load_config(str(ROOT / "experiments/configs/reproduce_jones2020.py"))


def test_faithful_hyperparameters():
    cnn = C.load_config(str(ROOT / "experiments/configs/jones2020_cnn_holdout.py"))
    assert (cnn.train.optimizer, cnn.train.lr, cnn.train.batch_size, cnn.train.epochs) == ("adam", 1e-3, 128, 30)
    assert (cnn.train.plateau_factor, cnn.train.plateau_patience, cnn.train.plateau_min_lr) == (0.1, 2, 1e-6)
    assert cnn.data.balance == "downsample_majority" and cnn.data.protocol == "jones2020_code"
    assert C.load_config(str(ROOT / "experiments/configs/jones2020_cnn_holdout.py:paper")).data.protocol == "jones2020"
    lpo = C.load_config(str(ROOT / "experiments/configs/jones2020_cnn_lpo.py"))
    assert (lpo.train.epochs, lpo.data.split) == (15, "lpo")
    lstm = C.load_config(str(ROOT / "experiments/configs/jones2020_lstm_lpo.py"))
    assert (lstm.train.optimizer, lstm.train.lr, lstm.train.loss, lstm.train.focal_gamma, lstm.train.focal_alpha) == ("keras2_nadam", 2e-3, "focal", 2.0, 1.0)
    assert (lstm.train.epochs, lstm.data.balance, lstm.data.split) == (20, "upsample", "lpo")


def test_corrected_lstm_keeps_the_papers_split_and_states_its_deviations():
    from ecgjax import models

    faithful = C.load_config(str(ROOT / "experiments/configs/jones2020_lstm_holdout.py"))
    cfg = C.load_config(str(ROOT / "experiments/configs/jones2020_lstm_holdout.py:corrected"))
    assert cfg.data.split == faithful.data.split == "holdout" and cfg.data.split_seed == faithful.data.split_seed
    assert cfg.data.protocol == faithful.data.protocol
    assert cfg.model.kwargs == {"lead_layout": "channels", "frame": 8, "readout": "max"}
    models.check_kwargs(cfg.model.name, cfg.model.kwargs)
    doc = (ROOT / "experiments/configs/jones2020_lstm_holdout.py").read_text()
    for k in (*cfg.model.kwargs, "data.balance", "clip", "early stopping"):  # every deviation is named in the docstring
        assert k in doc


def test_overrides_are_typed():
    cfg = C.Config()
    new = C.apply_overrides(cfg, ["train.lr=3e-4", "train.epochs=2", "data.protocol=aami", "model.kwargs.hidden=8",
                                  "data.max_beats=None", "train.early_stopping_patience=3", "train.plateau=False"])
    assert (new.train.lr, new.train.epochs, new.data.protocol, new.model.kwargs) == (3e-4, 2, "aami", {"hidden": 8})
    assert new.train.early_stopping_patience == 3 and new.train.plateau is False
    assert C.apply_overrides(cfg, ["train.lr=1"]).train.lr == 1.0  # int widens to float
    assert cfg.train.lr == 1e-3  # frozen: the original is unchanged


@pytest.mark.parametrize("item,needle", [
    ("train.epochs=2.5", "train.epochs"),
    ("train.epochs=True", "train.epochs"),
    ("train.lr=fast", "train.lr"),
    ("train.plateau=1", "train.plateau"),
    ("data.max_beats='10'", "data.max_beats"),
    ("train.optimizer=sgd", "train.optimizer"),
    ("train.batch_size=0", "train.batch_size"),
])
def test_wrong_type_or_value_names_the_key(item, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        C.apply_overrides(C.Config(), [item])


def test_unknown_key_suggests_close_names():
    with pytest.raises(ConfigError, match=r"train\.learning_rat.*did you mean") as e:
        C.apply_overrides(C.Config(), ["train.learning_rat=1e-3"])
    with pytest.raises(ConfigError, match=r"train\.batchsize.*batch_size"):
        C.apply_overrides(C.Config(), ["train.batchsize=3"])
    with pytest.raises(ConfigError, match="tran"):
        C.apply_overrides(C.Config(), ["tran.lr=3"])
    with pytest.raises(ConfigError, match="key=value"):
        C.apply_overrides(C.Config(), ["train.lr"])
    assert "learning_rat" in str(e.value)


def test_from_json_rejects_unknown_and_mistyped(tmp_path):
    text = C.to_json(C.Config())
    with pytest.raises(ConfigError, match=r"train\.lrr"):
        C.from_json(text.replace('"lr":', '"lrr":'))
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        C.from_json(text.replace('"epochs": 30', '"epochs": "30"'))


def test_load_config_file_with_arg_and_errors(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("from ecgjax.config import Config, TrainConfig\n"
                 "def get_config(arg=None):\n    return Config(name=arg or 'none', train=TrainConfig(epochs=3))\n")
    assert C.load_config(str(f)).name == "none"
    assert C.load_config(f"{f}:abc", ["train.epochs=4"]).name == "abc"
    assert C.load_config(f"{f}:abc", ["train.epochs=4"]).train.epochs == 4
    bad = tmp_path / "bad.py"
    bad.write_text("from ecgjax.config import Config, TrainConfig\n"
                   "def get_config(arg=None):\n    return Config(train=TrainConfig(epochs='3'))\n")
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        C.load_config(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        C.load_config(str(tmp_path / "missing.py"))


def test_diff_lists_differing_keys():
    a = C.Config()
    b = C.apply_overrides(a, ["train.lr=0.01", "model.kwargs.hidden=8"])
    d = {k: (x, y) for k, x, y in C.diff(a, b)}
    assert d["train.lr"] == (1e-3, 0.01) and d["model.kwargs.hidden"] == ("<absent>", 8)
    assert C.diff(a, a) == []


def _readme_set_examples():
    """``(config spec, override)`` for every ``--set`` in README.md's commands."""
    import shlex

    out = []
    for line in (ROOT / "README.md").read_text().splitlines():
        if "--set" not in line or "--config" not in line:
            continue
        words = shlex.split(line.strip().strip("`"), comments=True)
        spec = words[words.index("--config") + 1]
        out += [(spec, words[i + 1]) for i, w in enumerate(words) if w == "--set"]
    return out


def test_readme_has_set_examples():
    assert len(_readme_set_examples()) >= 2


@pytest.mark.parametrize("spec,override", _readme_set_examples(), ids=lambda v: str(v))
def test_every_readme_set_example_changes_the_config(spec, override):
    base = C.load_config(str(ROOT / spec))
    new = C.load_config(str(ROOT / spec), [override])
    key = override.split("=", 1)[0]
    assert [k for k, _, _ in C.diff(base, new)] == [key], f"README's --set {override} does not change {spec}"


def test_traverse_classifier_variants():
    """``natural`` keeps DS1's class frequencies; ``rr_net_waveform`` is rr_net reading the waveform only; an unknown option is named."""
    from ecgjax import models

    path = str(ROOT / "experiments/configs/traverse_aami.py")
    base = C.load_config(f"{path}:rr_net,full")
    nat = C.load_config(f"{path}:rr_net_waveform,full,natural")
    assert (base.data.balance, nat.data.balance, nat.data.max_beats) == ("downsample_majority", "none", None)
    assert nat.model.kwargs["inputs"] == "waveform" and nat.data.protocol == base.data.protocol == "aami_rr"
    models.check_kwargs(nat.model.name, nat.model.kwargs)
    with pytest.raises(Exception, match="natrual"):
        C.load_config(f"{path}:rr_net,natrual")
    # the jones2020-window classifier: the paper's window and classes, the same DS1 -> DS2 split; no RR model there
    win = C.load_config(f"{path}:jones2020_lstm_corrected,full,natural,jones2020win")
    assert (win.data.protocol, win.data.split, win.data.split_seed) == ("jones2020", "ds1ds2", base.data.split_seed)
    assert win.name != C.load_config(f"{path}:jones2020_lstm_corrected,full,natural").name
    with pytest.raises(Exception, match="RR features"):
        C.load_config(f"{path}:rr_net,jones2020win")
