"""Train / validation / test splits and training-set balancing, all seeded.

Every function is pure: arrays and a seed in, sorted index arrays out. The same
seed gives the same indices, bit for bit. ``check_patient_disjoint`` guards
every patient-wise split.

* ``holdout``: the paper's beat-level 65/10/25 split, stratified by class. It
  **mixes patients**: beats of every record land in train and test, so it
  measures memorisation of patients as much as generalisation
  (reference_pipeline.md, flaw 3). Kept to reproduce the paper.
* ``lpo``: the paper's leave-patients-out split: records 104, 113, 119, 208,
  210 as test; validation drawn by record from the rest.
* ``ds1ds2``: de Chazal et al. (2004): train on DS1, test on DS2; validation
  drawn by record from DS1.
* ``ds1``: DS1 only, for a run that must never read DS2 (the inter-patient
  benchmark's training phase, ``ecgjax.interpatient``): validation drawn by
  record from DS1, or fold ``fold`` of ``k`` patient-wise folds of DS1, and the
  test part *is* the validation part, so the run's own test report is a
  patient-wise DS1 validation score.
* ``kfold``: patient-wise k-fold over the records.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ecgjax.data.protocols import DS1, DS2, JONES_LPO_TEST
from ecgjax.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Split:
    """Index arrays (i64, sorted) into a BeatSet."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    name: str = ""
    patient_wise: bool = True

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed))


def holdout(y: np.ndarray, *, seed: int = 0, fractions=(0.65, 0.10, 0.25)) -> Split:
    """Beat-level split stratified by class (mixes patients; the paper's hold-out).

    Args:
      y: i32[N] class labels.
      fractions: (train, val, test), summing to 1.
    """
    if abs(sum(fractions) - 1) > 1e-9:
        raise ConfigError(f"holdout fractions must sum to 1, got {fractions}")
    rng = _rng(seed)
    parts = [[], [], []]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(fractions[2] * len(idx)))
        n_val = int(round(fractions[1] * len(idx)))
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    tr, va, te = (np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts)
    return Split(tr, va, te, name="holdout", patient_wise=False)


def _by_records(record: np.ndarray, train_r, val_r, test_r, name: str) -> Split:
    def pick(rs):
        return np.flatnonzero(np.isin(record, list(rs))).astype(np.int64)

    s = Split(pick(train_r), pick(val_r), pick(test_r), name=name)
    check_patient_disjoint(s, record)
    return s


def _draw_val(rng, records: list[str], n_val: int) -> list[str]:
    if n_val >= len(records):
        raise ConfigError(f"cannot draw {n_val} validation records from {len(records)}")
    return sorted(rng.choice(sorted(records), size=n_val, replace=False).tolist())


def lpo(record: np.ndarray, *, seed: int = 0, n_val_records: int = 4, test_records=JONES_LPO_TEST) -> Split:
    """The paper's leave-patients-out split; validation is ``n_val_records`` other records."""
    rest = sorted(set(record.tolist()) - set(test_records))
    val = _draw_val(_rng(seed), rest, n_val_records)
    return _by_records(record, set(rest) - set(val), val, test_records, "lpo")


def ds1ds2(record: np.ndarray, *, seed: int = 0, n_val_records: int = 4) -> Split:
    """de Chazal et al. (2004) inter-patient split; validation by record from DS1."""
    present = set(record.tolist())
    ds1 = sorted(present & set(DS1))
    val = _draw_val(_rng(seed), ds1, n_val_records)
    return _by_records(record, set(ds1) - set(val), val, present & set(DS2), "ds1ds2")


def ds1(record: np.ndarray, *, seed: int = 0, n_val_records: int = 4, fold: int | None = None, k: int = 5) -> Split:
    """Train and validate on DS1 only; ``test`` is the validation part (no DS2 record is used).

    Without ``fold``: ``n_val_records`` DS1 records drawn by ``seed`` validate. With
    ``fold``: the DS1 records, permuted by ``seed``, are cut into ``k`` groups
    (``np.array_split``) and group ``fold`` validates (``n_val_records`` is then
    unused), so the ``k`` folds' validation parts partition DS1: patient-wise
    cross-validation, every DS1 beat predicted once out of record.

    Raises:
      ConfigError: a record outside DS1 is present, or ``fold`` is not in [0, k).
    """
    present = set(record.tolist())
    if present - set(DS1):
        raise ConfigError(f"split ds1 takes DS1 records only; got {sorted(present - set(DS1))} (load the protocol with records=DS1)")
    if fold is None:
        val = _draw_val(_rng(seed), sorted(present), n_val_records)
        name = "ds1"
    else:
        if not 0 <= fold < k or k > len(present):
            raise ConfigError(f"split ds1: fold {fold} of k={k} must satisfy 0 <= fold < k <= {len(present)} (the records present)")
        val = np.array_split(_rng(seed).permutation(sorted(present)), k)[fold].tolist()
        name = f"ds1_fold{fold}of{k}"
    s = _by_records(record, present - set(val), val, (), name)
    return dataclasses.replace(s, test=s.val.copy())


def kfold(record: np.ndarray, *, fold: int, k: int = 5, seed: int = 0, n_val_records: int = 4) -> Split:
    """Patient-wise k-fold: fold ``fold`` of ``k`` record groups is the test set."""
    if not 0 <= fold < k:
        raise ConfigError(f"fold must be in [0, {k}), got {fold}")
    rng = _rng(seed)
    recs = rng.permutation(sorted(set(record.tolist())))
    groups = np.array_split(recs, k)
    test = groups[fold].tolist()
    rest = [r for r in recs.tolist() if r not in test]
    val = _draw_val(rng, rest, n_val_records)
    return _by_records(record, set(rest) - set(val), val, test, f"kfold{fold}of{k}")


SPLITS = ("holdout", "lpo", "ds1ds2", "ds1", "kfold")


def check_split_args(name: str, kwargs: dict, where: str = "split") -> None:
    """Refuse an unknown split, an unknown or missing keyword (suggesting close names), before any data is read."""
    import difflib
    import inspect

    fn = {"holdout": holdout, "lpo": lpo, "ds1ds2": ds1ds2, "ds1": ds1, "kfold": kfold}.get(name)
    if fn is None:
        raise ConfigError(f"unknown split {name!r}; available: {', '.join(SPLITS)}")
    params = {k: p for k, p in inspect.signature(fn).parameters.items() if k not in ("y", "record", "seed")}
    for k in kwargs:
        if k not in params:
            close = difflib.get_close_matches(k, list(params), n=2, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}?" if close else f"valid: {', '.join(params) or 'none'}"
            raise ConfigError(f"{where} {name!r} has no keyword {k!r}; {hint}")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise ConfigError(f"{where} {name!r} needs {', '.join(missing)} (e.g. {missing[0]}=0)")
    for k, v in kwargs.items():
        if k in ("n_val_records", "k", "fold") and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if k == "fold" else 1)):
            raise ConfigError(f"{where} {name!r}: {k}={v!r}; must be a whole number >= {0 if k == 'fold' else 1}")


def make_split(name: str, y: np.ndarray, record: np.ndarray, *, seed: int = 0, **kwargs) -> Split:
    """A split by name (``holdout``, ``lpo``, ``ds1ds2``, ``ds1``, ``kfold``); keywords checked by ``check_split_args``."""
    check_split_args(name, kwargs)
    if name == "holdout":
        return holdout(y, seed=seed, **kwargs)
    if name == "lpo":
        return lpo(record, seed=seed, **kwargs)
    if name == "ds1ds2":
        return ds1ds2(record, seed=seed, **kwargs)
    if name == "ds1":
        return ds1(record, seed=seed, **kwargs)
    if name == "kfold":
        return kfold(record, seed=seed, **kwargs)
    raise ConfigError(f"unknown split {name!r}; available: {', '.join(SPLITS)}")


def check_patient_disjoint(split: Split, record: np.ndarray) -> None:
    """Raise if any record has beats in two parts of the split."""
    seen: dict[str, str] = {}
    for part, idx in split.parts().items():
        for r in np.unique(record[idx]).tolist():
            if r in seen:
                raise AssertionError(f"split {split.name}: record {r} is in both {seen[r]} and {part}")
            seen[r] = part


def balance(y: np.ndarray, idx: np.ndarray, *, mode: str, seed: int = 0) -> np.ndarray:
    """Resample training indices to balance classes (training part only!).

    Args:
      y: i32[N] labels of the whole BeatSet.
      idx: i64[M] training indices.
      mode: ``"none"``; ``"downsample_majority"`` (the paper's CNN: the
        largest class drawn without replacement down to the second-largest
        class's size M2, every other class drawn with replacement up to M2);
        ``"upsample"`` (the paper's LSTM: every class drawn with replacement up
        to the largest class's size).

    Returns:
      i64[K] indices (with repeats), shuffled.
    """
    if mode not in ("none", "downsample_majority", "upsample"):
        raise ConfigError(f"unknown balancing mode {mode!r}; choose none, downsample_majority or upsample")
    rng = _rng(seed)
    idx = np.asarray(idx, np.int64)
    if mode == "none" or len(idx) == 0:
        return rng.permutation(idx)
    classes, sizes = np.unique(y[idx], return_counts=True)
    if mode == "downsample_majority":
        target = int(np.sort(sizes)[-2]) if len(sizes) > 1 else int(sizes[0])
    else:
        target = int(sizes.max())
    out = []
    for c, n in zip(classes, sizes):
        members = idx[y[idx] == c]
        if n == target:
            out.append(members)  # already at size: every beat once
        else:
            # Larger (only the majority, when downsampling): without replacement;
            # smaller: with replacement.
            out.append(rng.choice(members, size=target, replace=n < target))
    return rng.permutation(np.concatenate(out)).astype(np.int64)
