"""Each beat cut into its waves: P, PR segment, QRS, ST segment, T.

Per record, one lead (lead 0 in the protocol's lead order: MLII in 45 of 48
records, and in all of ``aami``'s) is delineated once at the R positions of the
record's beat annotations, so no R detector is involved. Methods (``METHODS``):

* ``"envelope"`` (the default, this module, :func:`delineate_envelope`): the QRS
  is where the slope envelope of the band-passed lead stands above its beat's
  noise floor, searched up to 200 ms on each side of R, so wide complexes
  (ventricular, bundle branch block) keep their width; P and T are the largest
  deflections before and after it from the isoelectric line; a P wave that is
  not there is left NaN (absent), not guessed.
* ``"dwt"``: neurokit2's discrete wavelet delineator (``nk.ecg_clean`` then
  ``nk.ecg_delineate``; Martinez et al. 2004). On MIT-BIH it passes the quality
  flag on a median 18% of a record's beats and on almost no V beat
  (``benchmarks/delineation_methods.py``, docs/results.md section 5c).
* ``"peak"``: neurokit2's peak method (P onset and T offset only).

The six boundaries of every beat, in record samples:

    P_on  P_off  QRS_on  QRS_off  T_on  T_off

give five consecutive waves, each the half-open span ``[start, end)``:

    P = [P_on, P_off)   PR = [P_off, QRS_on)   QRS = [QRS_on, QRS_off)
    ST = [QRS_off, T_on)   T = [T_on, T_off)

A boundary that was not found is NaN (a wave with a NaN end is absent).
``quality`` marks beats whose QRS and T boundaries were found and whose P wave
was either found or is absent (both P bounds NaN: then P and PR are empty), in
physiological order around R (``P_on < P_off <= QRS_on < R < QRS_off <= T_on <
T_off``), with a QRS of 40-200 ms, a P wave of at most 200 ms, a T wave of at
most 500 ms and a P onset at most 400 ms before R: the beats whose wave masks
can be trusted.

The delineation of a record is cached as one ``.npz`` per record (no pickle,
written atomically) under ``<beat cache>/waves``, keyed by the record files'
sha256, the lead, the sampling rate and the method; a damaged or foreign file
is rebuilt; a different method has a different key, so changing the method
rebuilds the cache. :func:`load_waves` maps the cached delineation onto any
``BeatSet`` (or subset) of a protocol: boundaries relative to each beat's
window (they may fall outside ``[0, T)``; :func:`ecgjax.analysis.waves.wave_masks`
clips them).

No expert-marked wave boundaries (QT database, LUDB) are available offline: the
envelope method is checked against beats whose six boundaries are known by
construction (``ecgjax.data.closed_form``: every boundary of narrow and wide
beats, absent P waves, discordant T waves, a bigeminy;
``tests/data/test_delineation.py``, ``benchmarks/delineation_methods.py
--closed-form``), and on real records for physiology (V, L and R beats wider
than N beats).

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
METHODS = ("envelope", "dwt", "peak")
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
      method: the delineation method (``METHODS``).
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


def delineate(signal: np.ndarray, r_samples: np.ndarray, fs: float, *, method: str = "envelope") -> np.ndarray:
    """The six boundaries of every beat of one lead of a record.

    Args:
      signal: f[S] one lead of a record, physical units.
      r_samples: i64[K] R positions (beat annotations), sorted.
      fs: sampling rate (Hz).
      method: ``"envelope"`` (:func:`delineate_envelope`), ``"dwt"`` (neurokit2, all six bounds) or
        ``"peak"`` (neurokit2, P onset and T offset only).

    Returns:
      f64[K, 6] record samples of ``BOUNDS``, NaN where not found.
    """
    if method not in METHODS:
        raise ConfigError(f"delineation method {method!r}; choose one of {list(METHODS)}")
    if method == "envelope":
        return delineate_envelope(signal, r_samples, fs)
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


# The envelope method's settings (seconds unless said otherwise).
ENVELOPE = {
    "qrs_band_hz": (1.0, 30.0),  # band-pass of the slope envelope
    "smooth_s": 0.012,  # moving average of |slope|
    "floor_s": 0.8,  # the noise floor: 25th percentile of the envelope within +-floor_s of R
    "peak_s": 0.08,  # the QRS's peak slope: the envelope's maximum within +-peak_s of R
    "alpha": 0.08,  # QRS: envelope above floor + alpha (peak - floor)
    "gap_s": 0.03,  # a QRS may dip below that threshold for at most gap_s (slurred, notched complexes)
    "side_s": 0.20,  # searched up to side_s before and after R (complexes up to 400 ms are not cut)
    "min_peak_over_floor": 3.0,  # no QRS where the peak slope is below 3 x the floor (noise)
    "wave_lowpass_hz": 20.0,  # P and T are read from the lead low-passed here, minus the isoelectric line
    "beta": 0.15,  # P and T extend while their deflection is above 15% of its height over the side's minimum
    "p_search_s": 0.30,  # P's peak within [QRS_on - p_search_s, QRS_on - 30 ms), after 55% of the RR before
    "t_search_s": 0.50,  # T's peak within [QRS_off + 40 ms, QRS_off + t_search_s), before t_end_rr of the RR after
    "t_end_rr": 0.60,  # (later, at fast rates, the next beat's P wave can be the largest deflection)
    "p_min_rel": 0.05,  # P present: height above 3 x the local noise and above p_min_rel x the QRS's peak-to-peak
    "t_min_rel": 0.03,
}


def _windows(a: np.ndarray, start: np.ndarray, n: int) -> np.ndarray:
    """f64[K, n]: ``a[start_k : start_k + n]`` per row, NaN outside ``a``."""
    idx = np.asarray(start, np.int64)[:, None] + np.arange(n)[None]
    ok = (idx >= 0) & (idx < len(a))
    return np.where(ok, a[np.clip(idx, 0, len(a) - 1)], np.nan)


def _first_true(mask: np.ndarray) -> np.ndarray:
    """i64[K]: the first True column of each row of bool[K, W], -1 where none."""
    return np.where(mask.any(1), mask.argmax(1), -1)


def _qrs_side(env: np.ndarray, r: np.ndarray, thr: np.ndarray, direction: int, side: int, gap: int) -> np.ndarray:
    """f64[K]: how far (samples) from R the QRS reaches on one side, NaN if it does not end within ``side``.

    Walking away from R (R itself counts as inside), the QRS is every sample above ``thr`` reached without
    crossing more than ``gap`` samples below it; its reach is the last such sample.
    """
    K = len(r)
    pos = np.arange(side + 1)
    idx = r[:, None] + direction * pos[None]
    ok = (idx >= 0) & (idx < len(env))
    above = np.where(ok, env[np.clip(idx, 0, len(env) - 1)], np.nan) > thr[:, None]  # NaN (record edge) is below
    above[:, 0] = True
    last = np.maximum.accumulate(np.where(above, pos[None], 0), axis=1)  # last above-threshold sample so far
    brk = _first_true((pos[None] - last) > gap)
    reach = last[np.arange(K), np.maximum(brk, 0)].astype(np.float64)
    return np.where((brk >= 0) & (reach > 0), reach, np.nan)


def _deflection(d: np.ndarray, beta: float, min_amp: np.ndarray, fs: float, dur_s: tuple[float, float], *,
                skip: int = 0, onset_default: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(on, off) f64[K] columns of the largest deflection of ``d`` f[K, W] (NaN outside the search), NaN where absent.

    The wave spans the columns around its peak where the deflection (made positive) stays above ``beta`` of its
    height over the lowest value on that side of the peak; a side without such a crossing inside the search gives
    NaN (or ``onset_default`` for the onset). Absent: height <= ``min_amp``, or a duration outside ``dur_s``.
    The peak is not looked for in the first ``skip`` columns (the boundaries may lie there).
    """
    K, W = d.shape
    rows = np.arange(K)
    a = np.abs(d)
    a[:, :skip] = np.nan
    has = np.isfinite(a).any(1)
    pk = np.where(has, np.argmax(np.where(np.isfinite(a), a, -1.0), 1), 0)
    amp = a[rows, pk]
    s = d * np.sign(d[rows, pk])[:, None]
    col = np.arange(W)[None]
    left, right = col < pk[:, None], col > pk[:, None]
    with np.errstate(invalid="ignore"):
        def level(side):
            m = np.min(np.where(side & np.isfinite(s), s, np.inf), 1)
            m = np.clip(np.where(np.isfinite(m), m, 0.0), 0.0, None)
            return (m + beta * (amp - m))[:, None]

        below = ~(s >= np.where(left, level(left), level(right)))  # NaN (outside the search) counts as below
    r_i = _first_true(below & right)
    lmask = below & left
    l_i = np.where(lmask.any(1), W - 1 - lmask[:, ::-1].argmax(1), -1)
    on = np.where((l_i >= 0) & np.isfinite(d[rows, np.maximum(l_i, 0)]), l_i + 1.0, np.nan)
    if onset_default is not None:
        on = np.where(np.isnan(on), onset_default, on)
    off = np.where((r_i >= 0) & np.isfinite(d[rows, np.maximum(r_i, 0)]), r_i.astype(np.float64), np.nan)
    with np.errstate(invalid="ignore"):
        dur = (off - on) / fs
        ok = has & (amp > min_amp) & (dur >= dur_s[0]) & (dur <= dur_s[1])
    return np.where(ok, on, np.nan), np.where(ok, off, np.nan)


def delineate_envelope(signal: np.ndarray, r_samples: np.ndarray, fs: float) -> np.ndarray:
    """The six boundaries of every beat from the slope envelope (module docstring; settings ``ENVELOPE``).

    QRS: the lead band-passed (``qrs_band_hz``), |slope| smoothed over ``smooth_s``; per beat a noise floor (25th
    percentile within ``floor_s`` of R) and a peak (maximum within ``peak_s`` of R); the QRS reaches, on each side
    of R, as far as the envelope stays above ``floor + alpha (peak - floor)`` with dips of at most ``gap_s``,
    searched up to ``side_s``. P and T: the lead low-passed (``wave_lowpass_hz``) minus the isoelectric line (the
    level just before each QRS onset, linearly interpolated between beats), the largest deflection in the P
    search window before the QRS and in the T search window after it (:func:`_deflection`). A missing P is NaN.

    Args:
      signal: f[S] one lead, physical units; r_samples: i64[K] R positions, sorted; fs: sampling rate (Hz).

    Returns:
      f64[K, 6] record samples of ``BOUNDS`` (offsets are exclusive ends), NaN where not found.
    """
    from scipy import signal as sps

    c = ENVELOPE
    x = np.asarray(signal, np.float64)
    r = np.asarray(r_samples, np.int64)
    K = len(r)
    out = np.full((K, len(BOUNDS)), np.nan)
    if K == 0 or len(x) < 2 * int(fs) or not np.isfinite(x).all():
        return out

    def n(sec):
        return int(round(sec * fs))

    def lowpass(v, hz):
        return sps.sosfiltfilt(sps.butter(2, hz, "lowpass", fs=fs, output="sos"), v)

    band = sps.sosfiltfilt(sps.butter(2, c["qrs_band_hz"], "bandpass", fs=fs, output="sos"), x)
    w = max(1, n(c["smooth_s"]))
    env = np.convolve(np.abs(np.gradient(band)) * fs, np.ones(w) / w, mode="same")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows at the record's edges
        floor = np.nanpercentile(_windows(env, r - n(c["floor_s"]), 2 * n(c["floor_s"]) + 1), 25, axis=1)
        peak = np.nanmax(_windows(env, r - n(c["peak_s"]), 2 * n(c["peak_s"]) + 1), axis=1)
    thr = floor + c["alpha"] * (peak - floor)
    side, gap = n(c["side_s"]), n(c["gap_s"])
    before = _qrs_side(env, r, thr, -1, side, gap)
    after = _qrs_side(env, r, thr, 1, side, gap)
    good = np.isfinite(before) & np.isfinite(after) & (peak > c["min_peak_over_floor"] * floor)
    q_on = np.where(good, r - before, np.nan)
    q_off = np.where(good, r + after + 1, np.nan)
    out[:, 2], out[:, 3] = q_on, q_off
    if not good.any():
        return out
    on_i = np.where(good, q_on, r).astype(np.int64)
    off_i = np.where(good, q_off, r).astype(np.int64)

    y = lowpass(x, 40.0)
    yl = lowpass(y, c["wave_lowpass_hz"])
    p_len = n(c["p_search_s"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        noise = np.nanstd(_windows(y - yl, on_i - p_len, p_len), axis=1)  # 20-40 Hz: noise, not P or T
        level = np.nanmean(_windows(y, on_i - n(0.04), n(0.025)), axis=1)  # PR segment level
    knots = np.isfinite(level) & good
    if not knots.any():
        return out
    iso = np.interp(np.arange(len(x)), on_i[knots] - n(0.0275), level[knots])
    d_all = yl - iso
    pp = np.array([np.ptp(y[a:b]) if b > a else np.nan for a, b in zip(on_i, off_i)])
    rr = np.diff(r).astype(np.float64)
    rr_prev, rr_next = np.r_[np.nan, rr], np.r_[rr, np.nan]

    # P: [QRS_on - p_search_s, QRS_on - 30 ms), from 55% of the RR before on
    start = on_i - p_len
    d = _windows(d_all, start, p_len - n(0.03))
    first = np.where(np.isfinite(rr_prev), r - 0.45 * rr_prev, -np.inf)
    d = np.where(start[:, None] + np.arange(d.shape[1])[None] >= first[:, None], d, np.nan)
    p_on, p_off = _deflection(d, c["beta"], np.maximum(3 * noise, c["p_min_rel"] * pp), fs, (0.03, _P_MAX_S))
    out[:, 0], out[:, 1] = np.where(good, start + p_on, np.nan), np.where(good, start + p_off, np.nan)

    # T: peak in [QRS_off + 40 ms, QRS_off + t_search_s), before t_end_rr of the RR after; onset from QRS_off
    t_len = n(c["t_search_s"])
    d = _windows(d_all, off_i, t_len)
    last = np.where(np.isfinite(rr_next), r + c["t_end_rr"] * rr_next, np.inf)
    d = np.where(off_i[:, None] + np.arange(t_len)[None] < last[:, None], d, np.nan)
    t_on, t_off = _deflection(d, c["beta"], np.maximum(3 * noise, c["t_min_rel"] * pp), fs, (0.04, _T_MAX_S),
                              skip=n(0.04), onset_default=0.0)
    out[:, 4], out[:, 5] = np.where(good, off_i + t_on, np.nan), np.where(good, off_i + t_off, np.nan)
    return out


def quality(bounds: np.ndarray, r: np.ndarray, fs: float) -> np.ndarray:
    """bool[N]: the delineation of each beat is complete (the P wave may be absent), ordered around R and plausible.

    Args:
      bounds: f[N, 6] positions of ``BOUNDS`` (any common origin with ``r``).
      r: i[N] R positions.
      fs: sampling rate (Hz).
    """
    b = np.asarray(bounds, np.float64)
    r = np.asarray(r, np.float64)
    p_on, p_off, q_on, q_off, t_on, t_off = b.T
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(b[:, 2:]).all(1)
        ok &= (q_on < r) & (r < q_off) & (q_off <= t_on) & (t_on < t_off)
        qrs = (q_off - q_on) / fs
        ok &= (qrs >= _QRS_S[0]) & (qrs <= _QRS_S[1])
        ok &= (t_off - t_on) / fs <= _T_MAX_S
        p_found = np.isfinite(b[:, :2]).all(1)
        p_ok = (p_on < p_off) & (p_off <= q_on) & ((p_off - p_on) / fs <= _P_MAX_S) & ((r - p_on) / fs <= _P_ON_BEFORE_R_S)
        ok &= np.where(p_found, p_ok, np.isnan(b[:, :2]).all(1))  # a P wave found and plausible, or absent
    return ok


def waves_cache_dir(cache: str | os.PathLike | None = None) -> Path:
    """``<beat cache folder>/waves`` (``ecgjax.data.dataset.cache_dir``)."""
    from ecgjax.data.dataset import cache_dir

    return cache_dir(cache) / "waves"


def _record_key(checksums: dict[str, str], lead: str, fs: float, method: str) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "files": checksums, "lead": lead, "fs": fs, "method": method}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _record_waves(folder: Path, record: str, sums, protocol: dict, method: str, cache: Path | None) -> tuple[np.ndarray, np.ndarray, str]:
    """(beat samples i64[K], bounds f64[K, 6] in record samples, lead name) of one record, from the cache or ``delineate``."""
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
        log.warning("record %s: the %s delineation failed on lead %s (%s: %s); its beats have no waves",
                    record, method, names[0], type(e).__name__, e)
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
               method: str = "envelope", download: bool = True) -> Waves:
    """The waves of every beat of ``beats``, delineating (and caching) only the records it holds.

    Args:
      beats: a ``BeatSet`` (or subset) of any protocol; its records are re-read for the raw signal.
      data_dir: data root (as ``load_beats``).
      cache: beat cache folder (``None``: ``$ECGJAX_CACHE_DIR`` or the user cache; ``False``: no cache).
      method: one of ``METHODS`` (the cache is keyed on it).
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
