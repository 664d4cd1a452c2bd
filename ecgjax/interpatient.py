"""The inter-patient benchmark: train on DS1, test once on DS2, AAMI classes (de Chazal et al., 2004).

``run(cfg, workdir)`` does, in order:

1. **Train** one run per seed (``ecgjax.train.train_and_evaluate``) on DS1
   only: the training config's protocol reads the DS1 records only (so the
   beat cache it reads or writes holds no DS2 record) and its split is
   ``ds1`` with patient-wise folds: the DS1 records are cut into
   ``cv_folds`` folds and the i-th seed validates on fold ``i % cv_folds``.
   Early stopping, the learning-rate plateau and the evaluated checkpoint
   (lowest validation loss) use that seed's validation fold. With
   ``tune_offsets``, one vector of per-class logit offsets (the decision
   thresholds) is chosen on the seeds' pooled out-of-record DS1 predictions
   (``cv_offsets``: every DS1 beat once when the seeds cover the folds;
   ``choose_offsets``: the mean F1 of those classes) and applied to every seed.
   With ``s_rule`` those predictions first go through the rule (``suppress_s``:
   no S call where the beat's feature says it is no premature atrial beat).
2. **Test** every seed's model on DS2, loaded once, after all training:
   the prediction is ``argmax(logits + offsets)`` (with ``s_rule``, of the
   log-probabilities after the rule); per-class Se, +P, FPR and
   F1 with percentile bootstrap-over-records CIs
   (``ecgjax.train.metrics.report``), and the mean and sd over seeds (also
   without the offsets, ``summary_argmax``); besides, the seeds as one
   ensemble (``ensemble``: mean log-probabilities, the same offsets).
3. **Explain** the DS2 beats of the classes in ``explain_classes`` (the true
   class as target) with each method in ``methods``; per beat the share of the
   attribution mass on the RR features, ``sum_j |a_rr_j| / (sum_j |a_rr_j| +
   sum_{t,l} |a_wave[t, l]|)`` over the valid samples, and per feature; mean
   over beats with a bootstrap-over-records CI. ``integrated_gradients`` and
   ``gradient_x_input`` share one unit (the logit), so their shares are
   comparable across inputs; a gradient's (``saliency``) is not, and is
   reported as such. The waveform maps are kept per class (segment profiles as
   for the other models: ``ecgjax.analysis``).

``ds1_phase`` trains and scores the pooled DS1 CV without reading DS2 (``--ds1-only``);
``rhythm_screen`` scores the trained seeds on synthetic ectopic-dominant rhythms made of their
held-out DS1 records' real beats (``experiments/ds1_rhythm_screen.py``).

Workdir::

    runs/seed<s>/            the training runs (DS1 only)
    ds2/seed<s>.npz          DS2 predictions: y_true, y_pred (with the offsets), logits, offsets, record
    attributions/<method>/seed<s>.npz  index, y, rr f32[M, F], waveform maps f32[M, T, L]
    results.json             everything below, plus config, versions, device
    report.md                the AAMI table beside published results, and the RR shares
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from pathlib import Path

import jax
import numpy as np

from ecgjax import config as config_lib
from ecgjax.config import Config
from ecgjax.data.protocols import DS1, DS2
from ecgjax.errors import ConfigError
from ecgjax.io import atomic_savez, atomic_write_json, atomic_write_text, describe_device, environment_info

log = logging.getLogger("ecgjax.interpatient")

# Published DS2 results, % (SVEB Se, +P; VEB Se, +P), as cited in issue 14.
PUBLISHED = (
    ("de Chazal et al. 2004", 75.9, 38.5, 77.7, 81.9),
    ("Llamedo & Martinez 2011", 77.0, 39.0, 81.0, 87.0),
    ("Mar et al. 2011", 83.2, 33.5, 86.8, 75.9),
    ("Zhang et al. 2014", 79.1, 36.0, 85.5, 92.7),
    ("Lin & Yang 2014", 81.0, 31.0, 86.0, 73.0),
    ("Huang et al. 2014", 91.0, 42.0, 94.0, 91.0),
    ("Garcia et al. 2017", 62.0, 53.0, 87.3, 59.4),
)
GOAL = {"S": {"se": 0.80, "ppv": 0.55}, "V": {"se": 0.92, "ppv": 0.92}}
_METRICS = ("se", "ppv", "fpr", "f1")
_REPORT_KEY = {"se": "recall", "ppv": "precision", "fpr": "fpr", "f1": "f1"}


@dataclasses.dataclass(frozen=True)
class InterpatientConfig:
    """One inter-patient benchmark.

    Attributes:
      name: shown in the report.
      train: the training config of every seed (``train.seed`` is replaced);
        its data must read DS1 records only, with the ``ds1`` split.
      seeds: training seeds.
      test_records: the records tested once at the end (DS2).
      methods: attribution methods and their hyperparameters.
      explain_classes: classes whose DS2 beats are explained (true class as target).
      explain_max_beats: at most this many beats per class and seed (seeded subset).
      bootstrap_samples: record-bootstrap resamples for every CI.
      tune_offsets: classes whose logit offsets are chosen on the pooled
        out-of-record DS1 predictions of all seeds (``cv_offsets``); empty: plain argmax.
      cv_folds: K. The DS1 records are cut into K patient-wise folds (split
        ``ds1`` with ``fold``/``k``, permuted by ``train.data.split_seed``); the
        i-th seed validates on fold ``i % K`` (early stopping, learning-rate
        plateau, evaluated checkpoint) and trains on the other folds, so K seeds
        predict every DS1 beat once out of record.
      s_rule: empty (none), or ``(rule, tau, to)``: no S call where a beat's feature says it cannot be a premature
        atrial beat (``suppress_s``: ``rule`` of ``S_RULES``, its threshold ``tau``, ``to`` None or the class the S
        probability goes to), applied to the pooled DS1 predictions before the offsets are chosen and to the DS2
        logits before every decision (``rule_feature`` computes the feature of both parts' beats).
    """

    name: str
    train: Config
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    test_records: tuple[str, ...] = DS2
    methods: tuple[tuple[str, dict], ...] = (("integrated_gradients", {"steps": 32}), ("saliency", {}))
    explain_classes: tuple[str, ...] = ("S", "V")
    explain_max_beats: int = 1000
    bootstrap_samples: int = 1000
    tune_offsets: tuple[str, ...] = ()
    cv_folds: int = 5
    s_rule: tuple = ()


def load_config(spec: str) -> InterpatientConfig:
    """``"file.py[:arg]"`` -> the ``InterpatientConfig`` its ``get_config`` returns."""
    cfg = config_lib.call_get_config(spec)
    if not isinstance(cfg, InterpatientConfig):
        raise ConfigError(f"{spec}: get_config must return an InterpatientConfig, got {type(cfg).__name__}")
    return check(cfg)


def check(cfg: InterpatientConfig) -> InterpatientConfig:
    """Refuse a config whose training could see a test record; validate the training config."""
    train = config_lib.validate(cfg.train)
    d = train.data
    records = tuple(str(r) for r in d.protocol_overrides.get("records", ()))
    if d.protocol == "synthetic" or not records:
        raise ConfigError(f"{cfg.name}: train.data.protocol_overrides.records must list the DS1 training records")
    if set(records) - set(DS1) or set(records) & set(cfg.test_records):
        raise ConfigError(f"{cfg.name}: training records must be DS1 only and exclude the test records; got {sorted(set(records) - set(DS1))} outside DS1")
    if d.split != "ds1":
        raise ConfigError(f"{cfg.name}: train.data.split must be 'ds1' (validation drawn from DS1), got {d.split!r}")
    if not cfg.seeds or len(set(cfg.seeds)) != len(cfg.seeds):
        raise ConfigError(f"{cfg.name}: seeds {list(cfg.seeds)} must be distinct and not empty")
    n_ds1 = len(set(records))
    if isinstance(cfg.cv_folds, bool) or not isinstance(cfg.cv_folds, int) or not 2 <= cfg.cv_folds <= n_ds1:
        raise ConfigError(f"{cfg.name}: cv_folds={cfg.cv_folds!r} must be a whole number in [2, {n_ds1}] (the DS1 training records)")
    if set(cfg.tune_offsets) - {"N", "S", "V", "F", "Q"}:
        raise ConfigError(f"{cfg.name}: tune_offsets {list(cfg.tune_offsets)} must name AAMI classes (N, S, V, F, Q)")
    if cfg.s_rule and (len(cfg.s_rule) != 3 or cfg.s_rule[0] not in S_RULES or isinstance(cfg.s_rule[1], bool)
                       or not isinstance(cfg.s_rule[1], (int, float)) or cfg.s_rule[2] not in (None, "N", "V", "F", "Q")):
        raise ConfigError(f"{cfg.name}: s_rule {cfg.s_rule!r} must be (rule, tau, to): rule one of {list(S_RULES)}, tau a number, "
                          "to None or a class other than S")
    return dataclasses.replace(cfg, train=train)


def seed_config(cfg: InterpatientConfig, seed: int) -> Config:
    """The training config of one seed: its init seed, and as validation the DS1 fold
    ``cfg.seeds.index(seed) % cfg.cv_folds`` of ``cv_folds`` (split ``ds1`` with ``fold``, ``k``)."""
    data = dataclasses.replace(cfg.train.data, split_kwargs={"fold": cfg.seeds.index(seed) % cfg.cv_folds, "k": cfg.cv_folds})
    return dataclasses.replace(cfg.train, name=f"{cfg.train.name}_seed{seed}", data=data,
                               train=dataclasses.replace(cfg.train.train, seed=seed))


def test_data(cfg: InterpatientConfig, *, data_dir=None, cache=None):
    """The DS2 beats, prepared as the training data were (same protocol, RR channels)."""
    from ecgjax.train import data as data_lib

    over = {**cfg.train.data.protocol_overrides, "records": tuple(cfg.test_records)}
    return data_lib.load(dataclasses.replace(cfg.train.data, protocol_overrides=over, max_beats=None), data_dir=data_dir, cache=cache)


# ---------------------------------------------------------------------------
# phases


def train_phase(cfg: InterpatientConfig, workdir: Path, *, data_dir=None, cache=None) -> list[dict]:
    """Train every seed on DS1 (resumes; a finished run is read back). Returns the results.json dicts."""
    from ecgjax.train import train_and_evaluate

    out = []
    for seed in cfg.seeds:
        log.info("training seed %d on DS1", seed)
        out.append(train_and_evaluate(seed_config(cfg, seed), workdir / "runs" / f"seed{seed}", data_dir=data_dir, cache=cache))
    return out


def ds1_phase(cfg: InterpatientConfig, workdir: str | Path, *, data_dir=None, cache=None) -> dict:
    """Train every seed on DS1 (resumes) and score the pooled out-of-record DS1 predictions (``cv_offsets``)
    without reading any DS2 record; writes ``<workdir>/ds1_cv.json`` and returns the scores."""
    cfg = check(cfg)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results = train_phase(cfg, workdir, data_dir=data_dir, cache=cache)
    _, scores = cv_offsets(cfg, workdir, list(results[0]["classes"]), data_dir=data_dir, cache=cache)
    atomic_write_json(workdir / "ds1_cv.json", scores)
    return scores


def _models(cfg: InterpatientConfig, workdir: Path, *, data_dir=None, cache=None):
    from ecgjax.train.run import load_run

    for seed in cfg.seeds:
        yield seed, load_run(workdir / "runs" / f"seed{seed}", data_dir=data_dir, cache=cache).model


def _subset(y: np.ndarray, record: np.ndarray, c: int, n_max: int, seed: int) -> np.ndarray:
    idx = np.flatnonzero(y == c)
    if len(idx) > n_max:
        idx = np.sort(np.random.default_rng(np.random.SeedSequence([seed, c])).choice(idx, n_max, replace=False))
    return idx


def rr_shares(wave: np.ndarray, rr: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of each beat's attribution mass on the RR features.

    Args:
      wave: f[M, T, L] waveform maps; rr: f[M, F] RR attributions; valid: bool[M, T].

    Returns:
      (share f64[M], per_feature f64[M, F]): ``sum_j |rr_j| / total`` and ``|rr_j| / total`` with
      ``total = sum_j |rr_j| + sum over valid (t, l) of |wave|`` (0 where total is 0).
    """
    w = np.abs(np.asarray(wave, np.float64)) * np.asarray(valid)[..., None]
    r = np.abs(np.asarray(rr, np.float64))
    total = w.sum(axis=(1, 2)) + r.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    return r.sum(axis=1) / safe, r / safe[:, None]


# Waveform time segments relative to R (s) for the RR-versus-waveform shares: the aami window, 0.25 s
# before to 0.45 s after R, in 0.1 s steps from R.
SEGMENT_EDGES_S = (-0.25, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.45)


def segment_shares(wave: np.ndarray, rr: np.ndarray, valid: np.ndarray, r: np.ndarray, fs: float,
                   edges_s=SEGMENT_EDGES_S) -> np.ndarray:
    """Share of each beat's attribution mass on each waveform time segment (both leads together).

    Args:
      wave: f[M, T, L] waveform maps; rr: f[M, F] RR attributions; valid: bool[M, T];
      r: i[M] R position in each window; fs: Hz; edges_s: S+1 segment edges in seconds from R.

    Returns:
      f64[M, S]: ``sum over valid t in [r + e_k fs, r + e_{k+1} fs) and leads of |wave| / total``,
      ``total`` as in ``rr_shares`` (0 where total is 0). With edges covering the window,
      ``segment_shares.sum(1) + rr_shares(...)[0] == 1``.
    """
    w = (np.abs(np.asarray(wave, np.float64)) * np.asarray(valid)[..., None]).sum(axis=2)
    total = w.sum(axis=1) + np.abs(np.asarray(rr, np.float64)).sum(axis=1)
    c = np.concatenate([np.zeros((len(w), 1)), np.cumsum(w, axis=1)], axis=1)
    idx = np.clip(np.asarray(r)[:, None] + np.round(np.asarray(edges_s) * fs).astype(np.int64)[None, :], 0, w.shape[1])
    seg = np.diff(np.take_along_axis(c, idx, axis=1), axis=1)
    return seg / np.where(total > 0, total, 1.0)[:, None]


def mean_ci_over_records(values: np.ndarray, record: np.ndarray, *, n_boot: int, seed: int = 0, level: float = 0.95) -> dict:
    """Mean of ``values`` (f[M] or f[M, K]) over beats, with a percentile CI from resampling records."""
    values = np.asarray(values, np.float64)
    out = {"mean": values.mean(axis=0).tolist() if len(values) else float("nan"), "n_beats": int(len(values)),
           "n_records": int(len(np.unique(record)))}
    if not n_boot or not len(values):
        return out
    recs, inv = np.unique(record, return_inverse=True)
    sums = np.zeros((len(recs), *values.shape[1:]))
    np.add.at(sums, inv, values)
    counts = np.bincount(inv, minlength=len(recs)).astype(np.float64)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    w = np.stack([np.bincount(rng.integers(0, len(recs), len(recs)), minlength=len(recs)) for _ in range(n_boot)])
    boot = np.tensordot(w, sums, axes=1) / (w @ counts).reshape(-1, *([1] * (values.ndim - 1)))
    lo, hi = np.percentile(boot, [100 * (1 - level) / 2, 100 * (1 + level) / 2], axis=0)
    out["ci"] = [lo.tolist(), hi.tolist()]
    return out


OFFSET_GRID = np.round(np.arange(-4.0, 4.01, 0.25), 2)


def _f1(y: np.ndarray, pred: np.ndarray, c: int) -> float:
    tp = np.sum((pred == c) & (y == c))
    return float(2 * tp / max(2 * tp + np.sum(pred == c) + np.sum(y == c) - 2 * tp, 1))


def choose_offsets(logits: np.ndarray, y: np.ndarray, tune: list[int], *, grid=OFFSET_GRID, sweeps: int = 3) -> np.ndarray:
    """Per-class logit offsets that maximise the mean F1 of the ``tune`` classes on (validation) beats.

    Coordinate ascent: ``sweeps`` times, each tuned class's offset in turn is set to the
    grid value with the highest mean F1 of the tuned classes (first such value; the
    other offsets fixed). Untuned classes keep offset 0, so ``offsets == 0`` is the argmax.

    Args:
      logits: f[M, C]; y: i[M] true classes; tune: class indices.

    Returns:
      f32[C] offsets; the decision is ``argmax(logits + offsets)``.
    """
    logits = np.asarray(logits, np.float64)
    b = np.zeros(logits.shape[1])
    for _ in range(sweeps if tune else 0):
        for c in tune:
            scores = []
            for g in grid:
                b[c] = g
                pred = (logits + b).argmax(-1)
                scores.append(np.mean([_f1(y, pred, k) for k in tune]))
            b[c] = grid[int(np.argmax(scores))]
    return b.astype(np.float32)


def cv_predictions(cfg: InterpatientConfig, workdir: Path, seeds=None) -> dict[str, np.ndarray]:
    """The seeds' out-of-record DS1 predictions, pooled: each seed's ``predictions.npz`` holds its model's
    logits on its validation fold (the ``ds1`` split tests on its validation records), so the seeds of one
    pass over the ``cv_folds`` folds predict every DS1 beat once, each from a model that never trained on
    that beat's record.

    Returns:
      ``{"index": i64[M], "logits": f32[M, C], "y": i32[M], "record": U[M], "seed": i64[M]}``.

    Raises:
      ConfigError: a file holds a test (DS2) record.
    """
    return pooled_predictions(workdir, cfg.seeds if seeds is None else seeds, cfg.test_records)


def workdir_seeds(workdir: str | Path) -> list[int]:
    """The seeds a benchmark workdir holds runs of (``runs/seed<s>``), in numeric order."""
    return sorted(int(p.name[4:]) for p in (Path(workdir) / "runs").glob("seed*") if p.name[4:].isdigit())


def pooled_predictions(workdir: str | Path, seeds, test_records=DS2) -> dict[str, np.ndarray]:
    """``cv_predictions`` of the given seeds of ``workdir`` (each ``runs/seed<s>/predictions.npz``), refusing a file
    that holds one of ``test_records``. Missing or damaged files raise ``OSError`` / ``KeyError`` / ``ValueError``."""
    parts = []
    for s in seeds:
        path = Path(workdir) / "runs" / f"seed{s}" / "predictions.npz"
        with np.load(path, allow_pickle=False) as z:
            parts.append((z["index"], z["logits"], z["y_true"], z["record"], np.full(len(z["index"]), s)))
        if set(parts[-1][3].tolist()) & set(test_records):
            raise ConfigError(f"{path} holds test records; offsets must come from DS1 out-of-record predictions")
    return dict(zip(("index", "logits", "y", "record", "seed"), (np.concatenate(v) for v in zip(*parts))))


def cv_offsets(cfg: InterpatientConfig, workdir: Path, classes: list[str], *, data_dir=None, cache=None) -> tuple[np.ndarray, dict]:
    """One offset vector for every seed: ``choose_offsets`` on the pooled out-of-record DS1 predictions
    (``cv_predictions``; with ``cfg.s_rule``, their log-probabilities after the rule), and what those predictions
    score on DS1 (per tuned class: average precision, Se / +P / F1 at the argmax and with the offsets; the
    records covered). Returns (f32[C], dict)."""
    cv = cv_predictions(cfg, workdir)
    from sklearn.metrics import average_precision_score
    logits = cv["logits"]
    if cfg.s_rule:
        values, y_all, _ = rule_feature(cfg.s_rule[0], cfg.train.data.protocol_overrides["records"], data_dir, cache)
        if not np.array_equal(y_all[cv["index"]], cv["y"]):
            raise ConfigError(f"{workdir}: its DS1 beat indices do not match the aami_rr DS1 beats that s_rule reads")
        logits = with_s_rule(cfg, _log_softmax(logits), values[cv["index"]], classes)
    tune = [classes.index(c) for c in cfg.tune_offsets]
    offsets = choose_offsets(logits, cv["y"], tune)
    y, p = cv["y"], np.exp(_log_softmax(logits))
    scores = {"n_beats": int(len(y)), "records": sorted(set(cv["record"].tolist())), "offsets": dict(zip(classes, offsets.tolist())),
              **({"s_rule": list(cfg.s_rule)} if cfg.s_rule else {})}
    for c in ("S", "V"):
        k = classes.index(c)
        row = {"ap": float(average_precision_score(y == k, p[:, k])) if np.any(y == k) else float("nan"), "n": int(np.sum(y == k))}
        for name, pred in (("argmax", logits.argmax(-1)), ("offsets", (logits + offsets).argmax(-1))):
            tp = int(np.sum((pred == k) & (y == k)))
            row[name] = {"se": tp / max(int(np.sum(y == k)), 1), "ppv": tp / max(int(np.sum(pred == k)), 1), "f1": _f1(y, pred, k)}
        scores[c] = row
    return offsets, scores


# The synthetic-rhythm screen's S fractions (as experiments/ds1_rr_screen.py's) and the least S beats a
# held-out record needs to be screened.
SCREEN_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.85)
SCREEN_MIN_S = 10


def rhythm_screen(cfg: InterpatientConfig, workdir: str | Path, *, fractions=SCREEN_FRACTIONS, n_rhythms: int = 2,
                  n_beats: int = 600, seed: int = 0, min_s: int = SCREEN_MIN_S, data_dir=None, cache=None) -> dict:
    """The trained seeds on synthetic ectopic-dominant rhythms made of held-out DS1 beats; no DS2 record is read.

    For each seed, each record of its validation fold (records it never trained on) with at least
    ``min_s`` S and N beats, and each S fraction, ``n_rhythms`` rhythms of ``n_beats`` beats
    (``ecgjax.data.rhythm.synthetic_record``: runs of S beats, 232-like at high fractions) are filled with
    that record's real beats (N positions: random N beats, S positions: random S beats, with replacement),
    their RR features computed on the synthetic beat times and, when the config subtracts a running
    template from the leads, that template recomputed in the rhythm's own beat order
    (``ecgjax.data.rhythm.sequence_inputs``): the inputs the pipeline would give a record with that rhythm.
    The decision is ``argmax(logits + offsets)`` with the workdir's DS1-CV offsets (``cv_offsets``), and the
    plain argmax.

    Returns:
      ``{"offsets", "records": {seed: [records]}, "fractions": {f: {"offsets"|"argmax": {"S_se", "N_called_S",
      "n_S", "n_N"}}}}``: pooled over seeds, records and rhythms.
    """
    from ecgjax.attribution.runner import logits_step, model_parts
    from ecgjax.batched import map_batches
    from ecgjax.data import rhythm
    from ecgjax.models import eval_split
    from ecgjax.train.data import raw_leads
    from ecgjax.train.run import load_run

    cfg = check(cfg)
    workdir = Path(workdir)
    classes = ["N", "S", "V", "F", "Q"]
    offsets, _ = cv_offsets(cfg, workdir, classes, data_dir=data_dir, cache=cache)
    counts = {str(f): {k: np.zeros(4, np.int64) for k in ("offsets", "argmax")} for f in fractions}
    used = {}
    leads = None
    for s in cfg.seeds:
        run = load_run(workdir / "runs" / f"seed{s}", data_dir=data_dir, cache=cache)
        b, val = run.beats, run.split.val
        k = run.config.data.template_beats
        if k and leads is None:  # every seed reads the same beats (only the fold differs)
            leads = raw_leads(run.config.data, data_dir=data_dir, cache=cache)
        if k and val.max(initial=-1) >= len(leads):  # appended (augmented) beats follow the real ones; none validates
            raise ConfigError(f"{workdir}: seed {s}'s validation beats reach index {val.max()}, its data config has {len(leads)} beats")
        if list(b.classes) != classes:
            raise ConfigError(f"{workdir}: seed {s} has classes {list(b.classes)}, the screen needs the AAMI classes {classes}")
        if set(b.record[val].tolist()) & set(cfg.test_records):
            raise ConfigError(f"{workdir}: seed {s}'s validation part holds test records")
        make, params = model_parts(eval_split(run.model))
        used[str(s)] = []
        for rec in sorted(set(b.record[val].tolist())):
            mine = val[b.record[val] == rec]
            pools = [mine[b.y[mine] == classes.index(c)] for c in ("N", "S")]
            if len(pools[1]) < min_s or len(pools[0]) < min_s:
                continue
            used[str(s)].append(rec)
            rng = np.random.default_rng(np.random.SeedSequence([seed, s, int(rec)]))
            for f in fractions:
                for _ in range(n_rhythms):
                    times, lab = rhythm.synthetic_record(rng, f, n_beats)
                    src = np.where(lab == 1, rng.choice(pools[1], len(lab)), rng.choice(pools[0], len(lab)))
                    x, _ = rhythm.sequence_inputs(b, src, times, leads=leads, template_beats=k,
                                                  template_reference=run.config.data.template_reference)
                    z = map_batches(logits_step, (params,), (x,), static=(make,), batch_size=cfg.train.train.eval_batch_size).outputs
                    for name, pred in (("offsets", (z + offsets).argmax(-1)), ("argmax", z.argmax(-1))):
                        counts[str(f)][name] += [np.sum(pred[lab == 1] == 1), np.sum(lab == 1), np.sum(pred[lab == 0] == 1), np.sum(lab == 0)]
    out = {}
    for f, d in counts.items():
        out[f] = {k: {"S_se": float(v[0] / max(v[1], 1)), "N_called_S": float(v[2] / max(v[3], 1)), "n_S": int(v[1]), "n_N": int(v[3])}
                  for k, v in d.items()}
    return {"offsets": dict(zip(classes, offsets.tolist())), "records": used, "fractions": out,
            "n_rhythms": n_rhythms, "n_beats": n_beats, "seed": seed}


# Rules on top of a trained recipe (experiments/ds1_af_rule_screen.py, experiments/interpatient_af_rule.py): no S
# call where a beat's context says it cannot be a premature atrial beat. How far the S log-probability is lowered:
AF_SUPPRESS = 20.0
# {the beat's feature: the comparison with tau under which S is suppressed}. irreg (ecgjax.data.rr, the median ratio of
# successive intervals among the 10 before the beat) > tau: inside an irregular rhythm; atrial fibrillation has no
# premature atrial beats and its irregular intervals look premature to an RR model. plock (ecgjax.data.template's
# atrial_lock over the 32 preceding beats) < tau: without P waves locked to R; a premature atrial beat comes out of a
# rhythm with them, which atrial fibrillation and flutter lack, whatever the intervals (an ectopic-dominant record
# keeps its P waves).
S_RULES = {"irreg": ">", "plock": "<"}


def suppress_s(log_probs: np.ndarray, values: np.ndarray, tau: float, classes, rule: str = "irreg",
               to: str | None = None) -> np.ndarray:
    """f64[M, C] ``log_probs`` with the S column lowered by ``AF_SUPPRESS`` where the rule's feature ``values`` f[M]
    compares with ``tau`` as ``S_RULES[rule]`` says (``irreg > tau``, ``plock < tau``). ``to``: None leaves the
    other classes as they are (the beat goes to the model's next choice); a class name (``"N"``) first adds the
    S probability to that class's (log-sum-exp), so a beat the rule says is no premature atrial beat is read as
    that class rather than as whichever comes second."""
    if rule not in S_RULES:
        raise ConfigError(f"rule {rule!r}: use one of {list(S_RULES)}")
    classes = list(classes)
    if to is not None and (to not in classes or to == "S"):
        raise ConfigError(f"to={to!r}: use a class other than S of {classes}")
    values = np.asarray(values)
    out = np.array(log_probs, np.float64)
    hit, s = values > tau if S_RULES[rule] == ">" else values < tau, classes.index("S")
    if to is not None:
        out[hit, classes.index(to)] = np.logaddexp(out[hit, classes.index(to)], out[hit, s])
    out[hit, s] -= AF_SUPPRESS
    return out


# plock's preceding beats for the rules (aami_rr.py's TEMPLATE_BEATS and ATRIAL_LOCK_BEATS)
PLOCK_BEATS = 32


def rule_feature(rule: str, records, data_dir=None, cache=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the rule's feature f32[N], y i64[N], record U[N]) of the ``aami_rr`` beats of ``records``, in the benchmark's
    beat order: ``irreg`` from the annotations (``ecgjax.data.rr``), ``plock`` from the leads
    (``ecgjax.train.data.with_atrial_lock`` over ``PLOCK_BEATS``)."""
    from ecgjax.data import load_beats
    from ecgjax.data.protocols import get
    from ecgjax.data.rr import DEFAULT_FEATURES
    from ecgjax.train.data import with_atrial_lock

    if rule not in S_RULES:
        raise ConfigError(f"rule {rule!r}: use one of {list(S_RULES)}")
    if rule == "irreg":
        beats = load_beats(get("aami_rr", records=tuple(records), rr_features=DEFAULT_FEATURES + ("irreg",)), data_dir, cache=cache)
    else:
        beats = with_atrial_lock(load_beats(get("aami_rr", records=tuple(records)), data_dir, cache=cache), PLOCK_BEATS)
    return beats.rr[:, -1], beats.y, np.asarray(beats.record)


def with_s_rule(cfg: InterpatientConfig, log_probs: np.ndarray, values: np.ndarray, classes) -> np.ndarray:
    """``suppress_s`` with ``cfg.s_rule``'s rule, tau and target; f64[M, C]."""
    rule, tau, to = cfg.s_rule
    return suppress_s(log_probs, values, tau, classes, rule, to)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def ensemble(test_logits: dict, offsets: np.ndarray) -> np.ndarray:
    """The seeds as one model: ``argmax`` of the mean of their log-probabilities plus the (cross-validated)
    offsets. test_logits: {seed: f[N, C]}; offsets f[C]. Returns i32[N]."""
    mean = np.mean([_log_softmax(z) for z in test_logits.values()], axis=0)
    return (mean + offsets).argmax(-1).astype(np.int32)


def ds2_decisions(cfg: InterpatientConfig, logits: dict, y: np.ndarray, record: np.ndarray, classes, offsets: np.ndarray,
                  values: np.ndarray | None = None) -> dict:
    """The DS2 decisions of every seed and their scores: ``argmax(logits + offsets)``, with ``cfg.s_rule`` of the
    log-probabilities after the rule (``values`` f[N]: its feature of the same beats, ``rule_feature``).

    Args:
      logits: {seed: f32[N, C]}; y i[N], record U[N]: the beats' labels and records; offsets f[C].

    Returns:
      ``{"preds": {seed: i32[N]}, "per_seed": {seed: report}, "summary", "summary_argmax": mean and sd over seeds
      (with the offsets, and without), "ensemble": {"report", "offsets"} of the seeds as one model, None for one seed}``
      (reports: ``ecgjax.train.metrics.report``, record-bootstrap CIs of ``cfg.bootstrap_samples`` resamples).
    """
    from ecgjax.train import metrics

    decided = {s: with_s_rule(cfg, _log_softmax(z), values, classes) if cfg.s_rule else z for s, z in logits.items()}
    preds = {s: (d + offsets).argmax(-1).astype(np.int32) for s, d in decided.items()}
    per_seed = {s: metrics.report(y, p, classes, record=record, n_bootstrap=cfg.bootstrap_samples, seed=s) for s, p in preds.items()}
    argmax = [metrics.report(y, d.argmax(-1).astype(np.int32), classes, record=record, n_bootstrap=0) for d in decided.values()]
    ens = None
    if len(decided) > 1:
        ens = {"report": metrics.report(y, ensemble(decided, offsets), classes, record=record, n_bootstrap=cfg.bootstrap_samples, seed=0),
               "offsets": dict(zip(classes, offsets.tolist()))}
    return {"preds": preds, "per_seed": per_seed, "summary": _seed_summary(list(per_seed.values()), classes),
            "summary_argmax": _seed_summary(argmax, classes), "ensemble": ens}


def _seed_summary(reports: list[dict], classes) -> dict:
    """Per class and metric: mean and sd (ddof 1) over seeds."""
    out = {}
    for c in classes:
        out[c] = {}
        for m in _METRICS:
            v = np.array([r["per_class"][c][_REPORT_KEY[m]] for r in reports])
            out[c][m] = {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else float("nan"), "values": v.tolist()}
    return out


def run(cfg: InterpatientConfig, workdir: str | Path, *, data_dir=None, cache=None) -> dict:
    """Train on DS1, test on DS2 once, explain; write ``results.json`` and ``report.md`` (module docstring)."""
    from ecgjax import attribution as attr
    from ecgjax.analysis import segments as seg_lib
    from ecgjax.attribution.runner import logits_step, model_parts
    from ecgjax.batched import map_batches
    from ecgjax.models import eval_split
    from ecgjax.models.rr_net import rr_attributions
    from ecgjax.train import metrics

    t0 = time.time()
    cfg = check(cfg)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)

    # ---- 1. training: DS1 only -------------------------------------------------
    train_results = train_phase(cfg, workdir, data_dir=data_dir, cache=cache)
    t_train = time.time() - t0

    # ---- 2. DS2, read once, after all training ---------------------------------------
    test = test_data(cfg, data_dir=data_dir, cache=cache)
    classes = list(test.classes)
    y, rec = test.y, test.record
    n_leads = len(next(iter(test.lead_names.values())))
    offsets, ds1_cv = cv_offsets(cfg, workdir, classes, data_dir=data_dir, cache=cache)
    log.info("offsets from the pooled out-of-record DS1 predictions: %s", ds1_cv["offsets"])
    if cfg.s_rule:  # the rule's feature of the DS2 beats, in their order
        values, y_rule, _ = rule_feature(cfg.s_rule[0], cfg.test_records, data_dir, cache)
        if not np.array_equal(y_rule, y):
            raise ConfigError(f"{cfg.name}: the DS2 beats that s_rule reads are not the test beats in order")
    else:
        values = None
    test_logits, models = {}, {}
    for seed, model in _models(cfg, workdir, data_dir=data_dir, cache=cache):
        make, params = model_parts(eval_split(model))
        test_logits[seed] = map_batches(logits_step, (params,), (test.x,), static=(make,), batch_size=cfg.train.train.eval_batch_size,
                                        desc=f"DS2 seed {seed}").outputs
        models[seed] = model
    ds2 = ds2_decisions(cfg, test_logits, y, rec, classes, offsets, values)
    for seed, logits in test_logits.items():
        atomic_savez(workdir / "ds2" / f"seed{seed}.npz", y_true=y, y_pred=ds2["preds"][seed], logits=logits.astype(np.float32),
                     offsets=offsets, record=rec)
        log.info("seed %d on DS2:\n%s", seed, metrics.format_table(ds2["per_seed"][seed]))

    # ---- 3. attributions: RR versus waveform ------------------------------------
    valid = test.valid
    shares = {}
    for name, hp in cfg.methods:
        method = attr.get(name, **hp)
        shares[name] = {}
        per_class = {c: {"share": [], "features": [], "segments": [], "record": []} for c in cfg.explain_classes}
        for seed, model in models.items():
            path = workdir / "attributions" / name / f"seed{seed}.npz"
            if not path.exists():
                idx = np.concatenate([_subset(y, rec, classes.index(c), cfg.explain_max_beats, seed) for c in cfg.explain_classes])
                res = attr.attribute_dataset(eval_split(model), test.x[idx], "label", method, y=y[idx].astype(np.int32),
                                             key=jax.random.key(seed) if method.needs_key else None, index=idx)
                wave, rr = rr_attributions(res.maps, n_leads)
                atomic_savez(path, index=idx, y=y[idx], pred=res.pred, rr=rr.astype(np.float32), wave=wave.astype(np.float32))
            with np.load(path, allow_pickle=False) as z:
                idx, wave, rr = z["index"], z["wave"], z["rr"]
            share, feat = rr_shares(wave, rr, valid[idx])
            seg_share = segment_shares(wave, rr, valid[idx], test.r[idx], test.fs)
            for c in cfg.explain_classes:
                sel = y[idx] == classes.index(c)
                per_class[c]["share"].append(share[sel])
                per_class[c]["features"].append(feat[sel])
                per_class[c]["segments"].append(seg_share[sel])
                per_class[c]["record"].append(rec[idx][sel])
            if seed == cfg.seeds[0]:
                segs = seg_lib.segment_values(np.abs(wave), test.r[idx], test.lo[idx], test.hi[idx], test.fs, n_per_side=5)
                shares[name]["waveform_segments"] = {
                    "offsets_s": segs.offsets_s.tolist(), "leads": _lead_labels(test.lead_names),
                    "median_abs": {c: _median_or_none(segs.values[y[idx] == classes.index(c)]) for c in cfg.explain_classes},
                }
        for c, d in per_class.items():
            r = np.concatenate(d["record"])
            shares[name][c] = {
                "rr_share": mean_ci_over_records(np.concatenate(d["share"]), r, n_boot=cfg.bootstrap_samples),
                "per_feature": mean_ci_over_records(np.concatenate(d["features"]), r, n_boot=cfg.bootstrap_samples),
                "per_segment": mean_ci_over_records(np.concatenate(d["segments"]), r, n_boot=cfg.bootstrap_samples),
            }
        shares[name]["rr_features"] = list(test.rr_names)
        shares[name]["segment_edges_s"] = list(SEGMENT_EDGES_S)

    results = {
        "name": cfg.name,
        "classes": classes,
        "seeds": list(cfg.seeds),
        "train_records": list(cfg.train.data.protocol_overrides["records"]),
        "test_records": list(cfg.test_records),
        "ds2": {"per_seed": {str(s): r for s, r in ds2["per_seed"].items()}, "summary": ds2["summary"],
                "summary_argmax": ds2["summary_argmax"],
                "offsets": {str(s): dict(zip(classes, offsets.tolist())) for s in ds2["per_seed"]},
                "ensemble": ds2["ensemble"]},
        "ds1_cv": ds1_cv,
        "ds1_training": {str(s): {k: r[k] for k in ("best_epoch", "best_val_loss", "epochs_run", "stopped_early", "wall_time_s", "split")}
                         for s, r in zip(cfg.seeds, train_results)},
        "attribution": shares,
        "published": [dict(zip(("method", "sveb_se", "sveb_ppv", "veb_se", "veb_ppv"), p)) for p in PUBLISHED],
        "goal": GOAL,
        "train_wall_time_s": t_train,
        "wall_time_s": time.time() - t0,
        "config": {"name": cfg.name, "seeds": list(cfg.seeds), "methods": [list(m) for m in cfg.methods],
                   "explain_classes": list(cfg.explain_classes), "explain_max_beats": cfg.explain_max_beats,
                   "bootstrap_samples": cfg.bootstrap_samples, "tune_offsets": list(cfg.tune_offsets), "cv_folds": cfg.cv_folds,
                   "s_rule": list(cfg.s_rule),
                   "train": config_lib.to_dict(cfg.train)},
        **environment_info(),
    }
    results = json.loads(json.dumps(results, default=_json_default))
    atomic_write_json(workdir / "results.json", results)
    atomic_write_text(workdir / "report.md", report(results))
    log.info("wrote %s and %s", workdir / "results.json", workdir / "report.md")
    return results


def _lead_labels(lead_names: dict[str, tuple[str, ...]]) -> list[str]:
    """One label per lead position: its name, or the names it has across records joined by '/'."""
    n = min(len(v) for v in lead_names.values())
    return ["/".join(sorted({v[i] for v in lead_names.values()})) for i in range(n)]


def _median_or_none(v: np.ndarray) -> list:
    """Median over beats of f[M, L, S] -> [L][S] nested lists, None where no beat has a value."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN segments (outside the window)
        m = np.nanmedian(v, axis=0) if len(v) else np.full(v.shape[1:], np.nan)
    return [[None if not np.isfinite(a) else float(a) for a in row] for row in m]


def _json_default(o):
    if isinstance(o, (np.integer, np.floating)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)


# ---------------------------------------------------------------------------
# report


def most_counts(counts: dict, n: int) -> str:
    """``"k: v, ..."`` of the ``n`` largest values of ``counts`` ({record: count}), largest first (ties: by key),
    whatever the dict's order (a JSON line is written with its keys sorted)."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def _pct(v) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"


def _with_ci(rep: dict, c: str, m: str) -> str:
    """``value [lo, hi]`` in % of metric ``m`` of class ``c`` in a ``metrics.report`` dict."""
    v = rep["per_class"][c][_REPORT_KEY[m]]
    lo, hi = rep.get("ci", {}).get(f"{c}.{_REPORT_KEY[m]}", [None, None])
    return f"{_pct(v)} [{_pct(lo)}, {_pct(hi)}]" if lo is not None else _pct(v)


def aami_table(*all_results: dict) -> str:
    """The AAMI table (SVEB and VEB: Se, +P, FPR, F1): each benchmark's seeds (mean ± sd, then each seed
    with its 95% CI over records) beside the published rows."""
    lines = ["| method | SVEB Se | SVEB +P | SVEB FPR | SVEB F1 | VEB Se | VEB +P | VEB FPR | VEB F1 |",
             "|---|---|---|---|---|---|---|---|---|"]

    def cells(s):
        def cell(c, m):
            d = s[c][m]
            sd = "" if not np.isfinite(d["sd"]) else f" ± {100 * d['sd']:.1f}"
            return f"{_pct(d['mean'])}{sd}"
        return " | ".join(cell(c, m) for c in ("S", "V") for m in _METRICS)

    for results in all_results:
        n = len(results["seeds"])
        tuned = results["config"].get("tune_offsets")
        lines.append(f"| **{results['name']}** ({n} seed{'s' * (n > 1)}, mean ± sd"
                     + (f"; {'/'.join(tuned)} offsets from {'DS1 cross-validation' if results.get('ds1_cv') else 'DS1 validation'}" if tuned else "") + f") | {cells(results['ds2']['summary'])} |")
        if tuned:
            lines.append(f"| {results['name']}, plain argmax (the same models, no offsets) | {cells(results['ds2']['summary_argmax'])} |")
        ens = results["ds2"].get("ensemble")
        if ens:
            lines.append(f"| {results['name']}, ensemble of the {n} seeds (mean log-probability; 95% CI over records) | "
                         + " | ".join(_with_ci(ens["report"], c, m) for c in ("S", "V") for m in _METRICS) + " |")
        for seed, rep in results["ds2"]["per_seed"].items():
            lines.append(f"| {results['name']}, seed {seed} (95% CI over records) | "
                         + " | ".join(_with_ci(rep, c, m) for c in ("S", "V") for m in _METRICS) + " |")
    for p in all_results[0]["published"]:
        lines.append(f"| {p['method']} | {p['sveb_se']:.1f} | {p['sveb_ppv']:.1f} | | | {p['veb_se']:.1f} | {p['veb_ppv']:.1f} | | |")
    return "\n".join(lines)


def goal_line(results: dict) -> str:
    """The 5-seed means of SVEB and VEB Se / +P against ``results["goal"]``, each marked reached or not."""
    s, goal = results["ds2"]["summary"], results["goal"]
    ok = lambda c, m: s[c][m]["mean"] >= goal[c][m]  # noqa: E731
    return "; ".join(f"{'SVEB' if c == 'S' else 'VEB'} Se {_pct(s[c]['se']['mean'])} ({'reached' if ok(c, 'se') else 'not reached'}), "
                     f"+P {_pct(s[c]['ppv']['mean'])} ({'reached' if ok(c, 'ppv') else 'not reached'})" for c in ("S", "V")) + "."


def _mean_ci(d: dict, k: int | None = None) -> str:
    """``mean [lo, hi]`` in % of a ``mean_ci_over_records`` dict (element ``k`` of a vector)."""
    pick = (lambda v: v) if k is None else (lambda v: v[k])
    ci = d.get("ci")
    return f"{_pct(pick(d['mean']))} [{_pct(pick(ci[0]))}, {_pct(pick(ci[1]))}]" if ci else _pct(pick(d["mean"]))


def rr_versus_segments_table(results: dict, method: str) -> list[str]:
    """Markdown lines: per class, the RR features' share and each waveform segment's share of |attribution|
    (mean over beats of all seeds, 95% CI over records); the row sums to 100%."""
    d = results["attribution"][method]
    edges = d.get("segment_edges_s")
    if not edges:
        return []
    heads = [f"{a:+.2f}..{b:+.2f} s" for a, b in zip(edges[:-1], edges[1:])]
    out = [f"RR versus waveform segments ({method}): share of |attribution| on the {len(d.get('rr_features', ()))} RR features and on each "
           "time segment of the waveform (both leads, seconds from R); mean over beats [95% CI over records], %.", "",
           "| class | RR features | " + " | ".join(heads) + " |", "|---|---|" + "---|" * len(heads)]
    for c in (k for k in d if k in results["classes"]):
        seg = d[c]["per_segment"]
        out.append(f"| {c} | {_mean_ci(d[c]['rr_share'])} | " + " | ".join(_mean_ci(seg, k) for k in range(len(heads))) + " |")
    return out + [""]


def report(results: dict) -> str:
    """``report.md``: the AAMI table, the goal, and how much the S and V decisions rest on RR features."""
    s = results["ds2"]["summary"]
    goal = results["goal"]
    tuned = results["config"].get("tune_offsets")
    cv = results.get("ds1_cv")
    how = (f"patient-wise {results['config'].get('cv_folds', 'K')}-fold cross-validation inside DS1: each seed validates on its DS1 fold "
           f"for early stopping and checkpoint choice{'; the ' + '/'.join(tuned) + ' logit offsets are chosen once on the seeds\' pooled out-of-record DS1 predictions' if tuned else ''}"
           if cv else f"validation records drawn from DS1 for early stopping, checkpoint choice{' and the ' + '/'.join(tuned) + ' logit offsets' if tuned else ''}")
    out = [f"# Inter-patient benchmark: {results['name']}", "",
           f"Trained on DS1 ({len(results['train_records'])} records; {how}), tested once on DS2 "
           f"({len(results['test_records'])} records). Seeds {results['seeds']}. "
           f"Percentages; CIs are 95% percentile bootstrap over DS2 records.", "", aami_table(results), "",
           "Goal (5-seed means): " + "; ".join(
               f"{c} Se {_pct(s[c]['se']['mean'])} (>= {_pct(g['se'])}), +P {_pct(s[c]['ppv']['mean'])} (>= {_pct(g['ppv'])})"
               for c, g in goal.items()), "",
           *([f"Out of record on DS1 (the seeds' pooled validation-fold predictions, {cv['n_beats']} beats of {len(cv['records'])} records): "
              + "; ".join(f"{c} AP {_pct(cv[c]['ap'])}, Se / +P with the offsets {_pct(cv[c]['offsets']['se'])} / {_pct(cv[c]['offsets']['ppv'])}"
                          for c in ("S", "V")), ""] if cv else []),
           "All classes (mean over seeds): " + ", ".join(
               f"{c} Se {_pct(s[c]['se']['mean'])} / +P {_pct(s[c]['ppv']['mean'])} / F1 {_pct(s[c]['f1']['mean'])}" for c in results["classes"]), ""]
    out += ["## How much of the S and V decisions rests on RR features", "",
            "Per DS2 beat of the class (true class as target): the RR features' share of the attribution mass "
            "(|a| summed over the valid waveform samples and leads, plus |a| of each RR feature), mean over beats "
            "of all seeds, 95% CI over records. Integrated gradients and gradient x input are in logit units "
            "(comparable across inputs); a plain gradient (saliency) is not, so its share is only a ranking aid."
            + (f" The waveform input is each beat minus the mean of its record's {k} preceding beats, so the waveform "
               "maps (and integrated gradients' zero baseline: the record's usual beat) are about how the beat differs "
               "from that template." if (k := results["config"]["train"]["data"].get("template_beats")) else ""), ""]
    for name, d in results["attribution"].items():
        feats = d["rr_features"]
        out += [f"### {name}", "", "| class | RR share | " + " | ".join(feats) + " |", "|---|---|" + "---|" * len(feats)]
        for c in (k for k in d if k in results["classes"]):
            rs = d[c]["rr_share"]
            ci = rs.get("ci", [None, None])
            pf = d[c]["per_feature"]
            share = f"{_pct(rs['mean'])} [{_pct(ci[0])}, {_pct(ci[1])}]" if ci[0] is not None else _pct(rs["mean"])
            out.append(f"| {c} (n={rs['n_beats']}, {rs['n_records']} records) | {share} | "
                       + " | ".join(_pct(v) for v in np.atleast_1d(pf["mean"])) + " |")
        out.append("")
        out += rr_versus_segments_table(results, name)
        ws = d.get("waveform_segments")
        if ws:
            offs = ws["offsets_s"]
            out += [f"Waveform profile (seed {results['seeds'][0]}): median |attribution| per 0.1 s segment "
                    "(start relative to R, s; empty: outside the window), per lead.", "",
                    "| class, lead | " + " | ".join(f"{o:+.1f}" for o in offs) + " |", "|---|" + "---|" * len(offs)]
            for c, per_lead in ws["median_abs"].items():
                for lead, row in zip(ws["leads"], per_lead):
                    out.append(f"| {c}, {lead} | " + " | ".join("" if v is None else f"{v:.2g}" for v in row) + " |")
            out.append("")
    out += [f"Device: {describe_device(results)}; versions: "
            + ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items() if k in ("ecgjax", "jax", "flax", "numpy")) + f"; wall time {results['wall_time_s'] / 60:.1f} min "
            f"(training {results['train_wall_time_s'] / 60:.1f} min)."]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``experiments/aami_interpatient.py``: flags -> ``run``; exit 2 with one line on a user error."""
    import argparse
    import sys

    from ecgjax.cli import run_guarded, setup_logging

    ap = argparse.ArgumentParser(description="Inter-patient benchmark: train on DS1, test once on DS2, explain.")
    ap.add_argument("--config", default="experiments/configs/aami_rr.py", help="FILE.py[:variant]")
    ap.add_argument("--workdir", default=None, help="output folder (default runs/<config>[_<variant>]); re-running resumes")
    ap.add_argument("--data-dir", default=None, help="data root holding mitdb/ (default: $ECGJAX_DATA_DIR)")
    ap.add_argument("--cache-dir", default=None, help="beat cache folder")
    ap.add_argument("--table", nargs="+", metavar="RESULTS_JSON", help="only print the AAMI table of finished benchmarks")
    ap.add_argument("--ds1-only", action="store_true",
                    help="train (or resume) the seeds and write <workdir>/ds1_cv.json, the pooled out-of-record DS1 scores; "
                         "no DS2 record is read (decide on DS1, then run again without this flag for the DS2 test)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    setup_logging(args.verbose)
    if args.table:
        try:
            print(aami_table(*(json.loads(Path(p).read_text()) for p in args.table)))
        except (OSError, ValueError, KeyError) as e:
            print(f"error: {args.table}: not a finished inter-patient results.json ({type(e).__name__}: {e})", file=sys.stderr)
            return 2
        return 0
    path, _, variant = args.config.partition(":")
    workdir = args.workdir or str(Path("runs") / (Path(path).stem + (f"_{variant.replace(',', '_')}" if variant else "")))

    def go(args) -> None:
        if args.ds1_only:
            scores = ds1_phase(load_config(args.config), workdir, data_dir=args.data_dir, cache=args.cache_dir)
            print(json.dumps({c: scores[c] for c in ("S", "V")}, indent=1))
            print(f"DS1 cross-validation: {Path(workdir) / 'ds1_cv.json'} (no DS2 record read)")
            return
        results = run(load_config(args.config), workdir, data_dir=args.data_dir, cache=args.cache_dir)
        print(aami_table(results))
        print(f"results: {Path(workdir) / 'results.json'}\nreport: {Path(workdir) / 'report.md'}")

    # a user error (EcgjaxError, or an OSError such as a file where the workdir should be): one line, exit 2
    return run_guarded(go, args, prog="aami_interpatient")
