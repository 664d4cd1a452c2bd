#!/usr/bin/env bash
# Bundle what the offline GPU machine lacks beside this checkout (both folders are git-ignored and travel
# with the device tool's `carry`; see benchmarks/README.md, "GPU session"):
#   .whl/      wheels for Python 3.12 x86-64 of what its image (jax, flax, optax, orbax, torch preinstalled)
#              does not have: wfdb and its needs soundfile, cffi, pycparser; neurokit2 and PyWavelets
#              (delineation only, imported lazily); captum (the PyTorch comparison); and fallback copies of
#              flax and orbax-checkpoint in .whl/fallback/, installed only when the machine's are outside
#              pyproject.toml's pins
#   .devdata/  data.tar.xz: mitdb/ (all 48 records, RECORDS, SHA256SUMS.txt) and the two nstdb noise records
#              the corrected study uses (bw, ma), xz with a delta filter (~20% smaller than plain xz on
#              format-212 signals; `tar -xJf` reads it as usual); SOURCE_COMMIT: the commit bundled against
# Usage (here, with network):  bash scripts/offline_bundle.sh [data-root holding mitdb/ and nstdb/]
# Then on the device:          bash benchmarks/gpu_session.sh setup   (installs, unpacks, prints versions)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-${ECGJAX_DATA_DIR:-../shared/data}}
PY=${PY:-python3}
LIMIT_MIB=64  # what the device tool carries: tracked tree + untracked files + carried paths
rm -rf .whl && mkdir -p .whl/fallback .devdata
plats=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  plats+=(--platform "$p")
done
get() { $PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plats[@]}" "$@"; }
# One version of each (two stop `pip install --no-deps` there). Needs of these that the image has already
# (numpy, scipy, pandas, matplotlib, requests, aiohttp, fsspec, scikit-learn, torch, tqdm, packaging) are not bundled.
get -d .whl "wfdb>=4.3,<4.4" soundfile cffi pycparser "neurokit2>=0.2.10" PyWavelets captum
get -d .whl/fallback "flax>=0.12.8,<0.13" "orbax-checkpoint>=0.12.0,<0.13"
# Every Requires-Dist of a bundled wheel must be bundled or in the image's list (KINDS.md); print the rest.
for w in .whl/*.whl; do
  unzip -p "$w" '*.dist-info/METADATA' | { grep "^Requires-Dist" || true; } | { grep -v "extra ==" || true; } | sed "s|^|$(basename "$w"): |"
done > .whl/REQUIRES.txt
echo "wheels: $(ls .whl/*.whl | wc -l) (+ $(ls .whl/fallback/*.whl | wc -l) fallback); their needs in .whl/REQUIRES.txt"

[ -d "$DATA/mitdb" ] || { echo "offline_bundle: no $DATA/mitdb; pass the data root (the folder holding mitdb/)" >&2; exit 2; }
files=(mitdb)
for f in bw.dat bw.hea ma.dat ma.hea; do
  [ -f "$DATA/nstdb/$f" ] && files+=("nstdb/$f") || echo "offline_bundle: no $DATA/nstdb/$f: the noise stress test will fail there" >&2
done
tar -C "$DATA" -cf - "${files[@]}" | xz -T1 --format=xz --delta=dist=3 --lzma2=preset=6 > .devdata/data.tar.xz.tmp
mv .devdata/data.tar.xz.tmp .devdata/data.tar.xz
rm -f .devdata/mitdb.tar.xz
git rev-parse HEAD > .devdata/SOURCE_COMMIT

# BUNDLE_WAVES=1: also delineate every record (the default "envelope" delineator of ecgjax.data.delineation:
# sequential CPU work) for the aami protocol (~6 MB) into .devdata/cache/waves, which gpu_session.sh
# copies into the beat cache, so the study's wave checks spend no device time on it. BUNDLE_WAVES_RECORDS
# (e.g. "100 101") limits the records (a check of this step).
if [ "${BUNDLE_WAVES:-0}" = 1 ]; then
  tmpcache=$(mktemp -d)
  ECGJAX_DATA_DIR=$DATA ECGJAX_CACHE_DIR=$tmpcache $PY - "${BUNDLE_WAVES_RECORDS:-}" <<'PY'
import sys
from ecgjax.data import protocols
from ecgjax.data.dataset import load_beats
from ecgjax.data.delineation import load_waves
only = tuple(sys.argv[1].split())
for name in ("aami",):  # the study and the inter-patient runs; ~130 kB a record
    proto = protocols.get(name, **({"records": only} if only else {}))
    beats = load_beats(proto, download=False)
    w = load_waves(beats, download=False)
    print(f"{name}: {len(beats)} beats, waves found for {int(w.quality.sum())}")
PY
  mkdir -p .devdata/cache && rm -rf .devdata/cache/waves && mv "$tmpcache/waves" .devdata/cache/waves && rm -rf "$tmpcache"
  du -sh .devdata/cache/waves
fi

tracked=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
untracked=$(git ls-files -z --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
carried=$(du -sb .whl .devdata | awk '{s += $1} END {print s}')
total=$(( tracked + ${untracked:-0} + carried ))
du -sh .whl .devdata
printf 'travels: %.1f MiB (tracked %.1f, untracked %.1f, .whl + .devdata %.1f) of %d MiB\n' \
  "$(echo "$total / 1048576" | bc -l)" "$(echo "$tracked / 1048576" | bc -l)" "$(echo "${untracked:-0} / 1048576" | bc -l)" \
  "$(echo "$carried / 1048576" | bc -l)" "$LIMIT_MIB"
[ "$total" -lt $(( LIMIT_MIB * 1048576 )) ] || { echo "offline_bundle: over the device tool's ${LIMIT_MIB} MiB" >&2; exit 1; }
