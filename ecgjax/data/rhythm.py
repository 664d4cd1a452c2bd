"""Rhythm augmentation: real beats re-sequenced into synthetic ectopic-rich rhythms, RR features recomputed.

A supraventricular beat is told from a normal one mostly by its prematurity
against the record's rhythm (``ecgjax.data.rr``). DS1 holds no record whose
rhythm is *dominated* by ectopic beats (DS2's record 232 is: most of its beats
are S), and there the causal running reference of the ``*_norm`` features is
built from the ectopic beats themselves. This module gives training such
rhythms without inventing waveforms:

* ``augment_rhythm`` draws a synthetic rhythm (beat times and which beats are
  ectopic): bigeminy (sinus, ectopic, ...), trigeminy (sinus, sinus,
  ectopic, ...) or runs (stretches of sinus beats and runs of ectopic beats,
  ectopic share drawn in ``RUN_SHARES``), on the record's own sinus cycle with
  beat-to-beat jitter and a slow drift; an ectopic beat comes at a coupling
  interval ``c`` x the cycle (``COUPLING``, one per sequence, runs of ectopic
  beats at that interval), and the sinus beat after an S run after a
  non-compensatory pause (``S_PAUSE`` x the cycle, sinus reset), after a V run
  after a full compensatory pause (the two intervals around a single V beat sum
  to two cycles).
* ``resequence`` fills such a rhythm with real beats of *one* training record:
  each sinus position takes a random N beat of the record, each ectopic
  position a random beat of the sequence's ectopic class (S or V) of the same
  record (with replacement), and computes the RR features of the synthetic beat
  times with the same vectorised code as the real features
  (``ecgjax.data.rr.beat_features``, the protocol's settings: causal running
  references included).
* ``augment`` appends those beats to a ``BeatSet`` (the waveform channels of
  the real beat, the new RR features in the RR channels) and returns the
  training indices with them: the waveform is the real beat, only its
  rhythm context changes. When the leads are template-subtracted
  (``DataConfig.template_beats``: each beat minus the mean of its record's
  preceding beats), that template is part of the context: each sequence's is
  recomputed from the source beats' leads in the sequence's own order, as the
  pipeline would on a record with that rhythm (``sequence_inputs``). Sources
  are training beats only, so no validation, test or DS2 beat is ever used.

``synthetic_record`` is the DS1 screen's ectopic-dominant rhythm
(``experiments/ds1_rr_screen.py``; ``ecgjax.interpatient.rhythm_screen`` fills it
with held-out records' real beats): runs of S beats with a target S fraction. Its
family overlaps the ``runs`` pattern here, so a model trained with this
augmentation is screened on rhythms of the kind it was trained on (with beats of
patients it never saw).

Shape vocabulary: ``K`` beats of one synthetic sequence, ``M`` appended beats,
``N`` beats of the ``BeatSet``, ``T`` samples, ``L`` leads, ``F`` RR features.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ecgjax.data import beats as beats_lib
from ecgjax.data import rr as rr_lib
from ecgjax.data import template

PATTERNS = ("bigeminy", "trigeminy", "runs")
# Ectopic share of a ``runs`` sequence, drawn uniformly (232 has ~78% S beats).
RUN_SHARES = (0.3, 0.85)
# Coupling interval of the ectopic beats, x the sinus cycle (one per sequence, uniform).
COUPLING = (0.55, 0.85)
# Pause before the sinus beat that ends an S run, x the sinus cycle (uniform; non-compensatory).
S_PAUSE = (1.0, 1.5)
# ``augment``'s keyword defaults (``DataConfig.rhythm_aug`` overrides them).
DEFAULTS = {"fraction": 1.0, "n_beats": 400, "min_ectopic": 10, "classes": ("S", "V")}


def augment_rhythm(rng: np.random.Generator, n_beats: int, pattern: str, ectopic: str, cycle: float) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic rhythm (module docstring).

    Args:
      rng: the generator (the only source of randomness).
      n_beats: K, beats in the sequence (>= 2).
      pattern: one of ``PATTERNS``.
      ectopic: ``"S"`` (non-compensatory pause after a run) or ``"V"`` (compensatory pause).
      cycle: sinus RR interval, seconds (> 0).

    Returns:
      (times f64[K] seconds, increasing; ectopic bool[K]). The first beat is sinus.
    """
    if pattern not in PATTERNS:
        raise ValueError(f"rhythm pattern must be one of {PATTERNS}, got {pattern!r}")
    if ectopic not in ("S", "V"):
        raise ValueError(f"ectopic class must be 'S' or 'V', got {ectopic!r}")
    c = rng.uniform(*COUPLING)
    if pattern == "bigeminy":
        lab = np.arange(n_beats) % 2 == 1
    elif pattern == "trigeminy":
        lab = np.arange(n_beats) % 3 == 2
    else:
        share = rng.uniform(*RUN_SHARES)
        mean_n = max(1.0, 1.5 * (1 - share) / share)  # geometric stretch lengths: expected share `share`
        mean_e = mean_n * share / (1 - share)
        out = []
        while len(out) < n_beats:
            out += [False] * int(rng.geometric(1 / mean_n)) + [True] * int(rng.geometric(1 / max(mean_e, 1.0)))
        lab = np.asarray(out[:n_beats])
    lab[0] = False
    prev_e = np.concatenate([[False], lab[:-1]])
    # the interval before each beat, x the cycle: ectopic c; sinus after an ectopic run: the pause; else 1
    pause = rng.uniform(*S_PAUSE, size=n_beats) if ectopic == "S" else np.full(n_beats, 2.0 - c)
    mult = np.where(lab, c, np.where(prev_e, pause, 1.0))
    i = np.arange(n_beats)
    t_cycle = cycle * (1 + 0.05 * np.sin(2 * np.pi * i / 300 + rng.uniform(0, 2 * np.pi))) * (1 + 0.03 * rng.standard_normal(n_beats))
    rr = np.maximum(mult * t_cycle, 0.2)
    rr[0] = 0.0
    return np.cumsum(rr), lab


def synthetic_record(rng: np.random.Generator, s_fraction: float, n_beats: int = 1500) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic rhythm with a given fraction of supraventricular ectopic beats (like DS2's record 232,
    where most beats are S): (beat times f64[K] in s, labels i64[K]: 0 N, 1 S).

    Sinus cycle T ~ U(0.75, 1.25) s per record (3% beat-to-beat jitter, 5% slow drift); runs of S beats
    (geometric length) at a coupling interval c T, c ~ U(0.6, 0.8) per record, each run ended by a sinus beat
    after a pause of U(1.0, 1.4) T; stretches of N beats (geometric length) between runs. The mean run and
    stretch lengths are set so that the expected fraction of S beats is ``s_fraction``.
    """
    cycle, c = rng.uniform(0.75, 1.25), rng.uniform(0.6, 0.8)
    mean_n = max(1.5, 1.5 * (1 - s_fraction) / s_fraction)
    mean_s = mean_n * s_fraction / (1 - s_fraction)
    rr, y = [], []
    while len(rr) < n_beats:
        for k in range(rng.geometric(1 / mean_n)):
            rr.append(rng.uniform(1.0, 1.4) if k == 0 and y else 1.0)
            y.append(0)
        for _ in range(rng.geometric(1 / mean_s)):
            rr.append(c)
            y.append(1)
    i = np.arange(len(rr))
    t_cycle = cycle * (1 + 0.05 * np.sin(2 * np.pi * i / 300)) * (1 + 0.03 * rng.standard_normal(len(rr)))
    return np.cumsum(np.asarray(rr) * t_cycle)[:n_beats], np.asarray(y)[:n_beats]


def sequence_features(times: np.ndarray, beats) -> np.ndarray:
    """f32[K, F]: the RR features ``beats.rr_names`` of a beat sequence, with the settings of the protocol
    ``beats`` was extracted with (``ecgjax.data.rr.beat_features``; every beat of the sequence kept)."""
    p = beats.protocol
    f = rr_lib.beat_features(times, local_beats=int(p.get("rr_local_beats", 10)), long_s=float(p.get("rr_long_s", 300.0)),
                             ref_beats=int(p.get("rr_ref_beats", 32)), reference=str(p.get("rr_reference", "median")))
    return f[:, [rr_lib.FEATURES.index(n) for n in beats.rr_names]]


def sequence_inputs(beats, src: np.ndarray, times: np.ndarray, *, leads: np.ndarray | None = None,
                    template_beats: int = 0, template_reference: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """The model inputs of one synthetic sequence: source beats ``src`` i64[K] at beat times ``times`` f64[K].

    Args:
      beats: a ``BeatSet`` with x f32[N, T, L + F] (the leads, then the RR channels).
      src, times: the sequence.
      leads: f32[N, T, >= L] the same beats' leads before template subtraction (extra trailing channels are
        ignored); needed when ``template_beats`` > 0.
      template_beats: 0 when ``beats``' leads are the beats themselves; k when they are each beat minus the mean
        of its record's k preceding beats (``ecgjax.data.template``, ``DataConfig.template_beats``). The
        sequence's leads are then computed the same way in the sequence's own order (the sequence is its own
        record): a beat's input is its difference from the synthetic rhythm's past beats, as the pipeline would
        compute it on a record with that rhythm, not from its source record's.
      template_reference: the template's reference (``ecgjax.data.template.REFERENCES``; ``sinus`` reads the
        sequence's own intervals, the first beat's taken as its next one's).

    Returns:
      (x f32[K, T, L + F]: the sources' leads (template-subtracted in sequence order when ``template_beats``)
      with the sequence's RR features (``sequence_features``) in the RR channels, constant over time;
      rr f32[K, F]).
    """
    src = np.asarray(src, np.int64)
    if "plock" in beats.rr_names:
        raise ValueError("sequence_inputs: the plock feature (DataConfig.atrial_lock_beats) is not recomputed for "
                         "synthetic rhythms; use a data config without it")
    rr = sequence_features(times, beats).astype(np.float32)
    x = beats.x[src].copy()
    n_leads = x.shape[2] - len(beats.rr_names)
    x[:, :, n_leads:] = rr[:, None, :].astype(x.dtype)
    if template_beats:
        if leads is None:
            raise ValueError("sequence_inputs: template_beats > 0 needs the beats' leads before template subtraction (leads=)")
        raw = np.asarray(leads[src])[:, :, :n_leads]
        pre = np.diff(np.asarray(times, np.float64), prepend=np.nan)
        pre[0] = pre[1] if len(pre) > 1 else 0.0
        own = template.template_of(raw, np.zeros(len(src), np.int8), pre, template_beats, template_reference)
        valid = beats_lib.valid_mask(beats.lo[src], beats.hi[src], x.shape[1])
        x[:, :, :n_leads] = ((raw - own) * valid[..., None]).astype(x.dtype)
    return x, rr


def _cycle(beats, idx: np.ndarray) -> float:
    """The sinus cycle (s) of beats ``idx`` of one record: median interval before its N beats."""
    n = idx[beats.y[idx] == beats.classes.index("N")]
    if "pre" in beats.rr_names and len(n):
        return float(np.median(beats.rr[n, beats.rr_names.index("pre")]))
    return float(np.median(beats.rr_prev[n])) / beats.fs if len(n) else 0.8


def resequence(beats, train_idx: np.ndarray, *, seed, fraction: float = 1.0, n_beats: int = 400, min_ectopic: int = 10,
               classes=("S", "V")) -> list[tuple[str, str, str, np.ndarray, np.ndarray]]:
    """Synthetic sequences of real training beats (module docstring).

    Every training record with at least ``min_ectopic`` training beats of an ectopic class in ``classes``
    (and ``min_ectopic`` N beats) gives, with probability ``fraction``, one sequence of ``n_beats`` beats per
    such class, its pattern drawn uniformly from ``PATTERNS`` and its cycle the record's median N interval
    times U(0.85, 1.15).

    Args:
      beats: a ``BeatSet`` with RR features (``rr_names``) and classes holding N and ``classes``.
      train_idx: i64[n] the training beats (the only sources).
      seed: int or sequence of ints (``np.random.SeedSequence``).

    Returns:
      [(record, ectopic class, pattern, source i64[K] (indices into ``beats``, all in ``train_idx``),
      times f64[K])], in record order.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    idx = np.sort(np.asarray(train_idx, np.int64))
    n_cls = beats.classes.index("N")
    out = []
    for rec in sorted(set(beats.record[idx].tolist())):
        mine = idx[beats.record[idx] == rec]
        normal = mine[beats.y[mine] == n_cls]
        for ec in classes:
            pool = mine[beats.y[mine] == beats.classes.index(ec)]
            if len(pool) < min_ectopic or len(normal) < min_ectopic or rng.random() >= fraction:
                continue
            pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
            times, lab = augment_rhythm(rng, n_beats, pattern, ec, _cycle(beats, mine) * rng.uniform(0.85, 1.15))
            src = np.where(lab, rng.choice(pool, n_beats), rng.choice(normal, n_beats))
            out.append((rec, ec, pattern, src.astype(np.int64), times))
    return out


def append_sequences(beats, sequences, *, leads: np.ndarray | None = None, template_beats: int = 0,
                     template_reference: str = "mean") -> tuple:
    """The ``BeatSet`` with the beats of ``sequences`` (``(source i64[K], times f64[K])`` pairs) appended.

    Each appended beat is its source beat (waveform channels, label, record, symbol, window) with the RR
    features of its synthetic sequence (``sequence_features``) in ``rr`` and in the RR channels of ``x``
    (trailing the leads, as ``ecgjax.data.rr.append_channels`` put them), and ``rr_prev`` / ``rr_next``
    the synthetic intervals in samples. With ``template_beats`` the waveform channels are the source leads
    minus the sequence's own running template (``sequence_inputs``; ``leads``: before subtraction).

    Returns:
      (BeatSet of N + M beats, the first N unchanged; i64[M] the appended beats' indices).
    """
    if not sequences:
        return beats, np.zeros(0, np.int64)
    src = np.concatenate([s for s, _ in sequences])
    parts = [sequence_inputs(beats, s, t, leads=leads, template_beats=template_beats, template_reference=template_reference)
             for s, t in sequences]
    x_new, rr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    d = [np.diff(t) for _, t in sequences]
    rr_prev = np.concatenate([np.concatenate([x[:1], x]) for x in d])
    rr_next = np.concatenate([np.concatenate([x, x[-1:]]) for x in d])
    new = {name: getattr(beats, name)[src] for name in beats._ARRAYS}
    new.update(x=x_new, rr=rr, rr_prev=np.round(rr_prev * beats.fs).astype(beats.rr_prev.dtype),
               rr_next=np.round(rr_next * beats.fs).astype(beats.rr_next.dtype))
    cat = {name: np.concatenate([getattr(beats, name), new[name]]) for name in beats._ARRAYS}
    return dataclasses.replace(beats, **cat), np.arange(len(beats), len(beats) + len(src), dtype=np.int64)


def augment(beats, train_idx: np.ndarray, *, seed, leads: np.ndarray | None = None, template_beats: int = 0,
            template_reference: str = "mean", **kwargs) -> tuple:
    """Rhythm augmentation of a training set: ``resequence`` then ``append_sequences``.

    Args:
      beats: a ``BeatSet`` with RR features (x f32[N, T, L + F]).
      train_idx: i64[n] training indices into ``beats``.
      seed: int or sequence of ints.
      leads, template_beats, template_reference: as ``sequence_inputs`` (each sequence's template in its own order).
      **kwargs: ``resequence``'s (``DEFAULTS``).

    Returns:
      (BeatSet of N + M beats, i64[n + M] training indices: ``train_idx`` then the appended beats,
      the sequences' summary ``[{"record", "class", "pattern", "n", "n_ectopic"}]``).
    """
    seqs = resequence(beats, train_idx, seed=seed, **{**DEFAULTS, **kwargs})
    out, new = append_sequences(beats, [(s, t) for _, _, _, s, t in seqs], leads=leads, template_beats=template_beats,
                                template_reference=template_reference)
    info = [{"record": r, "class": c, "pattern": p, "n": int(len(s)), "n_ectopic": int(np.sum(beats.y[s] == beats.classes.index(c)))}
            for r, c, p, s, _ in seqs]
    return out, np.concatenate([np.asarray(train_idx, np.int64), new]), info


def check_kwargs(kwargs: dict, where: str = "data.rhythm_aug") -> None:
    """Raise ``ValueError`` naming the key unless ``kwargs`` are valid ``augment`` keywords."""
    bad = sorted(set(kwargs) - set(DEFAULTS))
    if bad:
        raise ValueError(f"{where}: unknown key(s) {bad}; use {sorted(DEFAULTS)}")
    k = {**DEFAULTS, **kwargs}
    if not (isinstance(k["fraction"], (int, float)) and 0 <= k["fraction"] <= 1):
        raise ValueError(f"{where}.fraction={k['fraction']!r} must be in [0, 1]")
    for key in ("n_beats", "min_ectopic"):
        if isinstance(k[key], bool) or not isinstance(k[key], int) or k[key] < (2 if key == "n_beats" else 1):
            raise ValueError(f"{where}.{key}={k[key]!r} must be a whole number >= {2 if key == 'n_beats' else 1}")
    if isinstance(k["classes"], str) or not set(k["classes"]) <= {"S", "V"} or not k["classes"]:
        raise ValueError(f"{where}.classes={k['classes']!r} must be a non-empty list of 'S' and 'V'")
