"""Protocol presets and the seconds-to-samples rule."""

from __future__ import annotations

import pytest

from ecgjax import timebase
from ecgjax.data import protocols
from ecgjax.errors import ConfigError


def test_presets():
    j, c, a = (protocols.get(n) for n in ("jones2020", "jones2020_code", "aami"))
    assert j.classes == c.classes == ("A", "E", "j", "L", "N", "P", "R", "V")
    assert len(j.records) == len(c.records) == 48
    assert (j.boundary, c.boundary) == ("beats", "all")
    assert dict(c.symbol_map)["a"] == "A" and "a" not in dict(j.symbol_map)
    assert set(a.records) == set(protocols.DS1) | set(protocols.DS2)
    assert a.window == "fixed" and a.normalisation == "zscore_lead" and a.default_split == "ds1ds2"


def test_presets_are_immutable_and_overrides_copy():
    j = protocols.get("jones2020")
    k = protocols.get("jones2020", max_len=400)
    assert k.max_len == 400 and j.max_len == 430 and protocols.get("jones2020").max_len == 430
    with pytest.raises(Exception):
        j.max_len = 1
    assert hash(j) == hash(protocols.get("jones2020"))


@pytest.mark.parametrize(
    "change,match",
    [
        ({"records": ()}, "records"),
        ({"records": "100"}, "records"),
        ({"max_len": 0}, "max_len"),
        ({"before_s": -0.1}, "before_s"),
        ({"fs": 0}, "fs"),
        ({"window": "centred"}, "window"),
        ({"boundary": "some"}, "boundary"),
        ({"lead_order": "mlii_last"}, "lead_order"),
        ({"symbol_map": (("N", "Normal"),)}, "Normal"),
    ],
)
def test_invalid_fields(change, match):
    with pytest.raises(ConfigError, match=match):
        protocols.get("jones2020", **change)


def test_to_samples():
    assert timebase.to_samples(0.1, 360) == 36
    assert timebase.to_samples(0.35, 360) == 126  # 0.35 * 360 = 125.99999999999999 in floats
    assert timebase.to_samples(0.29, 360) == 104  # 104.4: truncated
    assert timebase.to_samples(0.25, 360) == 90
    assert timebase.to_samples(0.45, 360) == 162
    assert timebase.to_samples(1 / 360 * 0.5, 360) == 0  # truncates, as int() did in the paper
    assert timebase.to_seconds(36, 360) == pytest.approx(0.1)
    with pytest.raises(ValueError):
        timebase.to_samples(-1, 360)
    with pytest.raises(ValueError):
        timebase.to_samples(1, 0)
