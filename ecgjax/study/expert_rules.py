"""Expert-rule checks on a classifier: does each class's relevance sit in the wave that defines it?

The rules (cardiology textbooks; Wagner et al. 2024's "comparison with expert
rules"): a ventricular beat (V, E), a fusion beat (F) and a bundle branch block
beat (L, R) are defined by their QRS; an atrial or supraventricular premature
beat (A, S) by its P wave and its prematurity, i.e. the RR features where the
model reads them (``rr_net``). N, j, P (paced) and Q have no rule here.

Per class with a rule and per method, over the class's explained beats whose
delineation passes the quality flag (maps on the waveform leads, |.|):

* ``share``: the share of |attribution| (real samples, all leads) in the
  defining wave, with a record-bootstrap CI; ``uniform``: the wave's share of
  the samples (what a map spread evenly gives); ``amplitude``: the share of an
  |x|-proportional map.
* ``enrichment``: share / uniform for the defining wave, against the mean of
  the same ratio over the other four waves; ``p``: a two-sided Wilcoxon
  signed-rank test on the per-record means of that difference (records are
  the units; NaN with fewer than 5 records).
* ``rr_share`` (A/S on a model with RR features): the share of all |attribution|
  on the RR-feature channels.

Per class and record, the usable beats and the median width of the defining wave
(``by_record``): where the delineation measures a wave too narrow in one record
(e.g. a right bundle branch block's terminal S outside the QRS), its share there
is of a narrower wave.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ecgjax.analysis.shares import record_bootstrap, record_wilcoxon
from ecgjax.analysis.waves import wave_masks
from ecgjax.data.delineation import WAVE_SPANS, WAVES
from ecgjax.io import atomic_write_json

log = logging.getLogger(__name__)

RULES = {"V": "QRS", "E": "QRS", "F": "QRS", "L": "QRS", "R": "QRS", "A": "P", "S": "P"}


def wave_shares(maps: np.ndarray, x: np.ndarray, bounds: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_leads: int) -> dict:
    """Per beat and wave: the map's share, the samples' share and |x|'s share (waveform leads, all together).

    Args:
      maps: f[N, T, C] maps (C >= n_leads; channels past ``n_leads`` are RR features);
      x: f[N, T, C] the beats; bounds: f[N, 6] window-relative wave bounds; lo, hi: i[N]; n_leads: L.

    Returns:
      ``{"share", "uniform", "amplitude"}``: f64[N, W] each (NaN where a beat's map is zero), and
      ``"rr_share"``: f64[N] the share of all |maps| on the channels past ``n_leads`` (0 without them).
    """
    T = maps.shape[1]
    m = wave_masks(bounds, T, lo, hi).astype(np.float64)  # [N, W, T]
    t = np.arange(T)[None]
    valid = ((t >= np.asarray(lo)[:, None]) & (t < np.asarray(hi)[:, None])).astype(np.float64)  # [N, T]

    def shares(v):  # v: f[N, T] summed over leads
        total = (v * valid).sum(1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, np.einsum("nwt,nt->nw", m, v) / total, np.nan)

    a = np.abs(np.asarray(maps, np.float64))
    wave = a[..., :n_leads].sum(2)
    rr_total = a[..., n_leads:].sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        rr_share = np.where(rr_total > 0, rr_total / (rr_total + (wave * valid).sum(1)), 0.0)
    return {"share": shares(wave), "uniform": shares(np.ones_like(wave) * n_leads),
            "amplitude": shares(np.abs(np.asarray(x, np.float64))[..., :n_leads].sum(2)), "rr_share": rr_share}


def wave_widths(bounds: np.ndarray, record: np.ndarray, wave: str, fs: float) -> dict:
    """Per record: ``[beats, median width of wave in ms]`` (NaN where no beat has the wave) of beats with bounds
    f[N, 6] and records [N]."""
    a, b = WAVE_SPANS[WAVES.index(wave)]
    ms = (np.asarray(bounds[:, b], np.float64) - bounds[:, a]) * 1000.0 / fs

    def median(v):
        v = v[np.isfinite(v)]
        return float(np.median(v)) if len(v) else float("nan")

    return {str(r): [int(np.sum(record == r)), median(ms[record == r])] for r in np.unique(record)}


def rule_stats(s: dict, record: np.ndarray, wave: str, *, n_boot: int = 1000, seed: int = 0) -> dict:
    """The statistics of one class and method (module docstring) from :func:`wave_shares` of its beats.

    Args:
      s: ``wave_shares`` output restricted to the class's usable beats; record: [N]; wave: the defining wave.
    """
    w = WAVES.index(wave)
    with np.errstate(invalid="ignore", divide="ignore"):
        enrich = s["share"] / s["uniform"]
    others = np.nanmean(np.delete(enrich, w, axis=1), axis=1) if enrich.shape[0] else np.zeros(0)
    diff = enrich[:, w] - others
    share, lo, hi = record_bootstrap(s["share"][:, w], record, n_boot=n_boot, seed=seed)
    e, elo, ehi = record_bootstrap(enrich[:, w], record, n_boot=n_boot, seed=seed)
    p, n_rec = record_wilcoxon(diff, record)
    rr = record_bootstrap(s["rr_share"], record, n_boot=n_boot, seed=seed)
    return {"wave": wave, "n": int(np.sum(~np.isnan(s["share"][:, w]))), "n_records": int(len(np.unique(record))),
            "share": share, "share_ci": [lo, hi], "uniform": float(np.nanmean(s["uniform"][:, w])) if len(record) else float("nan"),
            "amplitude": float(np.nanmean(s["amplitude"][:, w])) if len(record) else float("nan"),
            "enrichment": e, "enrichment_ci": [elo, ehi], "enrichment_others": float(np.nanmean(others)) if len(record) else float("nan"),
            "p": p, "p_records": n_rec, "rr_share": rr[0], "rr_share_ci": [rr[1], rr[2]]}


def expert_rule_check(run, attributions: dict, out_dir: Path, *, data_dir=None, cache=None, n_boot: int = 1000,
                      seed: int = 0) -> dict:
    """The rule statistics of every stored method on an explained run.

    Args:
      run: the loaded run (``ecgjax.train.Run``: beats, model config).
      attributions: the explain stage's ``{"methods": {key: {"attr_dir", ...}}}`` for this run.
      out_dir: ``expert_rules.json`` is written there.

    Returns:
      ``{"skipped": why}`` for beats without records, else ``{"n_leads", "rr_features", "classes": {class: wave}, "methods": {key: {class: rule_stats}},
      "quality": {class: [usable, explained]}, "by_record": {class: {record: [usable beats, median width of the wave in ms]}}}``.
    """
    from ecgjax.attribution.attributions import Attributions
    from ecgjax.data.delineation import load_waves

    beats = run.beats
    n_leads = len(next(iter(beats.lead_names.values()))) if beats.lead_names else beats.x.shape[-1]
    rules = {c: RULES[c] for c in beats.classes if c in RULES}
    if "database" not in beats.protocol:
        out = {"skipped": f"the beats (protocol {beats.protocol.get('name')!r}) come from no records to delineate"}
        atomic_write_json(Path(out_dir) / "expert_rules.json", out)
        return out
    out = {"n_leads": n_leads, "rr_features": list(beats.rr_names), "classes": rules, "methods": {}, "quality": {}, "by_record": {}}
    waves_of = None
    for key, info in attributions.get("methods", {}).items():
        parts = [a for a in Attributions.load_classes(info["attr_dir"]) if len(a) and beats.classes[int(a.label[0])] in rules]
        if not parts:
            continue
        idx = np.concatenate([a.index for a in parts])
        if waves_of is None or not np.array_equal(waves_of[0], idx):
            waves_of = (idx, load_waves(beats.subset(idx), data_dir, cache=cache))
        waves = waves_of[1]
        out["delineation"] = waves.method
        maps = np.concatenate([np.asarray(a.maps) for a in parts])
        if maps.ndim != 3:
            continue  # maps per class (target "all") are not checked
        label = np.concatenate([a.label for a in parts])
        s = wave_shares(maps, beats.x[idx], waves.bounds, beats.lo[idx], beats.hi[idx], n_leads)
        res = {}
        for c, wave in rules.items():
            rows = np.flatnonzero((label == beats.classes.index(c)) & waves.quality)
            out["quality"][c] = [int(len(rows)), int(np.sum(label == beats.classes.index(c)))]
            out["by_record"][c] = wave_widths(waves.bounds[rows], beats.record[idx][rows], wave, beats.fs)
            if len(rows):
                res[c] = rule_stats({k: v[rows] for k, v in s.items()}, beats.record[idx][rows], wave, n_boot=n_boot, seed=seed)
        out["methods"][key] = res
        log.info("expert rules: %s on %d beats", key, len(idx))
    atomic_write_json(Path(out_dir) / "expert_rules.json", out)
    return out
