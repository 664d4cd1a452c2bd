"""The data a run trains and evaluates on: beats, split, balanced training order.

``prepare(cfg.data, seed)`` is used by the training loop and by ``load_run``,
so both see the same beats and the same split. ``synthetic_beats`` makes a
small ``BeatSet`` with class-specific bumps (tests and CI; no download).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ecgjax.config import DataConfig
from ecgjax.data import BeatSet, Split, balance, load_beats, make_split, protocols, rhythm, rr, template
from ecgjax.errors import ConfigError

log = logging.getLogger("ecgjax.train.data")


@dataclasses.dataclass(frozen=True)
class Prepared:
    """Attributes:
    beats: the BeatSet (x f32[N, T, L]).
    split: index arrays into ``beats`` (after ``max_beats``).
    train_order: i64[K] balanced training indices (with repeats), seeded.
    """

    beats: BeatSet
    split: Split
    train_order: np.ndarray


def synthetic_beats(
    *, n_records: int = 8, beats_per_record: int = 40, t: int = 32, leads: int = 2,
    n_classes: int = 3, noise: float = 0.3, seed: int = 0,
) -> BeatSet:
    """Beats with a class-specific Gaussian bump (class c peaks at t*(c+1)/(C+1)) plus noise.

    Returns a ``BeatSet`` with x f32[N, T, L], N = n_records * beats_per_record;
    records are named ``s000``, ``s001``...; classes ``c0``...; class sizes are
    imbalanced (class 0 is the majority).
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n = n_records * beats_per_record
    p = np.arange(n_classes, 0, -1, dtype=np.float64) ** 2
    y = rng.choice(n_classes, size=n, p=p / p.sum()).astype(np.int32)
    tt = np.arange(t)[None, :]
    centre = t * (y[:, None] + 1) / (n_classes + 1)
    bump = np.exp(-0.5 * ((tt - centre) / (t / 16 + 0.5)) ** 2)
    x = bump[:, :, None] * np.linspace(1.0, 0.5, leads)[None, None, :] + noise * rng.standard_normal((n, t, leads))
    record = np.repeat(np.array([f"s{i:03d}" for i in range(n_records)]), beats_per_record)
    zeros = np.zeros(n, np.int32)
    return BeatSet(
        x=x.astype(np.float32), y=y, classes=tuple(f"c{i}" for i in range(n_classes)), record=record,
        sample=np.arange(n, dtype=np.int64), symbol=np.array(["N"] * n), r=zeros + t // 2, lo=zeros,
        hi=zeros + t, rr_prev=zeros + t, rr_next=zeros + t, fs=360.0,
        lead_names={r: tuple(f"lead{i}" for i in range(leads)) for r in np.unique(record)},
        protocol={"name": "synthetic", "n_records": n_records, "beats_per_record": beats_per_record, "t": t,
                  "leads": leads, "n_classes": n_classes, "noise": noise, "seed": seed},
    )


def load(cfg: DataConfig, *, data_dir=None, cache=None) -> BeatSet:
    """The BeatSet named by ``cfg`` (a protocol preset or ``synthetic``).

    With ``cfg.template_beats`` the leads are each beat minus its record's
    running template (``ecgjax.data.template``). A protocol with RR features
    gives x f32[N, T, L+F]: the features appended as channels after the L
    leads (``ecgjax.data.rr.append_channels``).
    """
    return _load(cfg, data_dir=data_dir, cache=cache)[0]


def raw_leads(cfg: DataConfig, *, data_dir=None, cache=None) -> np.ndarray | None:
    """f32[N, T, L]: the leads of ``load(cfg)``'s beats before template subtraction, or None when
    ``cfg.template_beats`` is 0 (the leads are the beats themselves). For re-sequenced rhythms, whose
    template is recomputed in their own order (``ecgjax.data.rhythm.sequence_inputs``)."""
    if cfg.protocol == "synthetic" or not cfg.template_beats:
        return None
    return _read(cfg, data_dir=data_dir, cache=cache).x


def _read(cfg: DataConfig, *, data_dir=None, cache=None) -> BeatSet:
    """The beats as the protocol (or ``synthetic``) gives them: no template subtraction, no RR channels."""
    over = dict(cfg.protocol_overrides)
    if cfg.protocol == "synthetic":
        try:
            beats = synthetic_beats(**over)
        except TypeError as e:
            raise ConfigError(f"data.protocol_overrides for synthetic: {e}") from e
        if cfg.limit_records:
            keep = sorted(set(beats.record.tolist()))[: cfg.limit_records]
            beats = beats.subset(np.flatnonzero(np.isin(beats.record, keep)))
        return beats
    proto = protocols.get(cfg.protocol)
    if "records" in over:
        over["records"] = tuple(str(r) for r in over["records"])
    if cfg.limit_records:
        over["records"] = tuple(over.get("records", proto.records))[: cfg.limit_records]
    return load_beats(proto.replace(**over) if over else proto, data_dir, cache=cache)


def _load(cfg: DataConfig, *, data_dir=None, cache=None) -> tuple[BeatSet, np.ndarray | None]:
    """(``load``'s BeatSet, ``raw_leads``'s array) from one read of the beats."""
    beats = _read(cfg, data_dir=data_dir, cache=cache)
    if cfg.protocol == "synthetic":
        return beats, None
    leads = None
    if cfg.atrial_lock_beats:  # from the leads as recorded, before the template subtraction removes what it reads
        beats = with_atrial_lock(beats, cfg.atrial_lock_beats)
    if cfg.template_beats:
        leads = beats.x
        beats = template.subtract_template(beats, cfg.template_beats, cfg.template_reference)
    # RR features ride as extra input channels after the leads (ecgjax.models.rr_net)
    return (rr.append_channels(beats) if beats.rr_names else beats), leads


def with_atrial_lock(beats: BeatSet, k: int) -> BeatSet:
    """``beats`` with one more RR feature, ``plock`` (``ecgjax.data.template.atrial_lock`` of its first lead over
    each beat's ``k`` preceding beats), after the protocol's: rr f32[N, F + 1]."""
    r = np.unique(beats.r)
    if len(r) != 1:
        raise ConfigError(f"data.atrial_lock_beats needs one R position in every window; these beats have {len(r)}")
    plock = template.atrial_lock(beats.x, beats.record, int(r[0]), beats.fs, k)
    return dataclasses.replace(beats, rr=np.concatenate([beats.rr, plock[:, None]], axis=1).astype(np.float32),
                               rr_names=(*beats.rr_names, "plock"))


def _cap(idx: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or len(idx) <= n:
        return idx
    return np.sort(rng.choice(idx, size=n, replace=False)).astype(np.int64)


def prepare(cfg: DataConfig, *, seed: int, data_dir=None, cache=None) -> Prepared:
    """Beats, the split (capped by ``max_beats``), and the balanced training order.

    Balancing uses the training part only, so no resampled duplicate can reach
    the validation or test part. With ``cfg.rhythm_aug`` the training beats are
    also re-sequenced into synthetic rhythms (``ecgjax.data.rhythm.augment``,
    seeded by ``(seed, cfg.split_seed)``): those beats are appended to
    ``beats`` (after the N real ones, so every real index is unchanged) and to
    the training part, each sequence's leads minus its own running template
    when ``cfg.template_beats`` (``ecgjax.data.rhythm.sequence_inputs``);
    validation and test are the real beats.
    """
    beats, leads = _load(cfg, data_dir=data_dir, cache=cache)
    split = make_split(cfg.split, beats.y, beats.record, seed=cfg.split_seed, **cfg.split_kwargs)
    if cfg.max_beats is not None:
        rng = np.random.default_rng(np.random.SeedSequence([cfg.split_seed, 7]))
        split = dataclasses.replace(
            split, train=_cap(split.train, cfg.max_beats, rng), val=_cap(split.val, cfg.max_beats, rng),
            test=_cap(split.test, cfg.max_beats, rng),
        )
    for part, idx in split.parts().items():
        if len(idx) == 0:
            raise ConfigError(f"the {part} part of split {split.name!r} is empty for this data config")
    if cfg.rhythm_aug:
        if not beats.rr_names:
            raise ConfigError(f"data.rhythm_aug needs a protocol with RR features; {cfg.protocol!r} has none")
        beats, train, info = rhythm.augment(beats, split.train, seed=[seed, cfg.split_seed, 11], leads=leads,
                                            template_beats=cfg.template_beats, template_reference=cfg.template_reference,
                                            **dict(cfg.rhythm_aug))
        split = dataclasses.replace(split, train=train)
        log.info("rhythm augmentation: %d synthetic sequences, %d beats appended to the training part (%s)", len(info),
                 sum(d["n"] for d in info), ", ".join(f"{d['record']} {d['class']} {d['pattern']}" for d in info))
    order = balance(beats.y, split.train, mode=cfg.balance, seed=seed)
    return Prepared(beats=beats, split=split, train_order=order)
