#!/usr/bin/env bash
# One lent GPU session, in phases (benchmarks/README.md, "GPU session", gives the two device calls):
#   setup   install .whl/ into /tmp/site (fallback flax/orbax only if the machine's are outside the pins),
#           unpack .devdata/data.tar.xz, print versions and nvidia-smi; the other phases run it first if needed
#   bench   captum on the same GPU, all ~104k beats end to end, the throughput grid (benchmarks/gpu_session.py)
#   train   the full recipes, most valuable first; unfinished runs come back resumable in runs.tar.gz
# Results go to $OUT (at most 8 files). Each step has its own time limit and the phase stops starting steps
# GPU_SESSION_BUDGET_S seconds (default 240) after it began, so a call with timeout_s 330 returns everything.
# ECGJAX_GPU_SESSION_TINY=1: every step with tiny sizes on whatever device there is (the CPU check; a minute
# or two), e.g. OUT=/tmp/out ECGJAX_GPU_SESSION_TINY=1 bash benchmarks/gpu_session.sh bench
set -uo pipefail
cd "$(dirname "$0")/.."
phase=${1:?usage: gpu_session.sh setup|bench|train [extra gpu_session.py flags]}
shift
: "${OUT:?set OUT to the folder whose files come back}"
mkdir -p "$OUT"
PY=${PY:-python3}
SITE=${GPU_SESSION_SITE:-/tmp/site}
DATA=${GPU_SESSION_DATA:-/tmp/ecgjax_data}
exec > >(tee -a "$OUT/session.log") 2>&1
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
export ECGJAX_DATA_DIR=$DATA ECGJAX_CACHE_DIR=${ECGJAX_CACHE_DIR:-/tmp/ecgjax_cache}
export MPLBACKEND=Agg
[ -f .devdata/SOURCE_COMMIT ] && export ECGJAX_GIT_COMMIT="${ECGJAX_GIT_COMMIT:-$(cat .devdata/SOURCE_COMMIT)} (bundled)"

setup() {
  echo "=== setup $(date -u +%FT%TZ)"
  if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    timeout 120 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
      || { echo "setup: installing .whl/ failed"; return 1; }
  else
    echo "setup: no .whl/ (run scripts/offline_bundle.sh where pip works and carry .whl)"
  fi
  # flax and orbax-checkpoint as pinned in pyproject.toml; the machine's own unless outside the pins
  if ! timeout 120 $PY - <<'PY'
import sys
from importlib.metadata import version
def v(name): return tuple(int(p) for p in version(name).split(".")[:3] if p.isdigit())
ok = (0, 12, 8) <= v("flax") < (0, 13) and (0, 12) <= v("orbax-checkpoint") < (0, 13)
print("flax", version("flax"), "orbax-checkpoint", version("orbax-checkpoint"), "within the pins" if ok else "OUTSIDE the pins")
sys.exit(0 if ok else 1)
PY
  then
    ls .whl/fallback/*.whl >/dev/null 2>&1 && timeout 120 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
      --upgrade --target "$SITE" .whl/fallback/*.whl && echo "setup: installed the bundled flax/orbax-checkpoint"
  fi
  if [ ! -d "$DATA/mitdb" ]; then
    if [ -f .devdata/data.tar.xz ]; then
      rm -rf "$DATA.tmp" && mkdir -p "$DATA.tmp"
      # tar's xz, else Python's lzma (both read the delta filter)
      { timeout 120 tar -xJf .devdata/data.tar.xz -C "$DATA.tmp" \
        || timeout 180 $PY -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter='data')" \
             .devdata/data.tar.xz "$DATA.tmp"; } && mv "$DATA.tmp" "$DATA" \
        || echo "setup: WARNING unpacking .devdata/data.tar.xz failed: the train phase will fail"
    else
      echo "setup: WARNING no .devdata/data.tar.xz (carry .devdata) and no $DATA/mitdb: the train phase will fail"
    fi
  fi
  echo "data: $(ls "$DATA/mitdb" | wc -l) files in mitdb, $(ls "$DATA/nstdb" 2>/dev/null | wc -l) in nstdb"
  # delineations made here (offline_bundle.sh BUNDLE_WAVES=1): the study's wave checks skip neurokit2's CPU time
  [ -d .devdata/cache/waves ] && mkdir -p "$ECGJAX_CACHE_DIR/waves" && cp -rn .devdata/cache/waves/. "$ECGJAX_CACHE_DIR/waves/" \
    && echo "waves cache: $(ls "$ECGJAX_CACHE_DIR/waves" | wc -l) files from .devdata/cache/waves"
  timeout 120 $PY - <<'PY'
import importlib, platform
print("python", platform.python_version())
for m in ("jax", "jaxlib", "flax", "optax", "orbax.checkpoint", "numpy", "scipy", "wfdb", "neurokit2", "torch", "captum"):
    try:
        mod = importlib.import_module(m)
        print(f"{m:18s}{getattr(mod, '__version__', '?'):12s}{getattr(mod, '__file__', '')}")
    except Exception as e:  # noqa: BLE001 - report and go on
        print(f"{m:18s}MISSING ({type(e).__name__}: {e})")
import jax
print("jax devices:", jax.devices(), "backend:", jax.default_backend())
import ecgjax.data.wfdb_io, ecgjax.attribution, ecgjax.train.loop  # the package's imports on this machine
PY
  local rc=$?
  command -v nvidia-smi >/dev/null && timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv
  [ $rc -eq 0 ] && touch "$SITE/.gpu_session_ready"
  return $rc
}

case $phase in
  setup) setup ;;
  bench|train)
    [ -f "$SITE/.gpu_session_ready" ] || setup || { echo "setup failed: $phase not run"; exit 1; }
    echo "=== $phase $(date -u +%FT%TZ)"
    exec $PY benchmarks/gpu_session.py "$phase" --out "$OUT" "$@" ;;  # exec: bash reads no more of this file
  *) echo "unknown phase $phase: setup|bench|train" >&2; exit 2 ;;
esac
