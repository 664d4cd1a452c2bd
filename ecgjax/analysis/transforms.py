"""The one place a signed attribution map becomes what the analysis summarizes (methods return signed maps)."""

from __future__ import annotations

import numpy as np

TRANSFORMS = ("signed", "abs", "relu", "paper")
# What a transformed map's values are, with their unit, for axis and colour-bar labels.
VALUE_LABELS = {"signed": "attribution (a.u.)", "abs": "|attribution| (a.u.)", "relu": "max(attribution, 0) (a.u.)",
                "paper": "|attribution|, min-max per beat (0-1)"}


def transform_maps(maps: np.ndarray, how: str) -> np.ndarray:
    """``signed`` (as is), ``abs`` (|.|), ``relu`` (max(., 0)), ``paper`` (|.| then
    min-max per beat over T*L values, the keras-vis map of Jones et al. 2020).

    maps: f32[N, T, L] -> f32[N, T, L].
    """
    if how == "signed":
        return maps
    if how == "abs":
        return np.abs(maps)
    if how == "relu":
        return np.maximum(maps, 0)
    if how == "paper":
        from ecgjax.attribution.layer import jones2020_paper_map

        return jones2020_paper_map(maps)
    raise ValueError(f"transform must be one of {TRANSFORMS}, got {how!r}")
