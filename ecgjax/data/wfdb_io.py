"""The only module that reads WFDB files (through wfdb), with errors that name the record.

``read_record`` returns one record's signal and annotations at the requested
sampling rate. Every failure mode we know of becomes a ``RecordError`` naming
the file and the problem: a missing ``.hea``/``.dat``/``.atr``, a header wfdb
cannot parse, a ``.dat`` shorter than its header says, an ``.atr`` wfdb cannot
parse or that holds no annotations, annotations outside the signal, NaN samples
(wfdb's marker for invalid samples), or an unexpected sampling rate when
resampling is off.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from ecgjax.errors import RecordError

log = logging.getLogger(__name__)

# Bytes per sample for WFDB storage formats (signal specification file formats).
_BYTES_PER_SAMPLE = {"8": 1, "16": 2, "24": 3, "32": 4, "61": 2, "80": 1, "160": 2, "212": 1.5, "310": 4 / 3, "311": 4 / 3}


@dataclasses.dataclass(frozen=True)
class RecordData:
    """One record.

    Attributes:
      name: record name, e.g. ``"100"``.
      signal: f32[S, L] samples in physical units (mV).
      fs: sampling rate of ``signal`` (Hz).
      sig_name: the lead names, length L.
      ann_samples: i64[A] annotation sample indices at ``fs``.
      ann_symbols: U[A] annotation symbols.
    """

    name: str
    signal: np.ndarray
    fs: float
    sig_name: tuple[str, ...]
    ann_samples: np.ndarray
    ann_symbols: np.ndarray


def _check_dat_sizes(folder: Path, record: str, header) -> None:
    """Compare each signal file's size with what the header implies."""
    files: dict[str, float] = {}
    offsets: dict[str, int] = {}
    for fname, fmt, off in zip(header.file_name, header.fmt, header.byte_offset or [None] * header.n_sig):
        bps = _BYTES_PER_SAMPLE.get(str(fmt))
        if bps is None:
            return  # unusual format: let wfdb judge
        files[fname] = files.get(fname, 0) + bps * header.sig_len
        offsets[fname] = off or 0
    for fname, nbytes in files.items():
        p = folder / fname
        if not p.exists():
            raise RecordError(record, f"signal file {p} is missing (named in {folder / record}.hea)")
        expected = int(np.ceil(nbytes)) + offsets[fname]
        actual = p.stat().st_size
        if actual < expected:
            raise RecordError(
                record,
                f"{p} is truncated: {actual} bytes, but the header ({header.sig_len} samples x "
                f"{header.n_sig} signals) needs {expected}",
            )


def read_record(
    folder: str | Path, record: str, *, fs: float | None = 360.0, resample: bool = True, annotations: bool = True
) -> RecordData:
    """Read one record's signals and reference (``atr``) annotations.

    Args:
      folder: the database folder.
      record: record name.
      fs: sampling rate wanted; ``None`` keeps the record's own.
      resample: when the record's rate differs from ``fs``: resample it with
        ``wfdb.processing.resample_sig`` per lead (FFT-based); annotation
        samples rescaled and rounded to the nearest new sample) if True, else raise.
      annotations: read the ``atr`` annotations (noise records have none).

    Returns:
      RecordData.

    Raises:
      RecordError: naming the record file and the problem.
    """
    import wfdb

    folder = Path(folder)
    base = folder / record
    for ext in ("hea", "atr") if annotations else ("hea",):
        if not (folder / f"{record}.{ext}").exists():
            what = "header" if ext == "hea" else "reference annotation"
            raise RecordError(record, f"{what} file {base}.{ext} is missing")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as e:
        raise RecordError(record, f"cannot parse header {base}.hea ({type(e).__name__}: {e})") from e
    if not header.sig_len or not header.n_sig:
        raise RecordError(record, f"header {base}.hea declares no samples or no signals")
    _check_dat_sizes(folder, record, header)
    try:
        rec = wfdb.rdrecord(str(base))
    except Exception as e:
        raise RecordError(record, f"wfdb could not read the signal of {base} ({type(e).__name__}: {e})") from e
    try:
        ann = wfdb.rdann(str(base), "atr") if annotations else None
    except Exception as e:
        raise RecordError(record, f"wfdb could not read {base}.atr ({type(e).__name__}: {e})") from e

    signal = rec.p_signal
    if signal is None or signal.shape[0] != header.sig_len:
        got = None if signal is None else signal.shape[0]
        raise RecordError(record, f"{base}.dat gave {got} samples, header says {header.sig_len}")
    nan = np.isnan(signal)
    if nan.any():
        rows = np.flatnonzero(nan.any(axis=1))
        raise RecordError(
            record,
            f"{base}.dat has {int(nan.sum())} NaN (invalid) samples, first at sample {rows[0]} "
            f"(lead {rec.sig_name[int(np.argmax(nan[rows[0]]))]}); ecgjax does not interpolate them",
        )

    samples = np.asarray(ann.sample if annotations else [], np.int64)
    symbols = np.asarray(ann.symbol if annotations else [], dtype="U1")
    if annotations and len(samples) == 0:
        raise RecordError(record, f"{base}.atr holds no annotations (empty or truncated file)")
    if len(samples) and (np.any(np.diff(samples) < 0) or samples[0] < 0 or samples[-1] >= header.sig_len):
        raise RecordError(record, f"{base}.atr has annotations out of order or outside the signal")

    rec_fs = float(rec.fs)
    if fs is not None and abs(rec_fs - fs) > 1e-6:
        if not resample:
            raise RecordError(record, f"{base}.hea gives a sampling rate of {rec_fs:g} Hz; ecgjax expects {fs:g} Hz")
        from wfdb import processing

        log.info("record %s: resampling %g Hz -> %g Hz (wfdb.processing.resample_sig)", record, rec_fs, fs)
        signal = np.stack([processing.resample_sig(signal[:, j], rec_fs, fs)[0] for j in range(signal.shape[1])], axis=1)
        # wfdb's resample_ann truncates (sample * ratio); the beat at time
        # sample / rec_fs is nearest to the rounded index, so round instead
        # (truncation puts R up to one sample before the resampled peak).
        samples = np.minimum(np.rint(samples * (fs / rec_fs)).astype(np.int64), len(signal) - 1)
        rec_fs = float(fs)

    return RecordData(
        name=record,
        signal=np.ascontiguousarray(signal, dtype=np.float32),
        fs=rec_fs,
        sig_name=tuple(rec.sig_name),
        ann_samples=samples,
        ann_symbols=symbols,
    )
