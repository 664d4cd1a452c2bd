"""The Attributions result type: save/load round trip, class selection, streaming by class, atomic files, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from ecgjax.attribution import Attributions
from ecgjax.errors import ConfigError, DataError


def _attrs(n=40, T=20, L=2, C=3):
    rng = np.random.default_rng(1)
    label = rng.integers(0, C, n).astype(np.int32)
    return Attributions(maps=rng.normal(size=(n, T, L)).astype(np.float32), target=label.copy(),
                        pred=rng.integers(0, C, n).astype(np.int32), label=label, index=np.arange(100, 100 + n, dtype=np.int64),
                        method="saliency", settings={"hparams": {}, "target": "label"}, model={"name": "m", "run": "r"},
                        classes=("N", "V", "A"), fs=360.0)


def test_save_load_round_trip_and_streaming_by_class(tmp_path):
    a = _attrs()
    d = a.save(tmp_path / "sal")
    assert sorted(p.name for p in d.iterdir()) == ["class_0.npz", "class_1.npz", "class_2.npz", "meta.json"]
    b = Attributions.load(d)
    order = np.argsort(b.index)  # stored grouped by class
    np.testing.assert_array_equal(b.index[order], a.index)
    np.testing.assert_array_equal(b.maps[order], a.maps)
    for k in ("target", "pred", "label"):
        np.testing.assert_array_equal(getattr(b, k)[order], getattr(a, k))
    assert (b.method, b.model, b.classes, b.fs, b.settings) == (a.method, a.model, a.classes, a.fs, a.settings)
    parts = list(Attributions.load_classes(d))
    assert [np.unique(p.label).tolist() for p in parts] == [[0], [1], [2]]
    assert sum(len(p) for p in parts) == len(a)


def test_selection_by_class_name_or_index_and_by_prediction():
    a = _attrs()
    v = a.of_class("V")
    assert len(v) == int(np.sum(a.label == 1)) and np.all(v.label == 1)
    np.testing.assert_array_equal(v.maps, a.maps[a.label == 1])
    p = a.of_class(2, by="pred")
    np.testing.assert_array_equal(p.index, a.index[a.pred == 2])
    with pytest.raises(ValueError, match="by must be"):
        a.of_class(0, by="colour")


def test_missing_or_damaged_meta_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no meta.json.*ecgjax explain"):
        Attributions.load(tmp_path)
    d = _attrs().save(tmp_path / "x")
    (d / "class_1.npz").write_bytes((d / "class_1.npz").read_bytes()[:100])  # truncated
    with pytest.raises(DataError, match="class_1.npz is damaged"):
        Attributions.load(d)
    (d / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="meta.json is damaged"):
        Attributions.load(d)
