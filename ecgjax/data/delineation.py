"""Each beat cut into its waves: P, PR segment, QRS, ST segment, T, from neurokit2's delineation.

Per record, one lead (lead 0 in the protocol's lead order: MLII in 45 of 48
records, and in all of ``aami``'s) is cleaned (``nk.ecg_clean``) and delineated
once with ``nk.ecg_delineate`` (discrete wavelet method by default; Martinez et
al. 2004) at the R positions of the record's beat annotations, so no R detector
is involved. The six boundaries of every beat, in record samples:

    P_on  P_off  QRS_on  QRS_off  T_on  T_off

give five consecutive waves, each the half-open span ``[start, end)``:

    P = [P_on, P_off)   PR = [P_off, QRS_on)   QRS = [QRS_on, QRS_off)
    ST = [QRS_off, T_on)   T = [T_on, T_off)

A boundary neurokit2 did not find is NaN (a wave with a NaN end is absent).
``quality`` marks beats whose six boundaries were all found, in physiological
order around R (``P_on < P_off <= QRS_on < R < QRS_off <= T_on < T_off``), with
a QRS of 40-200 ms, a P wave of at most 200 ms, a T wave of at most 500 ms and a
P onset at most 400 ms before R: the beats whose wave masks can be trusted.

The delineation of a record is cached as one ``.npz`` per record (no pickle,
written atomically) under ``<beat cache>/waves``, keyed by the record files'
sha256, the lead, the sampling rate and the method; a damaged or foreign file
is rebuilt. :func:`load_waves` maps the cached delineation onto any
``BeatSet`` (or subset) of a protocol: boundaries relative to each beat's
window (they may fall outside ``[0, T)``; :func:`ecgjax.analysis.waves.wave_masks`
clips them).

References: Makowski et al. 2021, "NeuroKit2: A Python toolbox for
neurophysiological signal processing" (Behav. Res. Methods 53); Martinez,
Almeida, Olmos, Rocha & Laguna 2004, "A wavelet-based ECG delineator"
(IEEE TBME 51).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
import warnings
from pathlib import Path

import numpy as np

from ecgjax.data import locate, wfdb_io
from ecgjax.data.beats import BEAT_SYMBOLS
from ecgjax.errors import ConfigError, DataError, RecordError
from ecgjax.io import atomic_savez, check_writable, load_npz

log = logging.getLogger(__name__)

BOUNDS = ("P_on", "P_off", "QRS_on", "QRS_off", "T_on", "T_off")
WAVES = ("P", "PR", "QRS", "ST", "T")
# Wave k spans [bounds[:, WAVE_SPANS[k][0]], bounds[:, WAVE_SPANS[k][1]]).
WAVE_SPANS = ((0, 1), (1, 2), (2, 3), (3, 4), (4, 5))
METHODS = ("dwt", "peak")
CACHE_FORMAT = 1

# neurokit2's output keys for the six boundaries, per method ("peak" finds no P offset, QRS bounds or T onset).
_NK_KEYS = ("ECG_P_Onsets", "ECG_P_Offsets", "ECG_R_Onsets", "ECG_R_Offsets", "ECG_T_Onsets", "ECG_T_Offsets")
# Plausibility limits of the quality flag, in seconds.
_QRS_S = (0.04, 0.20)
_P_MAX_S = 0.20
_T_MAX_S = 0.50
_P_ON_BEFORE_R_S = 0.40


@dataclasses.dataclass(frozen=True)
class Waves:
    """Wave boundaries of N beats, relative to their windows.

    Attributes:
      bounds: f32[N, 6] positions (samples, window-relative: the beat's R is at
        ``BeatSet.r``) of ``BOUNDS``; NaN where not found; may lie outside the window.
      quality: bool[N] all six found, ordered and plausible (module docstring).
      lead: the lead name delineated in each beat's record, {record: name}.
      method: neurokit2's delineation method.
    """

    bounds: np.ndarray
    quality: np.ndarray
    lead: dict[str, str]
    method: str

    def __len__(self) -> int:
        return len(self.quality)

    def durations(self, fs: float) -> np.ndarray:
        """f32[N, 5] seconds of each of ``WAVES`` (NaN where a bound is missing)."""
        s = np.asarray(WAVE_SPANS)
        return ((self.bounds[:, s[:, 1]] - self.bounds[:, s[:, 0]]) / fs).astype(np.float32)


def delineate(signal: np.ndarray, r_samples: np.ndarray, fs: float, *, method: str = "dwt") -> np.ndarray:
    """The six boundaries of every beat of one lead of a record (neurokit2).

    Args:
      signal: f[S] one lead of a record, physical units.
      r_samples: i64[K] R positions (beat annotations), sorted.
      fs: sampling rate (Hz).
      method: ``"dwt"`` (all six bounds) or ``"peak"`` (P onset and T offset only).

    Returns:
      f64[K, 6] record samples of ``BOUNDS``, NaN where not found.
    """
    if method not in METHODS:
        raise ConfigError(f"delineation method {method!r}; choose one of {list(METHODS)}")
    r = np.asarray(r_samples, np.int64)
    out = np.full((len(r), len(BOUNDS)), np.nan)
    if len(r) < 3:  # neurokit2 needs a few beats for its heart-rate dependent windows
        return out
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # neurokit2 warns about every beat without a wave
        clean = nk.ecg_clean(np.asarray(signal, np.float64), sampling_rate=int(round(fs)))
        _, d = nk.ecg_delineate(clean, rpeaks=r, sampling_rate=int(round(fs)), method=method)
    for j, k in enumerate(_NK_KEYS):
        if k in d:
            v = np.asarray(d[k], np.float64)
            if v.shape != (len(r),):
                raise ValueError(f"neurokit2 returned {v.shape[0]} values of {k} for {len(r)} R peaks")
            out[:, j] = v
    return out


def quality(bounds: np.ndarray, r: np.ndarray, fs: float) -> np.ndarray:
    """bool[N]: the delineation of each beat is complete, ordered around R and plausible.

    Args:
      bounds: f[N, 6] positions of ``BOUNDS`` (any common origin with ``r``).
      r: i[N] R positions.
      fs: sampling rate (Hz).
    """
    b = np.asarray(bounds, np.float64)
    r = np.asarray(r, np.float64)
    p_on, p_off, q_on, q_off, t_on, t_off = b.T
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(b).all(1)
        ok &= (p_on < p_off) & (p_off <= q_on) & (q_on < r) & (r < q_off) & (q_off <= t_on) & (t_on < t_off)
        qrs = (q_off - q_on) / fs
        ok &= (qrs >= _QRS_S[0]) & (qrs <= _QRS_S[1])
        ok &= (p_off - p_on) / fs <= _P_MAX_S
        ok &= (t_off - t_on) / fs <= _T_MAX_S
        ok &= (r - p_on) / fs <= _P_ON_BEFORE_R_S
    return ok


def waves_cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """``<beat cache folder>/waves`` (``ecgjax.data.dataset.cache_dir``)."""
    from ecgjax.data.dataset import cache_dir

    return cache_dir(cache) / "waves"


def _record_key(checksums: dict[str, str], lead: str, fs: float, method: str) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "files": checksums, "lead": lead, "fs": fs, "method": method}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _record_waves(folder: Path, record: str, sums, protocol: dict, method: str, cache: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(beat samples i64[K], bounds f64[K, 6] in record samples, lead name) of one record, from the cache or neurokit2."""
    from ecgjax.data.dataset import _order_leads

    fs = float(protocol["fs"])
    checksums = locate.record_checksums(folder, record, sums)
    path = key = None
    if cache is not None:
        # The lead is known from the header only after reading the record; the key uses the lead order instead.
        key = _record_key(checksums, protocol["lead_order"], fs, method)
        path = cache / f"{record}-{method}-{key}.npz"
        if path.exists():
            try:
                z = load_npz(path, "delineation cache")
                meta = json.loads(str(z["meta"]))
                samples, bounds = z["sample"], z["bounds"]
                if meta.get("key") != key or bounds.shape != (len(samples), len(BOUNDS)) or samples.dtype.kind != "i":
                    raise DataError(f"delineation cache {path} has key {meta.get('key')} and shapes "
                                    f"{samples.shape}, {bounds.shape}; expected key {key}")
                return samples, bounds, str(meta["lead"])
            except (DataError, KeyError, ValueError) as e:
                log.warning("%s; rebuilding it", e)
    rec = wfdb_io.read_record(folder, record, fs=fs)
    signal, names = _order_leads(rec, protocol["lead_order"])
    samples = rec.ann_samples[np.isin(rec.ann_symbols, list(BEAT_SYMBOLS))]
    t0 = time.perf_counter()
    try:
        bounds = delineate(signal[:, 0], samples, fs, method=method)
    except Exception as e:  # neurokit2 fails on some signals: the record's beats get no waves (quality False)
        log.warning("record %s: neurokit2 could not delineate lead %s (%s: %s); its beats have no waves",
                    record, names[0], type(e).__name__, e)
        bounds = np.full((len(samples), len(BOUNDS)), np.nan)
    log.info("record %s: delineated %d beats on %s (%.1f s)", record, len(samples), names[0], time.perf_counter() - t0)
    if path is not None:
        meta = {"key": key, "record": record, "lead": names[0], "method": method, "format": CACHE_FORMAT}
        try:
            atomic_savez(path, meta=np.array(json.dumps(meta)), sample=samples, bounds=bounds)
        except OSError as e:
            log.warning("could not write the delineation cache %s (%s); continuing without it", path, e.strerror or e)
    return samples, bounds, names[0]


def load_waves(beats, data_dir: str | os.PathLike | None = None, *, cache: str | os.PathLike | None | bool = None,
               method: str = "dwt", download: bool = True) -> Waves:
    """The waves of every beat of ``beats``, delineating (and caching) only the records it holds.

    Args:
      beats: a ``BeatSet`` (or subset) of any protocol; its records are re-read for the raw signal.
      data_dir: data root (as ``load_beats``).
      cache: beat cache folder (``None``: ``$ECGJAX_CACHE_DIR`` or the user cache; ``False``: no cache).
      method: neurokit2's method, ``"dwt"`` or ``"peak"``.
      download: download the database when absent.

    Returns:
      :class:`Waves` with N = ``len(beats)`` rows, in the beats' order.
    """
    if method not in METHODS:
        raise ConfigError(f"delineation method {method!r}; choose one of {list(METHODS)}")
    protocol = beats.protocol
    if "database" not in protocol:
        raise ConfigError(f"beats of protocol {protocol.get('name')!r} come from no records, so they cannot be delineated")
    folder = locate.find_database(protocol["database"], data_dir, download=download)
    sums = locate.read_sha256sums(folder)
    where = None
    if cache is not False:
        where = waves_cache_dir(None if cache is None or cache is True else cache)
        check_writable(where, "delineation cache folder (--cache-dir / $ECGJAX_CACHE_DIR)")
    bounds = np.full((len(beats), len(BOUNDS)), np.nan, np.float32)
    leads = {}
    start = np.asarray(beats.sample, np.int64) - np.asarray(beats.r, np.int64)  # window start in the record
    for record in np.unique(beats.record):
        rows = np.flatnonzero(beats.record == record)
        samples, b, leads[str(record)] = _record_waves(folder, str(record), sums, protocol, method, where)
        j = np.searchsorted(samples, beats.sample[rows])
        found = (j < len(samples)) & (samples[np.minimum(j, len(samples) - 1)] == beats.sample[rows])
        if not found.all():
            raise RecordError(str(record), f"{int((~found).sum())} beats are not beat annotations of the record "
                              "(the BeatSet was made from other files)")
        bounds[rows] = b[j] - start[rows, None]
    return Waves(bounds, quality(bounds, beats.r, beats.fs), leads, method)
