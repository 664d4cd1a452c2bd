"""One table of bad inputs, faults and interruptions (issue 13): every row is a test.

Each row prepares a small world under ``tmp_path`` (tiny WFDB records, a tiny
trained run, config files), runs one ``ecgjax`` command in-process (or one
library call, through the CLI's own error handling), and asserts:

* the exit status (2 for a bad input, 130 for Ctrl-C, 0 where ecgjax recovers),
* the exact message fragment on stderr (or in the log), and no traceback,
* that nothing under ``tmp_path`` was deleted or changed except what the row
  allows, and that no temporary file is left anywhere.

``category`` is what the issue found before the fix (``lost data``, ``silent
wrong answer``, ``hang``, ``bare traceback``, ``misleading error``,
``hygiene``) or ``clear error`` for a case that was already right; every row
now behaves as its ``message`` says. ``python -m tests.test_bad_inputs``
renders the table to ``docs/reliability.md``; a test checks the doc is current.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import hashlib
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from tests.conftest import TinyDB

DOC = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"
ANN = [(200, "N"), (500, "N"), (800, "V"), (1100, "N"), (1400, "N")]
TMP_RE = re.compile(r"\.(tmp|old)$|\.tmp\.npy$|^\.maps_|\.partial$|^\.write-probe|^\.lock$")


# -- the world a row runs in ---------------------------------------------------------------


@dataclasses.dataclass
class Env:
    """What a row's ``setup`` may use. Paths are under ``root`` (the test's ``tmp_path``)."""

    root: Path
    template: Path  # the module's trained run (read-only: copy it with ``run()``)
    mp: pytest.MonkeyPatch
    stack: contextlib.ExitStack

    @property
    def db(self) -> TinyDB:
        return TinyDB(self.root / "data")

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def mitdb(self, *records: str) -> TinyDB:
        """``records`` (default: 100 and 101) as tiny mitdb records, five beats each."""
        for r in records or ("100", "101"):
            self.db.record(r, ANN, n_samples=1600)
        self.cache.mkdir(exist_ok=True)
        return self.db

    def run(self) -> Path:
        """A private copy of the trained run (explained with saliency-label and profiled)."""
        dst = self.root / "run"
        if not dst.exists():
            shutil.copytree(self.template, dst)
        return dst

    def config(self, text: str | None = None, name: str = "cfg.py") -> Path:
        """A training config file (default: the trained run's config)."""
        p = self.root / name
        p.write_text(text if text is not None else TINY_CONFIG_PY.format(json=str(self.template / "config.json")))
        return p


def summary_args(env: Env, *extra: str, protocol: str = "tiny") -> list[str]:
    """``ecgjax data summary`` over records 100 and 101 (a protocol preset restricted to them)."""
    env.mp.setattr("ecgjax.data.protocols._PRESETS", {**_presets(), "tiny": _tiny_protocol()})
    return ["data", "summary", "--protocol", protocol, "--split", "holdout", "--data-dir", str(env.root / "data"),
            "--cache-dir", str(env.cache), "--no-download", *extra]


def mitdb_summary(env: Env, *extra: str) -> list[str]:
    env.mitdb()
    return summary_args(env, *extra)


def _presets():
    from ecgjax.data import protocols

    return dict(protocols._PRESETS)


def _tiny_protocol():
    from ecgjax.data import protocols

    return protocols.get("jones2020", records=("100", "101")).replace(name="tiny")


TINY_CONFIG_PY = '''
from pathlib import Path
from ecgjax.config import from_json

def get_config(arg=None):
    return from_json(Path({json!r}).read_text())
'''

STUDY_CONFIG_PY = '''
from ecgjax.config import from_json
from ecgjax.study import MethodSpec, RunSpec, StudyConfig
from pathlib import Path

def get_config(arg=None):
    cfg = from_json(Path({json!r}).read_text())
    return StudyConfig(name="tiny study", runs=(RunSpec("a", cfg, explain=True),), methods=(MethodSpec("saliency"),))
'''


def train_args(env: Env, workdir: Path, *sets: str) -> list[str]:
    return ["train", "--config", str(env.config()), "--workdir", str(workdir), *[a for s in sets for a in ("--set", s)]]


def explain_args(env: Env, *extra: str) -> list[str]:
    return ["explain", "--workdir", str(env.run()), *extra]


def profile_args(env: Env, *extra: str) -> list[str]:
    return ["profile", "--workdir", str(env.run()), "--n-boot", "5", *extra]


def raise_on_call(env: Env, target: str, n: int = 1, exc=KeyboardInterrupt):
    """Patch ``target`` (a dotted name) so its ``n``-th call raises ``exc`` (Ctrl-C by default)."""
    mod, _, attr = target.rpartition(".")
    import importlib

    orig = getattr(importlib.import_module(mod), attr)
    calls = []

    def wrapped(*a, **kw):
        calls.append(1)
        if len(calls) >= n:
            raise exc()
        return orig(*a, **kw)

    env.mp.setattr(target, wrapped)


def lock(env: Env, workdir: Path) -> None:
    """Hold ``workdir``'s lock for the rest of the row (as another process would)."""
    from ecgjax.io import workdir_lock

    env.stack.enter_context(workdir_lock(workdir))


# -- record corruptions ------------------------------------------------------------------


def _edit_header(db: TinyDB, name: str, fn: Callable[[list[str]], list[str]]) -> None:
    p = db.folder / f"{name}.hea"
    lines = p.read_text().splitlines()
    p.write_text("\n".join(fn(lines)) + "\n")


def _signal_field(lines: list[str], j: int, k: int, value: str) -> list[str]:
    """Set field ``k`` (0: file, 1: format[xgain(baseline)/units], 5: init value, 6: checksum) of signal line ``j``."""
    parts = lines[1 + j].split()
    parts[k] = value
    return lines[: 1 + j] + [" ".join(parts)] + lines[2 + j :]


def record(env: Env, how: str) -> list[str]:
    """Break record 100 in one way; return the summary command."""
    db = env.mitdb()
    base = db.folder / "100"
    if how == "truncated_dat":
        dat = base.with_suffix(".dat")
        dat.write_bytes(dat.read_bytes()[: dat.stat().st_size // 2])
    elif how == "missing_dat":
        base.with_suffix(".dat").unlink()
    elif how == "missing_atr":
        base.with_suffix(".atr").unlink()
    elif how == "garbled_header":
        base.with_suffix(".hea").write_text("this is not # a header\n\x00\x01 garbage\n")
    elif how == "empty_atr":
        base.with_suffix(".atr").write_bytes(b"")
    elif how == "nan":
        sig = np.tile(np.arange(1600, dtype=np.int16)[:, None] % 50, (1, 2))
        sig[900, 1] = -32768  # format 16's invalid-sample marker: wfdb returns NaN
        db.record("100", ANN, signal=sig)
    elif how == "inf_gain":
        db.record("100", ANN, n_samples=1600)
        _edit_header(db, "100", lambda ls: _signal_field(ls, 0, 2, "1e-40/mV"))
    elif how == "fmt_212_as_8":
        db.record("100", ANN, n_samples=1600, fmt="212")
        _edit_header(db, "100", lambda ls: _signal_field(_signal_field(ls, 0, 1, "8"), 1, 1, "8"))
    elif how == "fmt_16_as_212":
        _edit_header(db, "100", lambda ls: _signal_field(_signal_field(ls, 0, 1, "212"), 1, 1, "212"))
    elif how == "fmt_16_as_61":  # same size, bytes read the other way round: only the checksum can tell
        _edit_header(db, "100", lambda ls: _signal_field(_signal_field(ls, 0, 1, "61"), 1, 1, "61"))
    elif how == "checksum_field":
        _edit_header(db, "100", lambda ls: _signal_field(ls, 1, 6, "12345"))
    elif how == "init_value":
        _edit_header(db, "100", lambda ls: _signal_field(ls, 0, 5, "77"))
    elif how == "sha256":
        dat = base.with_suffix(".dat")
        digest = hashlib.sha256(dat.read_bytes()).hexdigest()
        (db.folder / "SHA256SUMS.txt").write_text(f"{digest}  100.dat\n")
        data = bytearray(dat.read_bytes())
        data[10] ^= 0xFF
        dat.write_bytes(bytes(data))
    elif how in ("dat_dir", "hea_dir", "atr_dir"):
        p = base.with_suffix("." + how[:3])
        p.unlink()
        p.mkdir()
    elif how == "sums_dir":
        (db.folder / "SHA256SUMS.txt").mkdir()
    elif how == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads any file; the permission check is covered where tests run unprivileged")
        base.with_suffix(".dat").chmod(0)
    elif how == "ann_outside":
        db.record("100", [(200, "N"), (500, "N"), (5000, "N")], n_samples=1600)
    elif how == "one_lead":
        db.record("101", ANN, n_samples=1600, n_leads=1)
    else:
        raise ValueError(how)
    return summary_args(env)


def cache_world(env: Env, how: str) -> list[str]:
    """A cache entry written by a first summary, then damaged in one way."""
    from ecgjax.cli import main

    args = mitdb_summary(env)
    assert main(args) == 0
    (path,) = env.cache.glob("*.npz")
    if how == "garbage":
        path.write_bytes(b"not a zip file at all")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:-200])
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        meta = json.loads(str(arrays["meta"]))
        if how == "nan":
            arrays["x"][3, 5, 0] = np.nan
        elif how == "labels":
            arrays["y"][0] = 99
        elif how == "foreign":
            meta["key"] = "0" * 20
        elif how == "short":
            arrays["r"] = arrays["r"][:-1]
        arrays["meta"] = np.array(json.dumps(meta))
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    return args


def cache_rebuilt(env: Env) -> None:
    from ecgjax.data.dataset import BeatSet

    (path,) = env.cache.glob("*.npz")
    b = BeatSet.load(path)
    assert np.isfinite(b.x).all() and b.y.max() < len(b.classes) and len(b.r) == len(b.y)


# -- the table -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes:
      id: short name (the test id).
      category: what the issue found before the fix (see the module docstring).
      what: the bad input, in words (the doc's first column).
      setup: prepares files under ``env.root``; returns the CLI arguments, or a
        callable run through the CLI's error handling (library entry points).
      message: a fragment stderr (or the log) must contain (``{pid}``: this process's id).
      exit: the exit status.
      changes: glob patterns (relative to ``env.root``) that may be created or
        changed; everything else must be byte-identical afterwards.
      check: a further assertion after the command (e.g. the rerun resumes).
    """

    id: str
    category: str
    what: str
    setup: Callable[[Env], list[str] | Callable[[], object]]
    message: str
    exit: int = 2
    changes: tuple[str, ...] = ()
    check: Callable[[Env], None] | None = None


def _rec(how):
    return lambda env: record(env, how)


def _cache(how):
    return lambda env: cache_world(env, how)


def _nan_logits(env):
    import jax.numpy as jnp

    from ecgjax import attribution
    from ecgjax.attribution.runner import attribute_dataset
    from ecgjax.models.base import Fns

    def logit_fn(x):
        z = jnp.stack([x[:, 0, 0], -x[:, 0, 0], 0 * x[:, 0, 0]], axis=-1)
        return z.at[1].set(jnp.nan)  # one beat's logits are NaN: argmax would call it class 0

    fns = Fns(logit_fn=logit_fn, feature_fn=lambda x: x, head_fn=lambda f: logit_fn(f))
    x = np.ones((4, 8, 1), np.float32)
    return lambda: attribute_dataset(fns, x, "pred", attribution.get("saliency"))


def _study_world(env, *, config_json: dict | None, n_files: int = 91) -> list[str]:
    """A workdir full of someone else's results (``config_json`` None: no config.json at all)."""
    wd = env.root / "other_study"
    for i in range(n_files):
        p = wd / ("runs" if i % 2 else "attributions") / f"r{i % 7}" / f"file{i}.npz"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(bytes([i]) * 64)
    if config_json is not None:
        (wd / "config.json").write_text(json.dumps(config_json))
    cfg = env.config(STUDY_CONFIG_PY.format(json=str(env.template / "config.json")), name="study_cfg.py")
    return ["study", "--config", str(cfg), "--workdir", str(wd), "--force"]


def _resume_with_damaged_metrics(env):
    run = env.run()
    (run / "results.json").unlink()
    lines = (run / "metrics.jsonl").read_text().splitlines()
    env.n_metrics = len(lines)
    lines[1] = lines[1][: len(lines[1]) // 2]  # cut in the middle
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return train_args(env, run)


def _metrics_kept(env):
    n = len((env.root / "run" / "metrics.jsonl").read_text().splitlines())
    assert n == env.n_metrics - 1, "only the damaged line is dropped"
    assert (env.root / "run" / "results.json").exists()


def _lock_released(env, wd):
    from ecgjax.io import workdir_lock

    with workdir_lock(wd):
        pass


def _profile_rerun_has_figures(env):
    from ecgjax.cli import main

    env.mp.undo()  # Ctrl-C no more
    out = env.root / "run" / "profiles" / "saliency-label"
    shutil.rmtree(out)
    assert main(profile_args(env)) == 0
    assert (out / "figures" / "class_heatmap.png").exists() and (out / "comparisons.json").exists()


def _no_outside(env):
    assert not (env.root / "x").exists() and not (env.root.parent / "x").exists()


def _explain_force_interrupted(env):
    raise_on_call(env, "ecgjax.attribution.runner.write_class_file", n=2)
    return explain_args(env, "--method", "gradient_x_input", "--name", "saliency-label", "--force")


def _profile_interrupted(env):
    raise_on_call(env, "ecgjax.analysis.plotting.save_figure", n=2)
    return profile_args(env)


def _train_interrupted(env):
    raise_on_call(env, "ecgjax.train.loop.build")
    return train_args(env, env.root / "fresh")


def _extract_interrupted(env):
    args = mitdb_summary(env)
    raise_on_call(env, "ecgjax.data.wfdb_io.read_record", n=2)
    return args


def _cache_full(env):
    import errno

    args = mitdb_summary(env)

    def full(*a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    env.mp.setattr("ecgjax.data.dataset.BeatSet.save", full)
    return args


def _cache_is_a_file(env):
    env.mitdb()
    args = summary_args(env)
    env.cache.rmdir()
    env.cache.write_text("a file where the cache folder should be")
    calls = []
    import ecgjax.data.wfdb_io as w

    orig = w.read_record
    env.mp.setattr(w, "read_record", lambda *a, **k: calls.append(1) or orig(*a, **k))
    env.read_calls = calls
    return args


def _no_record_read(env):
    assert env.read_calls == [], "the cache folder is checked before any record is read"


def _summarize_damaged(env, what):
    run = env.run()
    (run / "results.json").write_text('{"name": "cut off')
    if what == "summarize":
        return ["summarize", str(run)]
    return explain_args(env)


def put(path: Path, text: str) -> None:
    path.write_text(text)


def _truncate(path: Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def _damaged_elapsed(env):
    run = env.run()
    (run / "results.json").unlink()
    (run / "elapsed.json").write_text("{not json")
    return train_args(env, run)


def _model_outputs_nan_in_training(env):
    return train_args(env, env.root / "diverged", "train.lr=1e30", "train.plateau=False", "train.plateau_min_lr=0.0")


CASES: list[Case] = [
    # ---- records: every problem names the record and the file ------------------------------
    Case("truncated_dat", "clear error", "a .dat shorter than its header says", _rec("truncated_dat"), "100.dat is truncated"),
    Case("missing_dat", "clear error", "a missing .dat", _rec("missing_dat"), "100.dat is missing"),
    Case("missing_atr", "clear error", "a missing .atr", _rec("missing_atr"), "reference annotation file"),
    Case("garbled_header", "clear error", "a header wfdb cannot parse", _rec("garbled_header"), "cannot parse header"),
    Case("empty_atr", "clear error", "an empty .atr", _rec("empty_atr"), "100.atr holds no annotations"),
    Case("nan_samples", "clear error", "invalid (NaN) samples", _rec("nan"), "NaN (invalid) samples, first at sample 900 (lead V1)"),
    Case("inf_gain", "silent wrong answer", "header gain 1e-40: samples become inf in float32 (passed the NaN check)",
         _rec("inf_gain"), "infinite in physical units, first at sample 0 (lead MLII"),
    Case("fmt_212_as_8", "silent wrong answer", "format code 212 written as 8 in the header (read garbage)",
         _rec("fmt_212_as_8"), "the header's format code or sample count is wrong"),
    Case("fmt_16_as_212", "silent wrong answer", "format code 16 written as 212 in the header",
         _rec("fmt_16_as_212"), "the header's format code or sample count is wrong"),
    Case("fmt_16_as_61", "silent wrong answer", "format 16 written as 61 (same size, other byte order)",
         _rec("fmt_16_as_61"), "does not match the checksum in"),
    Case("checksum_field", "silent wrong answer", "a signal that contradicts the header's checksum field",
         _rec("checksum_field"), "does not match the checksum in"),
    Case("init_value", "silent wrong answer", "a signal that contradicts the header's initial value",
         _rec("init_value"), "starts with"),
    Case("sha256", "clear error", "a .dat that differs from SHA256SUMS.txt", _rec("sha256"), "does not match"),
    Case("dat_dir", "bare traceback", "a folder where 100.dat should be", _rec("dat_dir"), "100.dat is not a regular file"),
    Case("hea_dir", "bare traceback", "a folder where 100.hea should be", _rec("hea_dir"), "100.hea is not a regular file"),
    Case("atr_dir", "bare traceback", "a folder where 100.atr should be", _rec("atr_dir"), "100.atr is not a regular file"),
    Case("sums_dir", "bare traceback", "a folder where SHA256SUMS.txt should be", _rec("sums_dir"), "SHA256SUMS.txt"),
    Case("unreadable_dat", "bare traceback", "a .dat without read permission", _rec("unreadable"), "not readable"),
    Case("ann_outside", "clear error", "annotations outside the signal", _rec("ann_outside"), "outside the signal"),
    Case("lead_count", "clear error", "records with different lead counts", _rec("one_lead"), "record 101: has 1 leads"),
    Case("unknown_protocol", "clear error", "an unknown protocol",
         lambda env: ["data", "summary", "--protocol", "nope", "--data-dir", str(env.root)], "unknown protocol 'nope'"),
    Case("unknown_split", "clear error", "an unknown split",
         lambda env: mitdb_summary(env, "--split", "loo"), "unknown split 'loo'"),
    Case("no_database", "clear error", "no database and no download",
         lambda env: ["data", "summary", "--protocol", "jones2020", "--data-dir", str(env.root / "none"), "--no-download"],
         "database 'mitdb' not found"),
    Case("download_fails", "clear error", "no database and the download fails",
         lambda env: ["data", "summary", "--protocol", "jones2020", "--data-dir", str(env.root / "none")],
         "the download from PhysioNet failed"),
    Case("summary_negative_seed", "bare traceback", "data summary --seed -1",
         lambda env: mitdb_summary(env, "--seed", "-1"), "--seed: must be >= 0, got -1"),
    # ---- the beat cache ---------------------------------------------------------------------
    Case("cache_garbage", "clear error", "a cache file that is not an npz: rebuilt", _cache("garbage"),
         "is damaged or truncated", exit=0, changes=("cache/*",), check=cache_rebuilt),
    Case("cache_truncated", "bare traceback", "a truncated cache .npz: rebuilt", _cache("truncated"),
         "is damaged or truncated", exit=0, changes=("cache/*",), check=cache_rebuilt),
    Case("cache_nan", "silent wrong answer", "a tampered cache holding NaN: rebuilt", _cache("nan"),
         "hold NaN or inf values", exit=0, changes=("cache/*",), check=cache_rebuilt),
    Case("cache_labels", "silent wrong answer", "a tampered cache with labels out of range: rebuilt", _cache("labels"),
         "labels outside", exit=0, changes=("cache/*",), check=cache_rebuilt),
    Case("cache_foreign", "silent wrong answer", "a foreign cache file under this key: rebuilt", _cache("foreign"),
         "expected 1 / ", exit=0, changes=("cache/*",), check=cache_rebuilt),
    Case("cache_short", "silent wrong answer", "a cache whose arrays disagree in length: rebuilt", _cache("short"),
         "do not have the", exit=0, changes=("cache/*",), check=cache_rebuilt),
    Case("cache_dir_is_file", "bare traceback", "a file where the cache folder should be (fails before extraction)",
         _cache_is_a_file, "is not writable", check=_no_record_read),
    Case("cache_full", "bare traceback", "the disk fills while writing the cache: the beats are kept",
         _cache_full, "continuing without it", exit=0),
    Case("extract_ctrl_c", "bare traceback", "Ctrl-C during extraction", _extract_interrupted,
         "interrupted; rerun the same command to resume", exit=130),
    # ---- training configs: checked before any work; the workdir is not created -----------------
    Case("dropout", "silent wrong answer", "model dropout=1.5",
         lambda env: train_args(env, env.root / "w", "model.kwargs.dropout=1.5"), "model.kwargs.dropout=1.5; must be a number in [0, 1)"),
    Case("zero_filters", "hang", "filters=(0, 4, 4, 4) (hung 300 s inside orbax)",
         lambda env: train_args(env, env.root / "w", "model.kwargs.filters=(0,4,4,4)"), "model.kwargs.filters=(0, 4, 4, 4); must be whole numbers >= 1"),
    Case("model_kwarg_typo", "misleading error", "a misspelt model keyword",
         lambda env: train_args(env, env.root / "w", "model.kwargs.filterz=(4,4,4,4)"), "has no keyword 'filterz'; did you mean filters?"),
    Case("unknown_key", "clear error", "an unknown config key",
         lambda env: train_args(env, env.root / "w", "train.lrr=1e-3"), "unknown config key 'train.lrr'; did you mean lr"),
    Case("batch_zero", "clear error", "train.batch_size=0",
         lambda env: train_args(env, env.root / "w", "train.batch_size=0"), "train.batch_size=0; must be > 0"),
    Case("negative_seed", "bare traceback", "train.seed=-1",
         lambda env: train_args(env, env.root / "w", "train.seed=-1"), "train.seed=-1; must be a whole number >= 0"),
    Case("split_kwargs", "bare traceback", "an unknown split keyword",
         lambda env: train_args(env, env.root / "w", "data.split_kwargs.folds=1"), "has no keyword 'folds'; did you mean fold?"),
    Case("wrong_type", "clear error", "a value of the wrong type",
         lambda env: train_args(env, env.root / "w", "train.lr=abc"), "train.lr: expected float"),
    Case("unknown_protocol_cfg", "clear error", "an unknown data.protocol",
         lambda env: train_args(env, env.root / "w", "data.protocol=jones2021"), "data.protocol='jones2021'; choose one of"),
    Case("unknown_model", "clear error", "an unknown model",
         lambda env: train_args(env, env.root / "w", "model.name=cnn"), "unknown model 'cnn'"),
    Case("missing_config", "clear error", "a config file that does not exist",
         lambda env: ["train", "--config", str(env.root / "nope.py"), "--workdir", str(env.root / "w")], "does not exist"),
    Case("config_not_py", "bare traceback", "a config file that is not a .py file (a run's config.json)",
         lambda env: put(env.root / "config.json", "{}") or ["train", "--config", str(env.root / "config.json"), "--workdir", str(env.root / "w")],
         "is not a Python file: a config is a .py file"),
    Case("broken_config", "clear error", "a config file with a syntax error",
         lambda env: ["train", "--config", str(env.config("def get_config(:\n")), "--workdir", str(env.root / "w")],
         "failed to import", changes=("cfg.py",)),
    Case("batch_too_big", "hygiene", "batch larger than the training set (config.json was left behind, blocking the workdir)",
         lambda env: train_args(env, env.root / "w", "train.batch_size=4096"), "is larger than the"),
    Case("other_config", "clear error", "a workdir holding another config",
         lambda env: train_args(env, env.run(), "train.lr=0.5"), "holds a run with another config"),
    Case("damaged_run_config", "clear error", "a damaged config.json in the workdir",
         lambda env: put(env.run() / "config.json", "{") or train_args(env, env.run()), "is not a readable ecgjax config"),
    Case("workdir_is_a_file", "bare traceback", "a file where the workdir should be (an OS error: one line)",
         lambda env: put(env.root / "w", "a file") or train_args(env, env.root / "w"), "w: File exists"),
    Case("train_locked", "hygiene", "a second process on the same workdir (interleaved metrics)",
         lambda env: (env.run() / "results.json").unlink() or lock(env, env.run()) or train_args(env, env.run()),
         "is in use by process {pid}"),
    Case("metrics_line", "lost data", "one damaged line in metrics.jsonl on resume (dropped the whole history)",
         _resume_with_damaged_metrics, "metrics.jsonl line 2 is damaged; skipped", exit=0,
         changes=("run/metrics.jsonl", "run/results.json", "run/predictions.npz", "run/elapsed.json"), check=_metrics_kept),
    Case("damaged_elapsed", "bare traceback", "a damaged elapsed.json on resume", _damaged_elapsed, "wall-time file"),
    Case("train_ctrl_c", "bare traceback", "Ctrl-C during training: lock and temporaries released", _train_interrupted,
         "interrupted; rerun the same command to resume", exit=130, changes=("fresh", "fresh/config.json"),
         check=lambda env: _lock_released(env, env.root / "fresh")),
    Case("diverged", "silent wrong answer", "training diverges: NaN logits (were counted as class 0)",
         _model_outputs_nan_in_training, "the model outputs NaN or inf", changes=("diverged", "diverged/**")),
    Case("summarize_damaged", "bare traceback", "summarize a run with a damaged results.json",
         lambda env: _summarize_damaged(env, "summarize"), "not valid JSON", changes=("run/results.json",)),
    Case("summarize_unfinished", "clear error", "summarize a run that has not finished",
         lambda env: (env.run() / "results.json").unlink() or ["summarize", str(env.run())], "no results.json"),
    # ---- explain / profile --------------------------------------------------------------------
    Case("hp_type", "bare traceback", "--hp steps=abc",
         lambda env: explain_args(env, "--method", "integrated_gradients", "--hp", "steps=abc"), "steps='abc' should be int"),
    Case("hp_unknown", "clear error", "an unknown hyperparameter",
         lambda env: explain_args(env, "--method", "integrated_gradients", "--hp", "stepz=3"), "did you mean steps?"),
    Case("hp_range", "bare traceback", "--hp steps=0",
         lambda env: explain_args(env, "--method", "integrated_gradients", "--hp", "steps=0"), "steps and chunk_size must be >= 1"),
    Case("batch_size_zero", "bare traceback", "explain --batch-size 0",
         lambda env: explain_args(env, "--batch-size", "0"), "--batch-size: must be >= 1, got 0"),
    Case("explain_negative_seed", "bare traceback", "explain --seed -1",
         lambda env: explain_args(env, "--seed", "-1"), "--seed: must be >= 0, got -1"),
    Case("unknown_method", "clear error", "an unknown method",
         lambda env: explain_args(env, "--method", "salency"), "unknown attribution method 'salency'"),
    Case("bad_target", "clear error", "an unknown target class", lambda env: explain_args(env, "--target", "X"), "--target 'X'"),
    Case("name_escapes", "hygiene", "explain --name ../../x (wrote outside the run)",
         lambda env: explain_args(env, "--name", "../../x"), "must be a plain folder name", check=_no_outside),
    Case("other_settings", "clear error", "explain into a folder holding another method's maps",
         lambda env: explain_args(env, "--method", "gradient_x_input", "--name", "saliency-label"), "already holds other attributions"),
    Case("explain_force_ctrl_c", "lost data", "Ctrl-C during explain --force (left two methods' maps under old metadata)",
         _explain_force_interrupted, "interrupted; rerun the same command to resume", exit=130),
    Case("not_a_run", "clear error", "explain a folder that is not a run",
         lambda env: ["explain", "--workdir", str(env.root)], "is not an ecgjax run (no config.json)"),
    Case("explain_damaged_results", "bare traceback", "explain a run whose results.json is damaged",
         lambda env: _summarize_damaged(env, "explain"), "results file", changes=("run/results.json",)),
    Case("explain_truncated_predictions", "bare traceback", "explain a run whose predictions.npz is truncated",
         lambda env: _truncate(env.run() / "predictions.npz") or explain_args(env), "predictions file"),
    Case("damaged_meta", "bare traceback", "explain over a folder whose meta.json is damaged",
         lambda env: put(env.run() / "attributions" / "saliency-label" / "meta.json", "{") or explain_args(env),
         "meta.json is damaged"),
    Case("profile_truncated_npz", "bare traceback", "profile maps from a truncated class npz",
         lambda env: _truncate(next((env.run() / "attributions" / "saliency-label").glob("class_*.npz"))) or profile_args(env),
         "is damaged or truncated"),
    Case("profile_all", "bare traceback", "profile --target all", lambda env: profile_args(env, "--target", "all"),
         "profile --target all: profiles need one map per beat"),
    Case("profile_first", "clear error", "profile before explain", lambda env: profile_args(env, "--method", "occlusion"),
         "run `ecgjax explain"),
    Case("profile_ctrl_c", "lost data", "a run killed while writing profile figures (the rerun skipped them)",
         _profile_interrupted, "interrupted; rerun the same command to resume", exit=130, check=_profile_rerun_has_figures),
    Case("nan_logits", "silent wrong answer", "NaN logits in attribute_dataset (were counted as class 0)",
         _nan_logits, "logits are NaN or inf for 1 beats, the first at row 1"),
    Case("layer_method", "bare traceback", "a layer method on a model without that layer",
         lambda env: explain_args(env, "--method", "jones2020_layer_saliency"), "jones2020_layer_saliency"),
    # ---- traverse --------------------------------------------------------------------------------
    Case("traverse_target", "clear error", "traverse towards a class the run does not have",
         lambda env: ["traverse", "--workdir", str(env.run()), "--target", "X", "--source", "c0"],
         "--target 'X': not a class of this run; classes: c0"),
    Case("traverse_same_class", "clear error", "traverse with the same --target and --source",
         lambda env: ["traverse", "--workdir", str(env.run()), "--target", "c0", "--source", "c0"], "are both 'c0'"),
    Case("traverse_points", "clear error", "traverse --points 1 (a path without an end)",
         lambda env: ["traverse", "--workdir", str(env.run()), "--target", "c1", "--source", "c0", "--points", "1"],
         "--points 1: a path needs at least 2 points"),
    Case("traverse_method", "clear error", "traverse with an unknown attribution method for the profile",
         lambda env: ["traverse", "--workdir", str(env.run()), "--target", "c1", "--source", "c0", "--method", "salency"],
         "--method 'salency': not a registered attribution method"),
    # ---- studies --------------------------------------------------------------------------------
    Case("study_force_other", "lost data", "study --force on another study's workdir (deleted 91 of 92 files)",
         lambda env: _study_world(env, config_json={"name": "another study"}), "holds another study",
         changes=("study_cfg.py",)),
    Case("study_force_foreign", "lost data", "study --force on a non-empty folder without a study config",
         lambda env: _study_world(env, config_json=None), "is not empty and holds no study config.json",
         changes=("study_cfg.py",)),
    Case("study_locked", "hygiene", "a second process on the same study workdir",
         lambda env: (_study_world(env, config_json=None, n_files=0), lock(env, env.root / "other_study"))[0],
         "is in use by process {pid}", changes=("study_cfg.py",)),
]


# -- running a row ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A tiny trained run (synthetic beats, ribeiro_cnn), explained with saliency-label and profiled."""
    from ecgjax.cli import main
    from ecgjax.config import Config, DataConfig, EvalConfig, ModelConfig, TrainConfig, to_json
    from ecgjax.train import train_and_evaluate

    cfg = Config(
        name="tiny",
        data=DataConfig(protocol="synthetic", protocol_overrides={"n_records": 6, "beats_per_record": 20, "t": 64},
                        split="kfold", split_kwargs={"fold": 0, "k": 3, "n_val_records": 1}),
        model=ModelConfig(name="ribeiro_cnn", kwargs={"filters": (4, 4), "lead_layout": "channels"}),
        train=TrainConfig(batch_size=16, eval_batch_size=32, epochs=1, checkpoint_every=2, log_every=1),
        eval=EvalConfig(bootstrap_samples=5),
    )
    wd = tmp_path_factory.mktemp("bad-inputs") / "run"
    train_and_evaluate(cfg, wd)
    assert to_json(cfg)
    assert main(["explain", "--workdir", str(wd)]) == 0
    assert main(["profile", "--workdir", str(wd), "--n-boot", "5"]) == 0
    return wd


def snapshot(root: Path) -> dict[str, str]:
    """{relative path: sha1 of the content, or "dir"} of everything under ``root``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in filenames:
            if f == ".lock":  # held by the row's own setup; checked as a leftover separately
                continue
            p = os.path.join(dirpath, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root)] = hashlib.sha1(fh.read()).hexdigest()
    return out


def run_cli(target) -> int:
    """``ecgjax.cli.main(argv)`` (argparse errors become their exit status) or a library call
    through the same error handling."""
    from ecgjax.cli import main, run_guarded

    if callable(target):
        return run_guarded(lambda _: target() and 0, None)
    try:
        return main([str(a) for a in target])
    except SystemExit as e:
        return int(e.code)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, template, tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level("INFO")
    with contextlib.ExitStack() as stack:
        env = Env(tmp_path, template, monkeypatch, stack)
        target = case.setup(env)
        before = snapshot(tmp_path)
        code = run_cli(target)
    out, err = capsys.readouterr()
    text = err + caplog.text
    assert "Traceback" not in text
    assert case.message.replace("{pid}", str(os.getpid())) in text, text[-2000:]
    assert code == case.exit, text[-2000:]
    if code == 2:
        assert err.count("error: ") == 1 or "usage:" in err, err
    after = snapshot(tmp_path)
    leftovers = [str(p) for p in tmp_path.rglob("*") if TMP_RE.search(p.name)]
    assert not leftovers, f"temporary files left: {leftovers}"

    def allowed(p):
        return any(fnmatch.fnmatch(p, g) for g in case.changes)

    deleted = [p for p in before if p not in after and not allowed(p)]
    changed = [p for p in after if before.get(p) != after[p] and not allowed(p)]
    assert not deleted, f"deleted: {deleted[:10]}"
    assert not changed, f"created or changed: {changed[:10]}"
    if case.check is not None:
        case.check(env)


def test_the_table_is_large_and_every_category_is_covered():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    cats = {c.category for c in CASES}
    assert {"lost data", "silent wrong answer", "hang", "bare traceback", "hygiene"} <= cats


# -- docs/reliability.md -----------------------------------------------------------------------


def render() -> str:
    """The table as Markdown (``python -m tests.test_bad_inputs`` writes it to docs/reliability.md)."""
    rows = ["# Reliability: bad inputs, faults and interruptions", "",
            "Generated from `tests/test_bad_inputs.py` (`python -m tests.test_bad_inputs`); every row is a test that",
            "asserts the exit status, the message fragment, no traceback, no temporary file left, and that nothing",
            "else was deleted or changed. *Before* is the behaviour before the fix (issue 13's report, and reading",
            "the code of that time); *now* is what the test asserts.", "",
            "Exit status: 2 = a bad input, one line `ecgjax: error: ...`; 130 = Ctrl-C, "
            "`ecgjax: interrupted; rerun the same command to resume`; 0 = ecgjax recovers (and says so in the log).", "",
            f"{len(CASES)} cases. Before: " + ", ".join(f"{n} {c}" for c, n in sorted(_counts().items())) + ".", "",
            "| case | before | now: exit | now: message contains |", "|---|---|---|---|"]
    for c in CASES:
        rows.append(f"| {c.what} | {c.category} | {c.exit} | `{c.message.replace('|', '/')}` |")
    return "\n".join(rows) + "\n"


def _counts() -> dict[str, int]:
    out: dict[str, int] = {}
    for c in CASES:
        out[c.category] = out.get(c.category, 0) + 1
    return out


def test_doc_is_current():
    assert DOC.read_text() == render(), "regenerate with: python -m tests.test_bad_inputs"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC} ({len(CASES)} cases)", file=sys.stderr)
