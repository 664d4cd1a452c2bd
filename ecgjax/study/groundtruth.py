"""The ground-truth check of Wagner et al.: models regress a quantity whose defining segment is known.

Three targets, measured per beat from the delineation (``ecgjax.data.delineation``):

* ``rr``: the RR interval to the previous beat (s). The window reaches far enough
  back to hold the previous R (``before_s``); beats whose previous R lies closer
  than 60 ms to the window's start are left out. Defining segment: +-50 ms around
  both R peaks, every lead.
* ``qrs_width``: QRS_off - QRS_on (s). Defining segment: the QRS, every lead.
* ``r_amplitude``: the largest value of lead 0 (the model's input, normalised)
  inside the QRS. Defining segment: +-25 ms around that sample, lead 0.

Only beats whose delineation passes ``Waves.quality`` are used. The QRS width
is the delineator's (``load_waves``' default method; the summary's ``spec``
names it), and its errors are the target's noise. On MIT-BIH's lead MLII they
are mostly errors of whole records, not of single beats: neurokit2's wavelet
search (the default before the envelope method) puts the QRS onset into the P
wave on every beat of some records (the N beats of records 121, 123, 202 and 210
measure 153-178 ms, ``benchmarks/results/cpu_delineation_methods.jsonl``), which a model cannot
learn from the beat (it fits its training beats, not other patients': docs/results.md
section 5e gives both R²). Three filters leave such widths out of ``qrs_width``: beats annotated with a
normal-conduction symbol (``normal_qrs_symbols``, N by default) whose width
exceeds ``normal_qrs_max_s`` (120 ms: a wider QRS is by definition not normal
conduction, which the annotators would have marked L, R or V; the delineation
contradicts the annotation); beats whose width lies more than
``width_outlier_mad`` robust SDs (1.4826 MAD, at least one sample) from the
median width of their record and symbol (:func:`width_outliers`); and,
optionally, the beats of records where fewer than ``min_record_quality`` of the
beats pass the quality flag (:func:`reliable_records`). The summary counts the
beats each target could use (``usable``) and, for ``qrs_width``, those before the
filters (``usable_unfiltered``). A small registered model is trained per target on the beats of the training records
(``ecgjax.train.regression``) and every registered method explains output 0 on
the beats of the held-out records. Per method and target: the mean share of
|attribution| in the defining segment, with a record-bootstrap CI, beside the
share a random map gets (the segment's fraction of the samples) and the share of
an |x|-proportional map (amplitude bias: a method near that line follows the
signal's energy, not the model). Methods are ranked by their mean share.

References: Wagner, Mehari, Haverkamp & Strodthoff 2024 (Comput. Biol. Med. 176), section "ground truth".
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np

from ecgjax import timebase
from ecgjax.analysis.shares import mask_fraction, mask_share, record_bootstrap
from ecgjax.analysis.waves import wave_masks
from ecgjax.data.protocols import DS1, DS2
from ecgjax.io import atomic_write_json

log = logging.getLogger(__name__)

TARGETS = ("rr", "qrs_width", "r_amplitude")
TARGET_UNITS = {"rr": "s", "qrs_width": "s", "r_amplitude": "normalised units"}
_RR_HALF_S = 0.05
_R_HALF_S = 0.025
_RR_MARGIN_S = 0.06


@dataclasses.dataclass(frozen=True)
class GroundTruthSpec:
    """What the ground-truth check trains and explains.

    Attributes:
      protocol: the beat protocol (a preset with ``fixed`` windows), widened to ``before_s``/``after_s``.
      before_s, after_s: the window around R (long enough before R to hold the previous beat).
      train_records, test_records: disjoint record lists (patient-wise).
      max_train, max_test: beats drawn (seeded) from each part, after the quality filter.
      model, model_kwargs: a registered model, built with one output.
      epochs, batch_size, lr: its training.
      methods: registered method names with default hyperparameters (empty: every registered method).
      n_boot: record-bootstrap replicates for the CIs.
      seed: subsets, training, attribution keys.
      min_record_quality: ``qrs_width`` uses only records where at least this share of the beats pass the
        quality flag (0: every record).
      normal_qrs_symbols, normal_qrs_max_s: ``qrs_width`` leaves out beats with these annotation symbols
        whose delineated width exceeds ``normal_qrs_max_s`` (0: no such filter).
      width_outlier_mad: ``qrs_width`` leaves out beats this many robust SDs from their record x symbol median
        width (0: none left out).
    """

    protocol: str = "aami"
    before_s: float = 1.2
    after_s: float = 0.5
    train_records: tuple[str, ...] = DS1
    test_records: tuple[str, ...] = DS2
    max_train: int = 6000
    max_test: int = 500
    model: str = "ribeiro_cnn"
    model_kwargs: dict = dataclasses.field(default_factory=lambda: {"filters": (16, 16, 32, 32), "lead_layout": "channels",
                                                                     "dropout": 0.0})
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1e-3
    methods: tuple[str, ...] = ()
    n_boot: int = 1000
    seed: int = 0
    min_record_quality: float = 0.0
    width_outlier_mad: float = 4.0
    normal_qrs_symbols: tuple[str, ...] = ("N",)
    normal_qrs_max_s: float = 0.12

    def __post_init__(self):
        from ecgjax import attribution, models
        from ecgjax.errors import ConfigError

        if set(self.train_records) & set(self.test_records):
            raise ConfigError(f"ground_truth: records {sorted(set(self.train_records) & set(self.test_records))} are in "
                              "both train_records and test_records (the check is patient-wise)")
        if not self.train_records or not self.test_records:
            raise ConfigError("ground_truth: train_records and test_records must both name records")
        if not 0 <= self.min_record_quality <= 1:
            raise ConfigError(f"ground_truth: min_record_quality={self.min_record_quality} must be a share in [0, 1]")
        if self.normal_qrs_max_s < 0:
            raise ConfigError(f"ground_truth: normal_qrs_max_s={self.normal_qrs_max_s} must be >= 0 (0: no filter)")
        if self.width_outlier_mad < 0:
            raise ConfigError(f"ground_truth: width_outlier_mad={self.width_outlier_mad} must be >= 0 (0: no filter)")
        if self.before_s <= 0.3:
            raise ConfigError(f"ground_truth: before_s={self.before_s} cannot hold the previous beat; use about 1.2 s")
        for m in self.methods:
            attribution.get_class(m)
        models.check_kwargs(self.model, self.model_kwargs, where="ground_truth.model_kwargs")


def reliable_records(quality: np.ndarray, record: np.ndarray, min_share: float) -> np.ndarray:
    """bool[N]: the beat's record has at least ``min_share`` of its beats passing the quality flag.

    Args:
      quality: bool[N] ``Waves.quality``; record: [N] each beat's record; min_share: in [0, 1].
    """
    quality = np.asarray(quality, bool)
    names, inv = np.unique(np.asarray(record), return_inverse=True)
    share = np.bincount(inv, weights=quality, minlength=len(names)) / np.bincount(inv, minlength=len(names))
    return share[inv] >= min_share


def width_outliers(width: np.ndarray, group: np.ndarray, usable: np.ndarray, k: float, fs: float) -> np.ndarray:
    """bool[N]: usable beats whose width lies more than ``k`` robust SDs from their group's median width.

    The robust SD is 1.4826 x the median absolute deviation of the group's usable widths, at least one
    sample (``1 / fs``: the delineation's resolution); beats that are not usable are never outliers.

    Args:
      width: f[N] seconds; group: [N] a label per beat (record x beat symbol); usable: bool[N] the beats
        the medians are taken over; k: robust SDs (0: no outliers); fs: sampling rate (Hz).
    """
    width, usable = np.asarray(width, np.float64), np.asarray(usable, bool)
    out = np.zeros(len(width), bool)
    if k <= 0:
        return out
    group = np.asarray(group)
    for g in np.unique(group[usable]):
        rows = np.flatnonzero((group == g) & usable)
        med = np.median(width[rows])
        sd = max(1.4826 * np.median(np.abs(width[rows] - med)), 1.0 / fs)
        out[rows] = np.abs(width[rows] - med) > k * sd
    return out


def targets_and_segments(beats, waves, *, min_record_quality: float = 0.0, width_outlier_mad: float = 0.0,
                         normal_qrs_symbols: tuple[str, ...] = (), normal_qrs_max_s: float = 0.0,
                         ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Each target's value, defining segment and usable beats.

    Args:
      beats: a ``BeatSet`` (x f32[N, T, L], r, lo, hi, rr_prev, fs, and record, symbol for the
        ``qrs_width`` filters); waves: its ``Waves``.
      min_record_quality, width_outlier_mad, normal_qrs_symbols, normal_qrs_max_s: ``GroundTruthSpec``'s
        filters of ``qrs_width`` (0 / empty: off).

    Returns:
      {target: (value f64[N], segment bool[N, T, L], usable bool[N])}; usable beats pass the
      delineation's quality flag (and, for ``rr``, hold the previous R with a 60 ms margin; for
      ``qrs_width``, come from a reliable record and are no width outlier).
    """
    N, T, L = beats.x.shape
    fs = beats.fs
    t = np.arange(T)[None, :]
    r = beats.r.astype(np.int64)[:, None]
    ok = np.asarray(waves.quality, bool)
    out = {}
    # rr: the interval to the previous beat and both R peaks
    prev = r - beats.rr_prev.astype(np.int64)[:, None]
    h = timebase.to_samples(_RR_HALF_S, fs)
    seg = (np.abs(t - r) <= h) | (np.abs(t - prev) <= h)
    usable_rr = ok & (beats.rr_prev > 0) & (prev[:, 0] >= beats.lo + timebase.to_samples(_RR_MARGIN_S, fs))
    out["rr"] = (beats.rr_prev / fs, np.broadcast_to(seg[:, :, None], (N, T, L)), usable_rr)
    # qrs_width: the QRS
    qrs = wave_masks(waves.bounds, T, beats.lo, beats.hi)[:, 2]
    width = (waves.bounds[:, 3] - waves.bounds[:, 2]).astype(np.float64) / fs
    usable_w = ok & qrs.any(1)
    if min_record_quality > 0:
        usable_w &= reliable_records(waves.quality, beats.record, min_record_quality)
    if normal_qrs_max_s > 0 and normal_qrs_symbols:
        with np.errstate(invalid="ignore"):
            usable_w &= ~(np.isin(np.asarray(beats.symbol).astype(str), list(normal_qrs_symbols)) & (width > normal_qrs_max_s))
    if width_outlier_mad > 0:
        group = np.char.add(np.char.add(np.asarray(beats.record).astype(str), "/"), np.asarray(beats.symbol).astype(str))
        usable_w &= ~width_outliers(width, group, usable_w, width_outlier_mad, fs)
    out["qrs_width"] = (width, np.broadcast_to(qrs[:, :, None], (N, T, L)), usable_w)
    # r_amplitude: the largest lead-0 value inside the QRS, and +-25 ms around it on lead 0
    x0 = np.where(qrs, beats.x[:, :, 0], -np.inf)
    peak = np.argmax(x0, axis=1)
    amp = np.where(qrs.any(1), x0[np.arange(N), peak], np.nan).astype(np.float64)
    seg = np.zeros((N, T, L), bool)
    seg[:, :, 0] = np.abs(t - peak[:, None]) <= timebase.to_samples(_R_HALF_S, fs)
    out["r_amplitude"] = (amp, seg, ok & qrs.any(1))
    return out


def share_stats(maps: np.ndarray, x: np.ndarray, segment: np.ndarray, valid: np.ndarray, record: np.ndarray, *,
                n_boot: int = 1000, seed: int = 0) -> dict:
    """A method's share of |attribution| in the defining segment, against a random and an |x|-proportional map.

    Args:
      maps: f[N, T, L] the method's maps; x: f[N, T, L] the beats; segment: bool[N, T, L];
      valid: bool[N, T]; record: [N] (the bootstrap unit).

    Returns:
      ``{"share", "share_ci", "random", "amplitude", "vs_random", "vs_random_ci", "vs_amplitude", "vs_amplitude_ci"}``:
      means over beats (``vs_*``: of the per-beat difference) with record-bootstrap CIs.
    """
    s = mask_share(maps, segment, valid)
    rnd = mask_fraction(segment, valid, maps.shape[2])
    amp = mask_share(x, segment, valid)
    m, lo, hi = record_bootstrap(s, record, n_boot=n_boot, seed=seed)
    dr = record_bootstrap(s - rnd, record, n_boot=n_boot, seed=seed)
    da = record_bootstrap(s - amp, record, n_boot=n_boot, seed=seed)
    return {"share": m, "share_ci": [lo, hi], "random": float(np.nanmean(rnd)), "amplitude": float(np.nanmean(amp)),
            "vs_random": dr[0], "vs_random_ci": [dr[1], dr[2]], "vs_amplitude": da[0], "vs_amplitude_ci": [da[1], da[2]]}


def rank_methods(rows: dict[str, dict[str, dict]]) -> list[dict]:
    """Methods ordered by their mean rank over targets (rank 1: the largest share in the defining segment).

    Args:
      rows: {target: {method: ``share_stats`` result}}.

    Returns:
      ``[{"method", "mean_rank", "ranks": {target: rank}, "mean_share"}]``, best first; a method
      missing for a target is ranked over the targets it has.
    """
    ranks: dict[str, dict[str, int]] = {}
    shares: dict[str, list[float]] = {}
    for target, by_method in rows.items():
        order = sorted(by_method, key=lambda m: -np.nan_to_num(by_method[m]["share"], nan=-1.0))
        for i, m in enumerate(order, 1):
            ranks.setdefault(m, {})[target] = i
            shares.setdefault(m, []).append(by_method[m]["share"])
    out = [{"method": m, "mean_rank": float(np.mean(list(r.values()))), "ranks": r, "mean_share": float(np.nanmean(shares[m]))}
           for m, r in ranks.items()]
    return sorted(out, key=lambda d: (d["mean_rank"], -d["mean_share"]))


def _draw(rows: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rows if len(rows) <= n else rng.choice(rows, n, replace=False))


def ground_truth_check(spec: GroundTruthSpec, out_dir: Path, *, data_dir=None, cache=None, memory_budget: int | None = None) -> dict:
    """Train one regressor per target, explain it with every method, and summarise the shares.

    Returns a JSON-ready summary (also written to ``out_dir/ground_truth.json``):
    ``{"targets": {target: {"n_train", "n_test", "n_test_records", "r2_test", "mae_test", "unit", "train_s",
    "methods": {method: share_stats | {"skipped": why}}}}, "ranking": rank_methods(...), "spec": ...}``.
    """
    import jax

    from ecgjax import attribution
    from ecgjax.attribution.explain import with_data_background
    from ecgjax.data import load_beats, protocols
    from ecgjax.data.delineation import load_waves
    from ecgjax.models import model_info
    from ecgjax.train.regression import train_regressor

    records = tuple(spec.train_records) + tuple(r for r in spec.test_records if r not in spec.train_records)
    proto = protocols.get(spec.protocol, before_s=spec.before_s, after_s=spec.after_s, records=records)
    beats = load_beats(proto, data_dir, cache=cache)
    waves = load_waves(beats, data_dir, cache=cache)
    unfiltered = int(targets_and_segments(beats, waves)["qrs_width"][2].sum())
    targets = targets_and_segments(beats, waves, min_record_quality=spec.min_record_quality,
                                   width_outlier_mad=spec.width_outlier_mad, normal_qrs_symbols=spec.normal_qrs_symbols,
                                   normal_qrs_max_s=spec.normal_qrs_max_s)
    names = spec.methods or attribution.available()
    is_train = np.isin(beats.record, spec.train_records)
    is_test = np.isin(beats.record, spec.test_records) & ~is_train
    summary = {"spec": {**dataclasses.asdict(spec), "T": int(beats.x.shape[1]), "delineation": waves.method}, "targets": {}}
    by_target = {}
    for k, target in enumerate(TARGETS):
        value, segment, usable = targets[target]
        rng = np.random.default_rng(spec.seed + k)
        train = _draw(np.flatnonzero(usable & is_train), spec.max_train, rng)
        test = _draw(np.flatnonzero(usable & is_test), spec.max_test, rng)
        log.info("ground truth %s: %d training beats, %d test beats", target, len(train), len(test))
        reg = train_regressor(spec.model, beats.x, value, train, test, fs=beats.fs, epochs=spec.epochs,
                              batch_size=spec.batch_size, lr=spec.lr, seed=spec.seed, **spec.model_kwargs)
        info = model_info(reg.model)
        x, valid, seg, rec = beats.x[test], beats.valid[test], segment[test], beats.record[test]
        res = {"n_train": int(len(train)), "n_test": int(len(test)), "n_test_records": int(len(np.unique(rec))),
               "n_train_records": int(len(np.unique(beats.record[train]))),
               "r2_test": reg.r2_test, "mae_test": reg.mae_test, "r2_train": reg.r2_train,
               # what predicting the training mean scores: the MAE to beat, and the spread R² is relative to
               "mae_test_mean_predictor": float(np.mean(np.abs(value[test] - value[train].mean()))),
               "sd_train": float(np.std(value[train])), "sd_test": float(np.std(value[test])),
               "usable": int(usable.sum()), "quality": int((np.asarray(waves.quality, bool)).sum()),
               **({"usable_unfiltered": unfiltered} if target == "qrs_width" else {}),
               "unit": TARGET_UNITS[target], "train_s": round(reg.train_s, 1), "methods": {}}
        for name in names:
            method = attribution.get(name)
            if (why := attribution.refusal(method, info)) is not None:
                res["methods"][name] = {"skipped": why}
                continue
            method = with_data_background(method, beats, train)
            t0 = time.perf_counter()
            maps = attribution.attribute_dataset(reg.model, x, 0, method, key=jax.random.key(spec.seed), r=beats.r[test],
                                                 memory_budget=memory_budget, progress=False).maps
            stats = share_stats(maps, x, seg, valid, rec, n_boot=spec.n_boot, seed=spec.seed)
            res["methods"][name] = {**stats, "wall_s": round(time.perf_counter() - t0, 2)}
            log.info("ground truth %s / %s: share %.3f (random %.3f, |x| %.3f)", target, name, stats["share"],
                     stats["random"], stats["amplitude"])
        summary["targets"][target] = res
        by_target[target] = {m: v for m, v in res["methods"].items() if "share" in v}
    summary["ranking"] = rank_methods(by_target)
    atomic_write_json(Path(out_dir) / "ground_truth.json", summary)
    return summary
