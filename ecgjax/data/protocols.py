"""Protocol presets: which records, which beats, which window, which labels.

A :class:`Protocol` is a frozen, hashable description of a beat extraction.
Its fields (with the record checksums) are the cache key, so two runs with the
same protocol read the same cached arrays.

Presets (``get(name)``, ``available()``):

* ``jones2020``: the paper as it describes itself (non-beat marks removed
  before the window boundaries are computed, case-exact symbols).
  104,222 beats.
* ``jones2020_code``: what the authors' code did (non-beat marks kept as window
  boundaries; ``a`` merged into A and ``e`` into E by a case-insensitive file
  system). 105,079 beats.
* ``aami``: AAMI EC57 classes N, S, V, F, Q on the de Chazal et al. (2004)
  DS1/DS2 records, paced records excluded, a fixed R-centred window and
  per-lead normalisation that ignores padding. DS1 51,021 and DS2 49,712 beats.
* ``aami_rr``: ``aami`` plus the RR-interval features of every beat
  (``ecgjax.data.rr``; causal: past beats and the next one only).

Leads: channel 0 is MLII in 45 of 48 records. ``lead_order="as_stored"`` keeps
the file's order (the paper); ``"mlii_first"`` swaps record 114 (V5, MLII) so
MLII is lead 0. Records 102 and 104 have no MLII (V5, V2): they are paced
records, excluded under ``aami``; under the Jones presets they are kept as
stored, as the paper did (reference_pipeline.md, flaw 12).
"""

from __future__ import annotations

import dataclasses

from ecgjax.data.beats import NORMALISATIONS
from ecgjax.data.rr import DEFAULT_FEATURES, FEATURES
from ecgjax.data.rr import REFERENCES as RR_REFERENCES
from ecgjax.errors import ConfigError

MITDB_RECORDS = (
    "100 101 102 103 104 105 106 107 108 109 111 112 113 114 115 116 117 118 119 121 122 123 124 "
    "200 201 202 203 205 207 208 209 210 212 213 214 215 217 219 220 221 222 223 228 230 231 232 233 234"
).split()
PACED_RECORDS = ("102", "104", "107", "217")
DS1 = tuple(
    "101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split()
)
DS2 = tuple(
    "100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split()
)
JONES_LPO_TEST = ("104", "113", "119", "208", "210")


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How beats are cut out of records and labelled.

    Attributes:
      name: preset name (for display; not part of the semantics).
      database: PhysioNet database folder name.
      records: records to read, in order.
      classes: class names in index order.
      symbol_map: (symbol, class) pairs; symbols not listed are dropped (but
        may still act as window boundaries).
      window: ``"midpoint"`` or ``"fixed"`` (see ``ecgjax.data.beats``).
      boundary: ``"beats"`` or ``"all"`` annotations as midpoint boundaries.
      skip_first_last: skip the first and last boundary annotation per record.
      max_len: midpoint windows longer than this are dropped; padded to it.
      before_s, after_s: fixed window extent around R, in seconds.
      normalisation: ``minmax_beat`` | ``minmax_lead`` | ``zscore_lead`` | ``none``.
      lead_order: ``"as_stored"`` or ``"mlii_first"``.
      fs: sampling rate the beats are produced at; records at another rate are
        resampled (``wfdb.processing.resample_sig``: FFT resampling of
        the signal, annotation samples rescaled).
      rr_features: RR-interval features stored with each beat (names from
        ``ecgjax.data.rr.FEATURES``, in that order; empty: none), computed over
        all beat annotations with a local mean over ``rr_local_beats`` beats,
        a long-run mean over ``rr_long_s`` seconds and the ``*_norm`` features
        over ``rr_reference``: the running ``"median"`` or ``"upper75"``
        (75th percentile) of the last ``rr_ref_beats`` RR intervals, or the
        running ``"mean"`` of all past ones (``ecgjax.data.rr``).
      default_split: split used when none is named.
    """

    name: str
    records: tuple[str, ...]
    classes: tuple[str, ...]
    symbol_map: tuple[tuple[str, str], ...]
    database: str = "mitdb"
    window: str = "midpoint"
    boundary: str = "beats"
    skip_first_last: bool = True
    max_len: int | None = 430
    before_s: float = 0.25
    after_s: float = 0.45
    normalisation: str = "minmax_beat"
    lead_order: str = "as_stored"
    fs: float = 360.0
    rr_features: tuple[str, ...] = ()
    rr_local_beats: int = 10
    rr_long_s: float = 300.0
    rr_ref_beats: int = 32
    rr_reference: str = "median"
    default_split: str = "holdout"

    def __post_init__(self):
        _check_choice("window", self.window, ("midpoint", "fixed"))
        _check_choice("boundary", self.boundary, ("beats", "all"))
        _check_choice("normalisation", self.normalisation, NORMALISATIONS)
        _check_choice("lead_order", self.lead_order, ("as_stored", "mlii_first"))
        unknown = {c for _, c in self.symbol_map} - set(self.classes)
        if unknown:
            raise ConfigError(f"protocol {self.name}: symbol_map names classes {sorted(unknown)} not in classes")
        if not self.records or isinstance(self.records, str):
            raise ConfigError(f"protocol {self.name}: records must be a non-empty tuple of names, got {self.records!r}")
        if self.max_len is not None and self.max_len <= 0:
            raise ConfigError(f"protocol {self.name}: max_len must be positive or None, got {self.max_len}")
        if self.before_s < 0 or self.after_s <= 0:
            raise ConfigError(
                f"protocol {self.name}: need before_s >= 0 and after_s > 0, got {self.before_s}, {self.after_s}"
            )
        if self.fs <= 0:
            raise ConfigError(f"protocol {self.name}: fs must be positive, got {self.fs}")
        if isinstance(self.rr_features, str) or [f for f in FEATURES if f in self.rr_features] != list(self.rr_features):
            raise ConfigError(
                f"protocol {self.name}: rr_features={self.rr_features!r}; use names from {list(FEATURES)} in that order"
            )
        _check_choice("rr_reference", self.rr_reference, RR_REFERENCES)
        if self.rr_local_beats < 1 or self.rr_long_s <= 0 or self.rr_ref_beats < 1:
            raise ConfigError(
                f"protocol {self.name}: need rr_local_beats >= 1, rr_long_s > 0 and rr_ref_beats >= 1, "
                f"got {self.rr_local_beats}, {self.rr_long_s}, {self.rr_ref_beats}"
            )

    @property
    def keep_symbols(self) -> frozenset[str]:
        return frozenset(s for s, _ in self.symbol_map)

    @property
    def class_of(self) -> dict[str, int]:
        """Symbol -> class index."""
        return {s: self.classes.index(c) for s, c in self.symbol_map}

    def replace(self, **changes) -> "Protocol":
        """A copy with fields changed; unknown field names raise ConfigError."""
        names = {f.name for f in dataclasses.fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ConfigError(f"protocol {self.name}: unknown field(s) {bad}; fields are {sorted(names)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_choice(field: str, value, choices):
    if value not in choices:
        raise ConfigError(f"protocol field {field}={value!r}; choose one of {list(choices)}")


_JONES_CLASSES = ("A", "E", "j", "L", "N", "P", "R", "V")
_JONES_MAP = tuple((s, s) for s in "AEjLNRV") + (("/", "P"),)

_PRESETS: dict[str, Protocol] = {
    "jones2020": Protocol(
        name="jones2020",
        records=tuple(MITDB_RECORDS),
        classes=_JONES_CLASSES,
        symbol_map=_JONES_MAP,
    ),
    "jones2020_code": Protocol(
        name="jones2020_code",
        records=tuple(MITDB_RECORDS),
        classes=_JONES_CLASSES,
        symbol_map=_JONES_MAP + (("a", "A"), ("e", "E")),
        boundary="all",
    ),
    "aami": Protocol(
        name="aami",
        records=tuple(r for r in MITDB_RECORDS if r not in PACED_RECORDS),
        classes=("N", "S", "V", "F", "Q"),
        symbol_map=(
            ("N", "N"), ("L", "N"), ("R", "N"), ("e", "N"), ("j", "N"),
            ("A", "S"), ("a", "S"), ("J", "S"), ("S", "S"),
            ("V", "V"), ("E", "V"),
            ("F", "F"),
            ("/", "Q"), ("f", "Q"), ("Q", "Q"),
        ),
        window="fixed",
        skip_first_last=False,
        max_len=None,
        normalisation="zscore_lead",
        lead_order="mlii_first",
        default_split="ds1ds2",
    ),
}
# ``aami`` with the RR-interval features of every beat (ecgjax.data.rr): the
# same beats, windows and normalisation.
_PRESETS["aami_rr"] = _PRESETS["aami"].replace(name="aami_rr", rr_features=DEFAULT_FEATURES)


def available() -> list[str]:
    """Names of the protocol presets."""
    return sorted(_PRESETS)


def get(name: str, **overrides) -> Protocol:
    """A preset by name, with fields optionally overridden."""
    if name not in _PRESETS:
        raise ConfigError(f"unknown protocol {name!r}; available: {', '.join(available())}")
    p = _PRESETS[name]
    return p.replace(**overrides) if overrides else p
