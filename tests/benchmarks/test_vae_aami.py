"""benchmarks/vae_aami.py reconstructs the part --eval-part names: DS2 by default, the split's DS1 validation records
with ``val`` (no DS2 beat reconstructed), on synthetic beats carrying MIT-BIH record names."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ecgjax.data.protocols import DS1, DS2  # noqa: E402

PER_RECORD, T = 3, 32


def _beats():
    records = np.repeat(np.array(sorted(DS1) + sorted(DS2)), PER_RECORD)
    rng = np.random.default_rng(0)
    n = len(records)
    return types.SimpleNamespace(
        x=rng.normal(size=(n, T, 2)).astype(np.float32), y=np.arange(n) % 2, classes=["N", "V"], record=records,
        lo=np.zeros(n, np.int32), hi=np.full(n, T, np.int32), fs=360.0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run per --eval-part (the default, val) on the synthetic beats: its row, and the beats it trained the VAE on
    and reconstructed."""
    import ecgjax.data
    import vae_aami
    from ecgjax.generative import vae as V

    beats, seen, trained, out = _beats(), {}, {}, tmp_path_factory.mktemp("vae") / "rows.jsonl"
    key = {b.tobytes(): i for i, b in enumerate(beats.x)}
    mp = pytest.MonkeyPatch()
    mp.setattr(ecgjax.data, "load_beats", lambda protocol: beats)
    # the VAE itself is stubbed (its training and reconstruction have their own tests): these record which beats
    # the script trains on and which it reconstructs
    for part in ("default", "val"):
        def train(x, st, part=part, **kw):
            trained[part] = [key[b.tobytes()] for b in np.asarray(x, np.float32)]
            return None, [{"epoch": 0, "loss": 0.0, "recon": 0.0, "kl": 0.0}]

        def reconstruct(model, x, part=part, **kw):
            seen[part] = [key[b.tobytes()] for b in np.asarray(x, np.float32)]
            return {"x_hat": 0.5 * x, "mu": np.asarray(x)[:, :2, 0]}
        mp.setattr(V, "train_vae", train)
        mp.setattr(V, "reconstruct", reconstruct)
        extra = [] if part == "default" else ["--eval-part", "val"]
        vae_aami.main(["--latent", "2", "--width", "2", "--epochs", "1", "--batch", "32", "--max-train", "0",
                       "--max-test", "0", "--split-seed", "4", "--out", str(out), *extra])
    mp.undo()
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    return beats, seen, trained, dict(zip(("default", "val"), rows))


def test_default_reconstructs_every_ds2_beat(runs):
    beats, seen, trained, rows = runs
    assert set(beats.record[seen["default"]]) == set(DS2)
    assert len(seen["default"]) == PER_RECORD * len(DS2) == rows["default"]["n_test"]
    assert rows["default"]["eval_part"] == "test"


def test_val_reconstructs_the_four_ds1_validation_records_only(runs):
    beats, seen, trained, rows = runs
    val_records = set(beats.record[seen["val"]])
    assert len(val_records) == 4 and val_records <= set(DS1) and not val_records & set(DS2)
    assert len(seen["val"]) == 4 * PER_RECORD == rows["val"]["n_test"]
    assert rows["val"]["eval_part"] == "val" and rows["val"]["settings"]["eval_part"] == "val"
    assert sum(d["n"] for d in rows["val"]["per_class"].values()) == rows["val"]["n_test"]
    # the VAE trains on the other 18 DS1 records, the same beats with either --eval-part
    assert set(beats.record[trained["val"]]) == set(DS1) - val_records and trained["val"] == trained["default"]
    assert rows["val"]["n_train"] == PER_RECORD * (len(DS1) - 4)


def test_bad_eval_part_is_one_line_exit_2(capsys):
    import vae_aami

    with pytest.raises(SystemExit) as e:
        vae_aami.main(["--eval-part", "ds2", "--out", "x.jsonl"])
    assert e.value.code == 2
    assert "invalid choice: 'ds2'" in capsys.readouterr().err
