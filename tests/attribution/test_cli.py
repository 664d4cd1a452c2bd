"""`ecgjax explain` / `ecgjax profile` on a trained (synthetic) run: targets by name, outputs where the issue says."""

import json

import numpy as np
import pytest

from ecgjax.attribution.cli import parse_target
from ecgjax.cli import main
from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from ecgjax.errors import ConfigError


def test_parse_target():
    classes = ("N", "S", "V")
    assert parse_target("label", classes) == "label"
    assert parse_target("pred", classes) == "pred" and parse_target("all", classes) == "all"
    assert parse_target("V", classes) == 2 and parse_target("1", classes) == 1
    for bad in ("v", "7", "-1", "x"):
        with pytest.raises(ConfigError, match="--target"):
            parse_target(bad, classes)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from ecgjax.train import train_and_evaluate

    # the shapes of test_bad_inputs' trained run (t=64): their compiled programs are shared (conftest's compile cache)
    cfg = Config(
        name="cli",
        data=DataConfig(protocol="synthetic", protocol_overrides={"n_records": 6, "beats_per_record": 20, "t": 64},
                        split="kfold", split_kwargs={"fold": 0, "k": 3, "n_val_records": 1}),
        model=ModelConfig(name="ribeiro_cnn", kwargs={"filters": (4, 4), "lead_layout": "channels"}),
        train=TrainConfig(batch_size=16, eval_batch_size=32, epochs=1, checkpoint_every=100),
        eval=EvalConfig(bootstrap_samples=10),
    )
    wd = tmp_path_factory.mktemp("run")
    train_and_evaluate(cfg, wd)
    return wd


def test_explain_then_profile(trained, capsys):
    wd = trained
    assert main(["explain", "--workdir", str(wd), "--method", "saliency", "--target", "c1"]) == 0
    d = wd / "attributions" / "saliency-c1"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["target"] == "1" and meta["classes"] == ["c0", "c1", "c2"]
    files = sorted(d.glob("class_*.npz"))
    assert files
    with np.load(files[0]) as z:
        assert z["maps"].shape[1:] == (64, 2)
    assert main(["profile", "--workdir", str(wd), "--method", "saliency", "--target", "c1", "--n-boot", "10"]) == 0
    out = wd / "profiles" / "saliency-c1"
    assert (out / "profiles.npz").exists() and (out / "comparisons.json").exists() and (out / "figures" / "class_heatmap.png").exists()
    assert "group comparisons and figures" in capsys.readouterr().out


def test_old_target_word_true_still_works_with_a_deprecation_line(trained, caplog):
    from ecgjax.attribution.cli import parse_target

    caplog.set_level("WARNING")
    assert parse_target("true", ("c0", "c1")) == "label"
    assert "--target true is deprecated" in caplog.text
    wd = trained
    assert main(["explain", "--workdir", str(wd), "--method", "saliency", "--target", "true", "--name", "saliency-true"]) == 0
    # a folder made under the old name is found by `profile` with the new word (and the default)
    assert main(["profile", "--workdir", str(wd), "--method", "saliency", "--n-boot", "10"]) == 0
    assert (wd / "profiles" / "saliency-true" / "comparisons.json").exists()


def test_profile_before_explain_is_a_clear_error(trained, capsys):
    assert main(["profile", "--workdir", str(trained), "--method", "occlusion"]) == 2
    assert "run `ecgjax explain" in capsys.readouterr().err


def test_explain_never_overwrites_other_settings_silently(trained, capsys):
    wd = trained
    args = ["explain", "--workdir", str(wd), "--method", "saliency", "--name", "mine"]
    assert main(args) == 0
    stamp = (wd / "attributions" / "mine" / "meta.json").read_text()
    assert main(args) == 0  # the same settings: recomputed in place
    assert main([*args, "--target", "pred"]) == 2
    err = capsys.readouterr().err
    assert "already holds other attributions" in err and "target: 'label' there, 'pred' now" in err
    assert json.loads((wd / "attributions" / "mine" / "meta.json").read_text())["target"] == json.loads(stamp)["target"] == "label"
    assert main([*args, "--method", "smoothgrad", "--hp", "n=2"]) == 2
    assert "method: 'saliency' there, 'smoothgrad' now" in capsys.readouterr().err
    assert main([*args, "--target", "pred", "--force"]) == 0
    assert json.loads((wd / "attributions" / "mine" / "meta.json").read_text())["target"] == "pred"
    # default folders keep targets apart
    assert main(["explain", "--workdir", str(wd), "--method", "saliency", "--target", "pred"]) == 0
    assert (wd / "attributions" / "saliency-pred" / "meta.json").exists()


def test_explain_refuses_a_method_the_model_cannot_take(trained, capsys):
    """One line naming the method, the model and why; exit 2; nothing written."""
    assert main(["explain", "--workdir", str(trained), "--method", "jones2020_layer_saliency"]) == 2
    err = capsys.readouterr().err.strip()
    assert "jones2020_layer_saliency cannot explain ribeiro_cnn: it has no layer 'final_conv'" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (trained / "attributions" / "jones2020_layer_saliency-true").exists()
