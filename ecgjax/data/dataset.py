"""Labelled, patient-tagged beat arrays for a protocol, cached on disk.

``load_beats(protocol)`` reads every record of the protocol (through
``wfdb_io``), cuts the beats (``beats``), maps symbols to classes, normalises,
and caches the result as one ``.npz`` (no pickle) keyed by the protocol's
fields and the sha256 of every record file used. The cache is written to a
temporary file and renamed into place, so a killed run never leaves a file that
is later read, and a run that fails on a bad record writes nothing. A cache file
is checked on load against its key, protocol, array shapes, label range and
finiteness, and rebuilt when anything is off (a foreign or tampered file). The
cache folder is checked for writing before the extraction starts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from ecgjax import timebase
from ecgjax.data import beats as beats_lib
from ecgjax.data import locate, wfdb_io
from ecgjax.data import rr as rr_lib
from ecgjax.data.protocols import Protocol
from ecgjax.data.protocols import get as get_protocol
from ecgjax.errors import DataError, RecordError
from ecgjax.io import atomic_savez, check_writable, load_npz

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
CACHE_ENV_VAR = "ECGJAX_CACHE_DIR"


@dataclasses.dataclass(frozen=True)
class BeatSet:
    """All beats of a protocol.

    Attributes:
      x: f32[N, T, L] normalised windows (lead-last).
      y: i32[N] class index into ``classes``.
      classes: class names.
      record: U[N] record name of each beat (the patient).
      sample: i64[N] annotation sample in the record.
      symbol: U1[N] original annotation symbol.
      r: i32[N] R (annotation) position inside the window.
      lo, hi: i32[N] valid samples are ``lo <= t < hi``; the rest is padding.
      rr_prev, rr_next: i32[N] samples to the neighbouring beat annotations.
      fs: sampling rate (Hz).
      lead_names: {record: lead names in the order of the L axis}.
      protocol: the protocol's fields as JSON types (sequences are lists), the
        same whether the set was extracted or read from the cache.
      rr: f32[N, F] RR-interval features in seconds or ratios
        (``ecgjax.data.rr``), F = 0 unless the protocol names ``rr_features``.
      rr_names: the F feature names.
    """

    x: np.ndarray
    y: np.ndarray
    classes: tuple[str, ...]
    record: np.ndarray
    sample: np.ndarray
    symbol: np.ndarray
    r: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    rr_prev: np.ndarray
    rr_next: np.ndarray
    fs: float
    lead_names: dict[str, tuple[str, ...]]
    protocol: dict
    rr: np.ndarray | None = None
    rr_names: tuple[str, ...] = ()

    _ARRAYS = ("x", "y", "record", "sample", "symbol", "r", "lo", "hi", "rr_prev", "rr_next", "rr")

    def __post_init__(self):
        if self.rr is None:
            object.__setattr__(self, "rr", np.zeros((len(self.y), 0), np.float32))
        if self.rr.shape != (len(self.y), len(self.rr_names)):
            raise ValueError(f"rr has shape {self.rr.shape}, expected {(len(self.y), len(self.rr_names))}")

    def __len__(self) -> int:
        return len(self.y)

    @property
    def valid(self) -> np.ndarray:
        """bool[N, T] real-signal mask."""
        return beats_lib.valid_mask(self.lo, self.hi, self.x.shape[1])

    def counts(self, idx: np.ndarray | None = None) -> dict[str, int]:
        """Beats per class (all classes, zeros included), optionally over ``idx``."""
        y = self.y if idx is None else self.y[idx]
        c = np.bincount(y, minlength=len(self.classes))
        return {name: int(c[i]) for i, name in enumerate(self.classes)}

    def lead_axis(self, idx: np.ndarray | None = None) -> tuple[tuple[str, ...], str]:
        """The name of each waveform lead on the L axis, read from the record headers, for figures and tables.

        RR-feature channels (``rr_names``, trailing the leads) are no lead and get no name here.

        Args:
          idx: i64[M] the beats shown (default all); only their records count.
        Returns:
          ``(names, note)``: per position the name most of those beats' records give it,
          with ``*`` appended when some records store another lead there; ``note`` says
          which ("" when every record agrees), e.g. ``"MLII* is V5 in 102, 104, 114"``.
        """
        recs = np.unique(self.record if idx is None else self.record[idx])
        L = self.x.shape[2] - len(self.rr_names)
        names, notes = [], []
        for pos in range(L):
            by_rec = {str(r): (self.lead_names.get(str(r)) or ())[pos:pos + 1] for r in recs}
            got = [v[0] for v in by_rec.values() if v]
            if not got:
                names.append(f"lead {pos + 1}")
                continue
            vals, cnt = np.unique(got, return_counts=True)
            top = str(vals[np.argmax(cnt)])
            other = {r: v[0] for r, v in by_rec.items() if v and v[0] != top}
            names.append(top + ("*" if other else ""))
            if other:
                notes.append(f"{top}* is " + "; ".join(f"{n} in {', '.join(r for r, v in other.items() if v == n)}"
                                                       for n in sorted(set(other.values()))))
        return tuple(names), ". ".join(notes)

    def subset(self, idx: np.ndarray) -> "BeatSet":
        """The beats at ``idx`` (i64[M])."""
        return dataclasses.replace(self, **{k: getattr(self, k)[idx] for k in self._ARRAYS})

    # -- (de)serialisation: npz without pickle --------------------------------
    def save(self, path: Path, key: str | None = None) -> None:
        """Write atomically to ``path`` (.npz, no pickle); ``key``: the cache key it is stored under."""
        meta = {
            "key": key,
            "classes": list(self.classes),
            "fs": self.fs,
            "lead_names": {k: list(v) for k, v in self.lead_names.items()},
            "protocol": self.protocol,
            "rr_names": list(self.rr_names),
            "format": CACHE_FORMAT,
        }
        atomic_savez(path, meta=np.array(json.dumps(meta)), **{k: getattr(self, k) for k in self._ARRAYS})

    @classmethod
    def load(cls, path: Path, key: str | None = None) -> "BeatSet":
        """Read a cache file written by ``save``, checking it (``DataError`` saying what is wrong).

        ``key``: the cache key the file must have been saved under.
        """
        z = load_npz(path, "beat cache")
        try:
            meta = json.loads(str(z["meta"]))
            arrays = {k: z[k] for k in cls._ARRAYS if k in z}
            out = cls(
                rr_names=tuple(meta.get("rr_names", ())),
                classes=tuple(meta["classes"]),
                fs=float(meta["fs"]),
                lead_names={k: tuple(v) for k, v in meta["lead_names"].items()},
                protocol=meta["protocol"],
                **arrays,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise DataError(f"beat cache {path} lacks fields ({type(e).__name__}: {e})") from e
        if meta.get("format") != CACHE_FORMAT or (key is not None and meta.get("key") != key):
            raise DataError(f"beat cache {path} has format {meta.get('format')} / key {meta.get('key')}, "
                            f"expected {CACHE_FORMAT} / {key}")
        out.check(str(path))
        return out

    def check(self, where: str) -> None:
        """Shapes, dtypes, label range, window bounds and finiteness (``DataError`` naming ``where``)."""
        n = len(self.y)
        if self.x.ndim != 3 or self.x.dtype != np.float32:
            raise DataError(f"{where}: x is {self.x.dtype}{list(self.x.shape)}, expected float32[N, T, L]")
        bad = [k for k in self._ARRAYS if len(getattr(self, k)) != n]
        if bad:
            raise DataError(f"{where}: arrays {bad} do not have the {n} rows of y")
        if n and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise DataError(f"{where}: labels outside [0, {len(self.classes)})")
        T = self.x.shape[1]
        if n and not ((0 <= self.lo) & (self.lo <= self.r) & (self.r < self.hi) & (self.hi <= T)).all():
            raise DataError(f"{where}: window bounds (lo <= r < hi <= {T}) violated")
        finite = np.isfinite(self.x).all(axis=(1, 2))
        if not finite.all():
            i = int(np.argmin(finite))
            raise DataError(f"{where}: {int((~finite).sum())} beats hold NaN or inf values, the first from record "
                            f"{self.record[i]} at sample {self.sample[i]}")


def cache_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Flag, then ``$ECGJAX_CACHE_DIR``, then ``<user cache>/beats``."""
    if explicit is not None:
        return Path(explicit)
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR])
    return locate.user_cache_dir() / "beats"


def _semantic_fields(protocol: Protocol | dict) -> dict:
    """The fields of a protocol (or its dict) that decide the beats: not its name or default split, and no RR
    settings when it has no RR features. Two protocols equal here share one cache entry."""
    d = dict(protocol if isinstance(protocol, dict) else protocol.to_dict())
    d.pop("name", None)
    d.pop("default_split", None)
    if not d.get("rr_features"):  # keeps the keys of protocols without RR features unchanged
        for k in ("rr_features", "rr_local_beats", "rr_long_s", "rr_ref_beats", "rr_reference"):
            d.pop(k, None)
    return d


def cache_key(protocol: Protocol, checksums: dict[str, dict[str, str]]) -> str:
    blob = json.dumps(
        {"format": CACHE_FORMAT, "protocol": _semantic_fields(protocol), "files": checksums}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _order_leads(rec: wfdb_io.RecordData, lead_order: str) -> tuple[np.ndarray, tuple[str, ...]]:
    signal, names = rec.signal, rec.sig_name
    if lead_order == "mlii_first" and "MLII" in names and names[0] != "MLII":
        i = names.index("MLII")
        perm = [i] + [j for j in range(len(names)) if j != i]
        signal, names = signal[:, perm], tuple(names[j] for j in perm)
    return signal, names


def extract(protocol: Protocol, folder: Path) -> BeatSet:
    """Cut, label and normalise the beats of every record (no cache)."""
    parts, lead_names, rr_parts = [], {}, []
    class_of = protocol.class_of
    before = timebase.to_samples(protocol.before_s, protocol.fs)
    after = timebase.to_samples(protocol.after_s, protocol.fs)
    n_leads = None
    for i, name in enumerate(protocol.records, 1):
        rec = wfdb_io.read_record(folder, name, fs=protocol.fs)
        signal, names = _order_leads(rec, protocol.lead_order)
        if n_leads is None:
            n_leads = signal.shape[1]
        elif signal.shape[1] != n_leads:
            raise RecordError(name, f"has {signal.shape[1]} leads, earlier records have {n_leads}")
        rb = beats_lib.extract_record_beats(
            signal,
            rec.ann_samples,
            rec.ann_symbols,
            keep_symbols=protocol.keep_symbols,
            window=protocol.window,
            boundary=protocol.boundary,
            skip_first_last=protocol.skip_first_last,
            max_len=protocol.max_len,
            before=before,
            after=after,
        )
        if protocol.rr_features:
            rr_parts.append(_record_rr(protocol, rec, rb.sample, name))
        parts.append((name, rb))
        lead_names[name] = names
        log.debug("record %s: %d beats (%d/%d)", name, len(rb.r), i, len(protocol.records))
    if protocol.max_len is None and protocol.window == "midpoint":
        width = max(p.x.shape[1] for _, p in parts)
        parts = [(n, _pad_to(p, width)) for n, p in parts]
    cat = {f: np.concatenate([getattr(p, f) for _, p in parts]) for f in ("x", "lo", "hi", "r", "sample", "symbol", "rr_prev", "rr_next")}
    name_len = max((len(n) for n, _ in parts), default=1)
    record = np.concatenate([np.full(len(p.r), n, dtype=f"U{name_len}") for n, p in parts])
    y = np.array([class_of[s] for s in cat["symbol"]], np.int32) if len(record) else np.zeros(0, np.int32)
    valid = beats_lib.valid_mask(cat["lo"], cat["hi"], cat["x"].shape[1])
    x = beats_lib.normalise(cat.pop("x"), valid, protocol.normalisation)
    rr = np.concatenate(rr_parts) if rr_parts else np.zeros((len(y), 0), np.float32)
    return BeatSet(
        x=x, y=y, classes=tuple(protocol.classes), record=record, fs=float(protocol.fs),
        lead_names=lead_names, protocol=_json_roundtrip(protocol.to_dict()), rr=rr,
        rr_names=tuple(protocol.rr_features), **cat,
    )


def _record_rr(protocol: Protocol, rec: wfdb_io.RecordData, samples: np.ndarray, name: str) -> np.ndarray:
    """f32[N, F] the protocol's RR features of one record's kept beats (``ecgjax.data.rr``)."""
    try:
        feats = rr_lib.record_features(
            rec.ann_samples, rec.ann_symbols, samples, protocol.fs,
            local_beats=protocol.rr_local_beats, long_s=protocol.rr_long_s, ref_beats=protocol.rr_ref_beats,
            reference=protocol.rr_reference,
        )
    except ValueError as e:
        raise RecordError(name, f"RR features: {e}") from e
    cols = [rr_lib.FEATURES.index(f) for f in protocol.rr_features]
    return feats[:, cols]


def _json_roundtrip(d: dict) -> dict:
    """``d`` as it reads back from the cache's JSON (tuples become lists), so a
    fresh and a cached BeatSet carry equal ``protocol`` dicts."""
    return json.loads(json.dumps(d))


def _pad_to(rb: beats_lib.RecordBeats, width: int) -> beats_lib.RecordBeats:
    pad = width - rb.x.shape[1]
    return dataclasses.replace(rb, x=np.pad(rb.x, ((0, 0), (0, pad), (0, 0))))


def load_beats(
    protocol: Protocol | str,
    data_dir: str | os.PathLike | None = None,
    *,
    cache: str | os.PathLike | None | bool = None,
    download: bool = True,
) -> BeatSet:
    """Beats of ``protocol``, from the cache when the record files are unchanged.

    Args:
      protocol: a ``Protocol`` (``ecgjax.data.protocols.get(name, **overrides)``) or a preset's name.
      data_dir: data root (overrides ``$ECGJAX_DATA_DIR``).
      cache: cache folder; ``None`` uses ``$ECGJAX_CACHE_DIR`` or the user
        cache; ``False`` disables caching.
      download: download the database from PhysioNet when it is absent.

    Returns:
      BeatSet.
    """
    if isinstance(protocol, str):
        protocol = get_protocol(protocol)
    folder = locate.find_database(protocol.database, data_dir, download=download)
    t0 = time.perf_counter()
    sums = locate.read_sha256sums(folder)
    checksums = {r: locate.record_checksums(folder, r, sums) for r in protocol.records}
    path = None
    if cache is not False:
        key = cache_key(protocol, checksums)
        path = cache_dir(None if cache is None or cache is True else cache) / f"{protocol.name}-{key}.npz"
        if path.exists():
            try:
                out = BeatSet.load(path, key)
                want = _json_roundtrip(protocol.to_dict())
                if _semantic_fields(out.protocol) != _semantic_fields(want):
                    raise DataError(f"beat cache {path} holds another protocol")
                out = dataclasses.replace(out, protocol=want)  # the same beats; the caller's name and split
                log.info("loaded %d %s beats from cache %s (%.2f s)", len(out), protocol.name, path, time.perf_counter() - t0)
                return out
            except DataError as e:  # damaged, foreign or from another version: rebuild it
                log.warning("%s; rebuilding it", e)
        check_writable(path.parent, "beat cache folder (--cache-dir / $ECGJAX_CACHE_DIR)")
    out = extract(protocol, folder)
    out.check(f"beats extracted from {folder}")
    log.info("extracted %d %s beats from %s (%.2f s)", len(out), protocol.name, folder, time.perf_counter() - t0)
    if path is not None:
        try:
            out.save(path, key)
        except OSError as e:  # the folder filled up during extraction: keep the beats, skip the cache
            log.warning("could not write the beat cache %s (%s); continuing without it", path, e.strerror or e)
    return out
