#!/usr/bin/env bash
# The GPU numbers of benchmarks/README.md (issue 6, item 3) in one go, on one NVIDIA GPU.
# Not yet run by the project (no GPU has been lent to it); sized for ~10 minutes on an H100/H200.
#
# Usage: bash benchmarks/run_gpu_suite.sh [results-dir]
#   PY=python (default). PyTorch + captum must be importable for the comparison rows
#   (pip install torch captum); without them those rows are skipped with a message.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
R=${1:-benchmarks/results}
mkdir -p "$R"
$PY -c "import jax; d = jax.devices()[0]; assert d.platform == 'gpu', f'no GPU: {d}'; print(d.device_kind)"
kind=$($PY -c "import jax; print(jax.devices()[0].device_kind.replace(' ', '_'))")
export PYTHONUNBUFFERED=1
B=256,1024,4096,16384
for prec in float32 tf32; do
  # Grid: model x batch, saliency (one VJP) and the vmap-of-grad reference; % of the chip's peak per row.
  $PY benchmarks/saliency_throughput.py --models ribeiro_cnn,jones2020_cnn,jones2020_lstm --methods saliency,vmap_grad \
    --batches $B --repeats 5 --precision $prec --out "$R/gpu_${kind}_saliency.jsonl"
  $PY benchmarks/train_throughput.py --models ribeiro_cnn,jones2020_cnn,jones2020_lstm \
    --batches $B --repeats 5 --precision $prec --out "$R/gpu_${kind}_train.jsonl"
  # Same weights in PyTorch; TF32 off on both sides for float32 (ecgjax must be >= 2x captum).
  for b in 256 4096; do
    $PY benchmarks/torch_captum_compare.py --device cuda --batch $b --precision $prec --repeats 5 \
      --out "$R/gpu_${kind}_torch_compare.jsonl" || echo "torch/captum comparison skipped (exit $?)"
  done
done
# The whole pipeline on all ~104k beats (saliency via the library runner, 0.1 s segments, profiles): < 10 s.
for m in jones2020_cnn ribeiro_cnn jones2020_lstm; do
  $PY benchmarks/pipeline_e2e.py --model $m --n-beats 104222 --chunk 8192 --out "$R/gpu_${kind}_pipeline.jsonl"
done
