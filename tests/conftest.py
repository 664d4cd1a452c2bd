"""Shared fixtures: tiny WFDB records written with wfdb's own writers, and real MIT-BIH.

* ``tiny_db``: a factory that writes small records (signal, sampling rate,
  annotations) into ``<tmp>/data/mitdb`` with ``wfdb.wrsamp`` / ``wfdb.wrann``.
* ``real_data_dir``: the folder holding ``mitdb/`` (``$ECGJAX_DATA_DIR``), or a
  skip with the reason how to enable real-data tests.
* ``real_beats``: session-scoped, one cold extraction per protocol into a
  session cache folder, with the cold time recorded.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REAL_DATA_SKIP = "set ECGJAX_DATA_DIR to the folder holding mitdb/ to run real-data tests"


_XLA_CACHE_ENV = "ECGJAX_TEST_XLA_CACHE"
_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


def users_xla_flags() -> str:
    """``XLA_FLAGS`` without the tests' fast-compile flags: for a subprocess that measures what users get."""
    return os.environ.get("XLA_FLAGS", "").replace(_FAST_COMPILE, "").strip()


def pytest_configure(config):
    """One XLA compilation per program per test run: jax's persistent compilation cache in one folder of this
    run (made here, or by the xdist controller for its workers; removed when the run ends), so the many tests
    that build the same models (initialisers compile per parameter shape), train the same tiny config or rerun
    a study compile once. Every program is stored, however short its compile: an eager primitive compiled by one
    xdist worker is read by the other and by the subprocesses tests start (which share the folder through the
    environment variables set below). ``ECGJAX_TEST_NO_COMPILE_CACHE=1`` turns it off."""
    import atexit
    import shutil
    import tempfile

    # Tests run tiny programs, where XLA's optimisation passes cost more than they save: compile with none of
    # the backend's (in the xdist workers and the subprocesses tests start, which inherit the variable; it must
    # be set before jax starts its backend). About half the compile time of the model tests; programs that
    # compute a lot run slower, so the memory measurement's subprocess compiles as users do (users_xla_flags).
    # ``ECGJAX_TEST_FULL_OPT=1`` compiles as users do.
    if not os.environ.get("ECGJAX_TEST_FULL_OPT") and _FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()
    # One BLAS thread per test process (xdist runs one worker per core): OpenBLAS's threads spin-wait on each other
    # and on XLA's, so on the 2-core machine small scikit-learn fits and SVDs took many times the CPU with its
    # default thread count. Subprocesses inherit the variables; this process's pool is limited below.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # Lowering records each operation's source location; with the full Python traceback of every operation (jax's
    # default) that is a few percent of a compile-bound test's CPU. Tests keep one frame (in this process, its xdist
    # workers and the subprocesses it starts); users keep jax's default.
    os.environ.setdefault("JAX_INCLUDE_FULL_TRACEBACKS_IN_LOCATIONS", "0")
    if "jax" in sys.modules:
        sys.modules["jax"].config.update("jax_include_full_tracebacks_in_locations", False)
    # Models initialised op by op (``ecgjax.models.base.INIT_ENV``): the suite builds about 60 model configurations,
    # whose parameter shapes repeat, so each initialiser's program is compiled once for all of them (and read by the
    # other worker from the compilation cache) where one program per configuration cost 1-4 s of compiling each. The
    # tests of the one-program initialisation unset it.
    os.environ.setdefault("ECGJAX_INIT", "op_by_op")
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    if getattr(config.option, "dist", "no") == "no" or hasattr(config, "workerinput"):  # a process that runs tests
        _record_jax_events(config, os.environ.get(JAX_EVENTS_ENV))
    if os.environ.get("ECGJAX_TEST_NO_COMPILE_CACHE"):
        return
    folder = os.environ.get(_XLA_CACHE_ENV)
    if not folder:  # this run's own folder; xdist workers inherit the variable
        folder = tempfile.mkdtemp(prefix="ecgjax-test-xla-")
        os.environ[_XLA_CACHE_ENV] = folder
        atexit.register(shutil.rmtree, folder, True)
    if getattr(config.option, "dist", "no") != "no" and not hasattr(config, "workerinput"):
        return  # the xdist controller runs no test
    import jax

    # each setting also as its environment variable (jax reads those when it starts): the subprocesses tests start
    # share the folder, e.g. a training killed in a child compiles what the test's own fixture compiled
    settings = {"jax_compilation_cache_dir": folder, "jax_persistent_cache_min_compile_time_secs": 0,
                "jax_persistent_cache_min_entry_size_bytes": -1}
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)
        jax.config.update(name, value)


JAX_EVENTS_ENV = "ECGJAX_TEST_JAX_EVENTS"
# jax.monitoring events summed per test process (counts) and their seconds: how much compiling a run does, in numbers
# that do not move with the host's speed (the count of XLA compilations) beside those that do
# (``backend_compiles``: one per ``backend_compile_duration`` event, which jax records for every program it compiles or
# loads from the persistent cache; ``compile_requests``: the programs asked of that cache, ``cache_hits`` found there:
# XLA compiled ``backend_compiles - cache_hits``)
JAX_EVENTS = {"compile_requests": "/jax/compilation_cache/compile_requests_use_cache", "cache_hits": "/jax/compilation_cache/cache_hits",
              "backend_compile_s": "/jax/core/compile/backend_compile_duration", "trace_s": "/jax/core/compile/jaxpr_trace_duration",
              "lower_s": "/jax/core/compile/jaxpr_to_mlir_module_duration"}


_EVENTS_KEY = pytest.StashKey[dict]()


def _record_jax_events(config, folder: str | None) -> None:
    """With ``$ECGJAX_TEST_JAX_EVENTS`` (a folder; ``benchmarks/suite_time.py`` sets it), each test process writes
    ``JAX_EVENTS``' totals to ``<folder>/<pid>.json`` when it exits, with ``programs``: ``{jitted function's name:
    [backend compiles (loads from the persistent cache included), their seconds]}`` and ``files``: ``{test file:
    [wall seconds (setup, call, teardown), seconds of jax compiling, tracing and lowering]}``, so that a program or file whose compiling grew shows in the rows of
    two commits (the totals alone mix it with the host's speed)."""
    if not folder:
        return
    import atexit
    import json

    import jax.monitoring

    names = {v: k for k, v in JAX_EVENTS.items()}
    totals = dict.fromkeys([*JAX_EVENTS, "backend_compiles"], 0.0)
    record = config.stash[_EVENTS_KEY] = {"programs": {}, "files": {}, "file": None}

    def count(event, **_):
        if event in names:
            totals[names[event]] += 1

    def add(event, secs, fun_name=None, **_):
        if event in names:
            totals[names[event]] += secs
            if event == JAX_EVENTS["backend_compile_s"]:
                totals["backend_compiles"] += 1
                program = record["programs"].setdefault(str(fun_name), [0, 0.0])
                program[0] += 1
                program[1] += secs
            if record["file"] is not None:
                record["files"].setdefault(record["file"], [0.0, 0.0])[1] += secs

    def write():
        rounded = {k: [n, round(v, 3)] for k, (n, v) in record["programs"].items()}
        files = {k: [round(w, 2), round(j, 2)] for k, (w, j) in record["files"].items()}
        Path(folder, f"{os.getpid()}.json").write_text(json.dumps({**totals, "programs": rounded, "files": files}))

    jax.monitoring.register_event_listener(count)
    jax.monitoring.register_event_duration_secs_listener(add)
    atexit.register(write)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """The wall seconds of each test file (setup, call and teardown) for ``_record_jax_events``' ``files``."""
    record = item.config.stash.get(_EVENTS_KEY, None)
    if record is None:
        yield
        return
    record["file"] = item.nodeid.split("::")[0]
    t0 = time.perf_counter()
    yield
    record["files"].setdefault(record["file"], [0.0, 0.0])[0] += time.perf_counter() - t0
    record["file"] = None


# The default run's files that take longest (fixtures included), longest first: ``make test`` hands whole files to
# its two workers in collection order (``--dist loadfile --no-loadscope-reorder``), so these start first and the
# run ends on short files instead of one worker waiting for the other's last long file. Measured per file on a
# quiet 2-core machine (a test's setup, call and teardown summed over the file); files not listed keep pytest's order.
# tests/study/test_study.py leads the heavy run (make test-heavy: the same order over the tests marked heavy), and
# tests/generative/test_explain.py starts early: it trains the session's VAE, whose programs the generative files
# left unlisted (test_traverse.py, test_vae.py), started later on either worker, read from the compilation cache.
LONGEST_FIRST = (
    "tests/study/test_study.py", "tests/generative/test_explain.py", "tests/attribution/test_contract.py",
    "tests/models/test_models.py", "tests/test_bad_inputs.py", "tests/attribution/test_shapley.py", "tests/test_batched.py",
    "tests/train/test_train.py", "tests/models/test_conv_impls.py", "tests/attribution/test_methods.py",
    "tests/models/test_rr_net.py", "tests/attribution/test_runner.py", "tests/attribution/test_real_models.py",
    "tests/test_interpatient.py", "tests/attribution/test_cli.py", "tests/models/test_lstm_corrected.py",
    "tests/attribution/test_rules.py", "tests/attribution/test_sanity_more.py", "tests/train/test_regression.py",
    "tests/attribution/test_sanity.py", "tests/benchmarks/test_benchmarks_quick.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {f: i for i, f in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: files keep their own order


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path_factory):
    """No test reads the user's data, cache or network by accident.

    ``XDG_CACHE_HOME`` points into a temporary folder, ``ECGJAX_CACHE_DIR`` and
    ``ECGJAX_DATA_DIR`` are unset (real-data tests read the value captured at
    session start through ``real_data_dir``), and the downloader raises.
    """
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg")))
    monkeypatch.delenv("ECGJAX_CACHE_DIR", raising=False)
    monkeypatch.delenv("ECGJAX_DATA_DIR", raising=False)

    def no_network(database, target):
        raise ConnectionError(f"tests never download (asked for {database} into {target})")

    monkeypatch.setattr("ecgjax.data.locate.download_database", no_network)


# -- tiny records ---------------------------------------------------------------


def default_signal(n_samples: int, n_leads: int) -> np.ndarray:
    """i16[S, L] digital samples, all distinct within a lead, so a window cut at
    the wrong offset cannot match by accident."""
    t = np.arange(n_samples)[:, None]
    lead = np.arange(n_leads)[None, :]
    return ((t * 7 + lead * 1001) % 4000 - 2000).astype(np.int16)


@dataclasses.dataclass
class TinyDB:
    """Writes records into ``root/<database>`` with wfdb's writers.

    ``root`` is what ``load_beats(..., data_dir=root)`` / ``--data-dir`` take.
    """

    root: Path
    database: str = "mitdb"

    @property
    def folder(self) -> Path:
        return self.root / self.database

    def record(
        self,
        name: str,
        ann: list[tuple[int, str]],
        *,
        n_samples: int = 3000,
        n_leads: int = 2,
        fs: float = 360,
        signal: np.ndarray | None = None,
        fmt: str = "16",
        adc_gain: float = 200.0,
        sig_name: list[str] | None = None,
    ) -> Path:
        """Write ``name.hea``/``.dat`` (digital ``signal``, i[S, L]) and ``name.atr``.

        Args:
          ann: (sample, symbol) pairs, in file order.
          signal: digital samples; default ``default_signal(n_samples, n_leads)``.

        Returns:
          the record's base path (without extension).
        """
        import wfdb

        self.folder.mkdir(parents=True, exist_ok=True)
        d = default_signal(n_samples, n_leads) if signal is None else np.asarray(signal)
        if d.ndim == 1:
            d = d[:, None]
        n_leads = d.shape[1]
        names = sig_name or (["MLII", "V1", "V2", "V5"][:n_leads])
        wfdb.wrsamp(
            name,
            fs=fs,
            units=["mV"] * n_leads,
            sig_name=names,
            d_signal=d.astype(np.int64 if fmt not in ("16", "212", "80") else np.int16),
            fmt=[fmt] * n_leads,
            adc_gain=[adc_gain] * n_leads,
            baseline=[0] * n_leads,
            write_dir=str(self.folder),
        )
        samples = np.array([s for s, _ in ann], np.int64)
        symbols = [sym for _, sym in ann]
        wfdb.wrann(name, "atr", samples, symbol=symbols, write_dir=str(self.folder))
        return self.folder / name

    def physical(self, name: str) -> np.ndarray:
        """f32[S, L] the record as ``load_beats`` sees it (wfdb's physical values)."""
        import wfdb

        return wfdb.rdrecord(str(self.folder / name)).p_signal.astype(np.float32)


@pytest.fixture
def tiny_db(tmp_path) -> TinyDB:
    return TinyDB(tmp_path / "data")


@pytest.fixture
def cache_path(tmp_path) -> Path:
    """An empty beat-cache folder."""
    p = tmp_path / "cache"
    p.mkdir()
    return p


def normal(rng, shape, scale: float = 1.0):
    """f32[shape] standard normal draws times ``scale``, as a jax array, from numpy's generator (``rng``: a seed or a
    ``np.random.Generator``, drawn in call order). Test inputs and weights come from here, not ``jax.random``:
    XLA:CPU compiles a program per shape for every ``jax.random.normal``, a fifth of a second each."""
    import jax.numpy as jnp

    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return jnp.asarray(rng.standard_normal(shape, dtype=np.float32) * np.float32(scale))


class CompileCounter:
    """Counts XLA compilations (jax's backend-compile monitoring event) while active; a program read from the
    persistent compilation cache (on in the test session: pytest_configure above) is counted too: the event wraps both."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.n = 0

    def _listen(self, event, duration, **kw):
        if event == self.EVENT:
            self.n += 1

    def __enter__(self):
        from jax import monitoring

        monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        from jax import monitoring

        monitoring.unregister_event_duration_listener(self._listen)


def compiles(fn) -> int:
    import jax

    with CompileCounter() as c:
        jax.block_until_ready(fn())
    return c.n


# -- real MIT-BIH ----------------------------------------------------------------

# Captured before the autouse fixture unsets it for every test.
_REAL_DATA_ENV = os.environ.get("ECGJAX_DATA_DIR")


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The data root holding ``mitdb/`` from ``$ECGJAX_DATA_DIR``, else skip."""
    if not _REAL_DATA_ENV:
        pytest.skip(REAL_DATA_SKIP)
    root = Path(_REAL_DATA_ENV)
    if not (root / "mitdb").is_dir():
        pytest.skip(f"{REAL_DATA_SKIP} (ECGJAX_DATA_DIR={root} has no mitdb/)")
    return root


@dataclasses.dataclass
class Loaded:
    beats: object  # BeatSet
    cold_s: float
    cache_dir: Path


@pytest.fixture(scope="session")
def real_cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("real-beat-cache")


def _load_real(name: str, root: Path, cache: Path) -> Loaded:
    from ecgjax.data import load_beats, protocols

    t0 = time.perf_counter()
    beats = load_beats(protocols.get(name), root, cache=cache, download=False)
    return Loaded(beats, time.perf_counter() - t0, cache)


@pytest.fixture(scope="session")
def real_jones(real_data_dir, real_cache_dir) -> Loaded:
    """jones2020 on all 48 records, extracted once per session (cold, timed)."""
    return _load_real("jones2020", real_data_dir, real_cache_dir)


@pytest.fixture(scope="session")
def real_jones_code(real_data_dir, real_cache_dir) -> Loaded:
    return _load_real("jones2020_code", real_data_dir, real_cache_dir)


@pytest.fixture(scope="session")
def real_aami(real_data_dir, real_cache_dir) -> Loaded:
    return _load_real("aami", real_data_dir, real_cache_dir)


# -- a tiny stand-in for the whole of mitdb -------------------------------------------

# Every beat class of the Jones and AAMI presets, rotated per record.
_PATTERN = ["N", "N", "L", "R", "V", "A", "/", "E", "j", "N", "a", "e", "F", "N", "f", "Q", "J", "S"]
_RR = 300


def tiny_mitdb_annotations(i: int) -> list[tuple[int, str]]:
    """The annotations of the i-th tiny mitdb record: len(_PATTERN) beats every 300 samples
    (first at 200), symbols rotated by i, and a non-beat ``+`` after the third beat."""
    syms = _PATTERN[i % len(_PATTERN) :] + _PATTERN[: i % len(_PATTERN)]
    ann = [(200 + _RR * k, s) for k, s in enumerate(syms)]
    ann.insert(3, (200 + _RR * 2 + 100, "+"))
    return ann


@pytest.fixture(scope="session")
def _tiny_mitdb_template(tmp_path_factory) -> Path:
    from ecgjax.data.protocols import MITDB_RECORDS

    db = TinyDB(tmp_path_factory.mktemp("tiny-mitdb") / "data")
    n = 200 + _RR * len(_PATTERN) + 100
    for i, rec in enumerate(MITDB_RECORDS):
        db.record(rec, tiny_mitdb_annotations(i), n_samples=n, sig_name=["MLII", "V1"])
    return db.root


@pytest.fixture
def tiny_mitdb(_tiny_mitdb_template, tmp_path) -> TinyDB:
    """All 48 mitdb record names as tiny records (6,000 samples, 18 beats each), in a
    fresh copy the test may modify."""
    import shutil

    root = tmp_path / "data"
    shutil.copytree(_tiny_mitdb_template, root)
    return TinyDB(root)
