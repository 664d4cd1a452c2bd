#!/usr/bin/env bash
# Bundle what an offline GPU machine needs beside this checkout, for machines that have Python 3.12
# with jax, flax, optax and orbax-checkpoint (and torch) preinstalled but no network:
#   .whl/     wheels of wfdb and the needs such images lack (soundfile, cffi, pycparser), and captum
#   .devdata/ mitdb.tar.xz (both folders are git-ignored)
# Usage (here, with network):  bash scripts/offline_bundle.sh [path/to/mitdb.tar.xz]
# Then, there, from the checkout root:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   export PYTHONPATH=/tmp/site:$PWD
#   mkdir -p .devdata/data && tar -xJf .devdata/mitdb.tar.xz -C .devdata/data && export ECGJAX_DATA_DIR=$PWD/.devdata/data
#   bash benchmarks/run_gpu_suite.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TAR=${1:-../shared/data/mitdb.tar.xz}
PY=${PY:-python3}
mkdir -p .whl .devdata
plats=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  plats+=(--platform "$p")
done
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp "${plats[@]}" -d .whl \
  wfdb==4.3.1 soundfile cffi pycparser captum
[ -f "$TAR" ] && cp "$TAR" .devdata/mitdb.tar.xz || echo "no $TAR: copy mitdb.tar.xz into .devdata/ yourself" >&2
ls -la .whl .devdata
