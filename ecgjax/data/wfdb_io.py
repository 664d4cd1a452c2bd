"""The only module that reads WFDB files (through wfdb), with errors that name the record.

``read_record`` returns one record's signal and annotations at the requested
sampling rate. Every failure mode we know of becomes a ``RecordError`` naming
the file and the problem: a missing, unreadable or non-file ``.hea``/``.dat``/``.atr``,
a header wfdb cannot parse, a ``.dat`` whose size does not match what its header
implies (truncated, or a wrong format code or sample count), a signal that
contradicts the header's checksum or initial-value fields (a wrong format code
that happens to fit the size), an ``.atr`` wfdb cannot parse or that holds no
annotations, annotations outside the signal, NaN samples (wfdb's marker for
invalid samples) or samples that are infinite in float32 (an absurd gain), or an
unexpected sampling rate when resampling is off.
"""

from __future__ import annotations

import dataclasses
import logging
import os
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
        if not p.is_file():
            raise RecordError(record, f"signal file {p} is not a regular file")
        expected = int(np.ceil(nbytes)) + offsets[fname]
        actual = p.stat().st_size
        if actual < expected:
            raise RecordError(
                record,
                f"{p} is truncated: {actual} bytes, but the header ({header.sig_len} samples x "
                f"{header.n_sig} signals) needs {expected}",
            )
        if actual > expected + 2:  # format 212/310 may pad the last sample group
            raise RecordError(
                record,
                f"{p} has {actual} bytes, but the header (format {', '.join(sorted(set(map(str, header.fmt))))}, "
                f"{header.sig_len} samples x {header.n_sig} signals) implies {expected}: the header's format code "
                "or sample count is wrong",
            )


def _check_against_header(base: Path, record: str, header, d_signal: np.ndarray) -> None:
    """The header's per-signal checksum (16-bit sum of samples) and initial value, when present."""
    if header.checksum is not None:
        sums = d_signal.sum(axis=0, dtype=np.int64)
        for j, (want, got) in enumerate(zip(header.checksum, sums)):
            if want is not None and (int(got) - int(want)) % 65536:
                raise RecordError(
                    record,
                    f"{base}.dat does not match the checksum in {base}.hea (signal {j}: {int(got) % 65536} vs "
                    f"{int(want) % 65536}): the header's format code or gain is wrong, or the file is corrupt",
                )
    if header.init_value is not None and len(d_signal):
        for j, (want, got) in enumerate(zip(header.init_value, d_signal[0])):
            if want is not None and int(want) != int(got):
                raise RecordError(
                    record,
                    f"{base}.dat starts with {int(got)} on signal {j}, but {base}.hea says {int(want)}: "
                    "the header's format code or byte offset is wrong, or the file is corrupt",
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
        p = folder / f"{record}.{ext}"
        what = "header" if ext == "hea" else "reference annotation"
        if not p.exists():
            raise RecordError(record, f"{what} file {p} is missing")
        if not p.is_file():
            raise RecordError(record, f"{what} file {p} is not a regular file")
        if not os.access(p, os.R_OK):
            raise RecordError(record, f"{what} file {p} is not readable (permissions)")
    try:
        header = wfdb.rdheader(str(base))
    except Exception as e:
        raise RecordError(record, f"cannot parse header {base}.hea ({type(e).__name__}: {e})") from e
    if not header.sig_len or not header.n_sig:
        raise RecordError(record, f"header {base}.hea declares no samples or no signals")
    _check_dat_sizes(folder, record, header)
    for fname in set(header.file_name):
        if not os.access(folder / fname, os.R_OK):
            raise RecordError(record, f"signal file {folder / fname} is not readable (permissions)")
    try:
        rec = wfdb.rdrecord(str(base), physical=False)
    except Exception as e:
        raise RecordError(record, f"wfdb could not read the signal of {base} ({type(e).__name__}: {e})") from e
    if rec.d_signal is None or rec.d_signal.shape[0] != header.sig_len:
        got = None if rec.d_signal is None else rec.d_signal.shape[0]
        raise RecordError(record, f"{base}.dat gave {got} samples, header says {header.sig_len}")
    _check_against_header(base, record, header, rec.d_signal)
    try:
        ann = wfdb.rdann(str(base), "atr") if annotations else None
    except Exception as e:
        raise RecordError(record, f"wfdb could not read {base}.atr ({type(e).__name__}: {e})") from e

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        signal = rec.dac(return_res=64)  # physical units (f64[S, L]); wfdb's invalid marker -> NaN
        as_f32 = signal.astype(np.float32)
    nan = np.isnan(as_f32)
    if nan.any():
        rows = np.flatnonzero(nan.any(axis=1))
        raise RecordError(
            record,
            f"{base}.dat has {int(nan.sum())} NaN (invalid) samples, first at sample {rows[0]} "
            f"(lead {rec.sig_name[int(np.argmax(nan[rows[0]]))]}); ecgjax does not interpolate them",
        )
    inf = ~np.isfinite(as_f32)
    if inf.any():
        rows = np.flatnonzero(inf.any(axis=1))
        j = int(np.argmax(inf[rows[0]]))
        raise RecordError(
            record,
            f"{base}.dat has {int(inf.sum())} samples that are infinite in physical units, first at sample "
            f"{rows[0]} (lead {rec.sig_name[j]}; {base}.hea gives gain {rec.adc_gain[j]:g}): the header's gain is wrong",
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


def read_header_comments(folder: str | Path, record: str) -> tuple[str, ...]:
    """The comment lines of ``record``'s header (``wfdb.rdheader(...).comments``, without the ``#``).

    Raises:
      RecordError: the header is missing or wfdb cannot parse it.
    """
    import wfdb

    base = Path(folder) / record
    if not Path(f"{base}.hea").is_file():
        raise RecordError(record, f"header file {base}.hea is missing")
    try:
        return tuple(str(c).strip() for c in (wfdb.rdheader(str(base)).comments or []))
    except Exception as e:
        raise RecordError(record, f"cannot parse header {base}.hea ({type(e).__name__}: {e})") from e
