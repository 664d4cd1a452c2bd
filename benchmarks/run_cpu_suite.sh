#!/usr/bin/env bash
# The CPU numbers in benchmarks/README.md, in one go (about 15-25 minutes on the 2-core machine).
# Usage: bash benchmarks/run_cpu_suite.sh [results-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
R=${1:-benchmarks/results}
mkdir -p "$R"
$PY benchmarks/saliency_throughput.py --models ribeiro_cnn,jones2020_cnn --methods saliency,vmap_grad --batches 256 --repeats 5 --matmul-probe --out "$R/cpu_saliency.jsonl"
$PY benchmarks/saliency_throughput.py --models jones2020_lstm --methods saliency,vmap_grad --batches 64,256 --repeats 5 --matmul-probe --out "$R/cpu_saliency.jsonl"
for impl in xla patches phase; do
  $PY benchmarks/saliency_throughput.py --models ribeiro_cnn --methods saliency --batches 64 --repeats 3 --conv-impl $impl --out "$R/cpu_saliency_convimpl.jsonl"
done
$PY benchmarks/saliency_throughput.py --models ribeiro_cnn --methods saliency --batches 64 --repeats 3 --conv-impl auto --out "$R/cpu_saliency_convimpl.jsonl"
$PY benchmarks/train_throughput.py --models ribeiro_cnn,jones2020_cnn,jones2020_lstm --batches 128 --repeats 5 --matmul-probe --out "$R/cpu_train.jsonl"
$PY benchmarks/torch_captum_compare.py --batch 256 --repeats 3 --out "$R/cpu_torch_compare.jsonl" || echo "torch compare skipped"
# ecgjax against TensorFlow and PyTorch in one invocation (peers in their own venvs: ECGJAX_TF_PYTHON, ECGJAX_TORCH_PYTHON)
$PY benchmarks/cpu_vs_peers.py --wait-load 2.5 --label suite --out "$R/cpu_vs_peers.jsonl"
