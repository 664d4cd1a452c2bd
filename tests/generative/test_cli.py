"""``ecgjax traverse`` end to end on a tiny trained run: the VAE is trained on the run's training beats and saved,
the summary, the traversal arrays and the figures are written."""

from __future__ import annotations

import json

import pytest

from ecgjax.cli import main
from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig
from ecgjax.io import load_npz


@pytest.mark.slow  # a minute on the loaded 2-core CPU: trains a run and a VAE, compiles five programs
def test_traverse_command(tmp_path, capsys):
    from ecgjax.train import train_and_evaluate

    cfg = Config(
        name="tiny",
        data=DataConfig(protocol="synthetic", protocol_overrides={"n_records": 6, "beats_per_record": 20, "t": 64},
                        split="kfold", split_kwargs={"fold": 0, "k": 3, "n_val_records": 1}),
        model=ModelConfig(name="ribeiro_cnn", kwargs={"filters": (4, 4), "lead_layout": "channels"}),
        train=TrainConfig(batch_size=16, eval_batch_size=32, epochs=1, checkpoint_every=2, log_every=1),
        eval=EvalConfig(bootstrap_samples=5),
    )
    wd = tmp_path / "run"
    train_and_evaluate(cfg, wd)
    args = ["traverse", "--workdir", str(wd), "--target", "c1", "--source", "c0", "--max-beats", "4", "--fidelity-beats", "8",
            "--vae-epochs", "1", "--latent", "4", "--sigma", "0.2", "--steps", "5", "--points", "3", "--compare", str(wd)]
    assert main(args) == 0
    out = wd / "traversals" / "c0-to-c1"
    s = json.loads((out / "summary.json").read_text())
    assert s["vae"]["latent"] == 4 and s["vae"]["sigma"] == 0.2 and s["target"] == "c1" and s["trained"]["n"] == s["randomised"]["n"] <= 4
    assert s["fidelity"]["n"] <= 8 and 0 <= s["fidelity"]["acc_reconstructed"] <= 1
    assert "versions" in s and "device" in s and s["command"].startswith("ecgjax traverse")
    z = load_npz(out / "traversal.npz")
    assert z["beats"].shape[1:] == (3, 64, 2) and z["prob"].shape[1] == 3
    assert {p.name for p in (out / "figures").glob("*.png")} >= {"morph_0.png", "change_path.png", "change_beats.png",
                                                                 "change_path_randomised.png"}
    assert "| median Spearman rho" in (out / "summary.md").read_text()
    diag = s["diagnosis"]  # why the accuracy moves on reconstructions: every fidelity beat in one class, flipped or kept
    assert sum(e["n"] for e in diag["per_class"].values()) == diag["flipped"]["n"] + diag["kept"]["n"] == s["fidelity"]["n"]
    assert "Recall per class, originals -> reconstructions" in (out / "summary.md").read_text()
    # the seed check: compared with itself (this one-epoch run's traversals may not move: cosines NaN), a run's
    # traversals are the same; the four pairs are reported
    d = s["directions"]
    assert set(d) == {"trained_vs_randomised", "trained_vs_randomised_2", "randomised_vs_randomised_2", "trained_vs_trained_2"}
    assert json.dumps(s["compared"], sort_keys=True) == json.dumps(s["trained"], sort_keys=True)
    assert "| trained vs trained 2 |" in (out / "summary.md").read_text()
    assert (wd / "vae" / "vae.json").is_file()  # trained on the run's training beats, saved for the next query
    assert "beats towards c1" in capsys.readouterr().out
