#!/usr/bin/env bash
# One prepared run on a lent GPU (the device tool; see /work/.library/device/METHOD.md):
# the engine benchmark (reference loop side by side, layers 6 and 12, three precisions) and the
# precision evidence, with the tables written under $OUT. The GPU image has torch,
# transformers, numpy, pyyaml and tqdm; nothing here needs Snakemake or network (without the
# hub the model is a random init of Pythia-160M's shape: the compute is the same).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH=workflow_scripts:benchmarks PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
nvidia-smi -L | tee "$out/device.txt"
python3 benchmarks/engine_benchmark.py --batches 64 256 1024 --out "$out/engine.json" 2>&1 | tee "$out/engine.md"
python3 benchmarks/precision_benchmark.py --batch 256 --steps 600 2>&1 | tee "$out/precision.md"
