#!/usr/bin/env bash
# The GPU measurements of the README, as one prepared run on a GPU machine without network.
#
#   bash benchmarks/gpu_check.sh prepare DATA   # where pip works: Snakemake wheels -> .whl/,
#                                               # DATA/{wiki.test.raw,20B_tokenizer.json} -> .gpu/
#   bash benchmarks/gpu_check.sh [engine|dag|all]   # on the GPU machine, .whl and .gpu beside
#
# engine: the engine benchmark (the agenda's reference loop in the same process; eager and
#         CUDA-graph steps) -> $OUT/rates.json, the plan projected from it, the precision table
#         on real text, the perturbation benchmark, and the tests marked gpu.
# dag:    the full agenda (config.yaml) on a random-init Pythia-160M-shaped model saved to a
#         local folder, the real Pythia tokenizer and the WikiText-2 test file, with
#         `--resources gpu=2` on one GPU; its wall time, per-rule wall times and the share of
#         device time not spent optimising.
# The machine needs Python 3.12 with torch (CUDA), transformers, h5py, scipy, matplotlib, tqdm
# and pyyaml; Snakemake, datasets and their needs come from the wheels.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}

if [[ $stage == prepare ]]; then
  data=${2:?give the folder holding wiki.test.raw and 20B_tokenizer.json}
  mkdir -p .gpu && cp "$data/wiki.test.raw" "$data/20B_tokenizer.json" .gpu/
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl \
    annotated-types==0.8.0 argparse-dataclass==2.0.0 conda-inject==1.3.2 configargparse==1.9.0 \
    datasets==5.2.0 dill==0.4.1 docutils==0.22.4 dpath==2.2.0 fastjsonschema==2.22.3 gitdb==4.0.12 \
    gitpython==3.2.1 greenlet==3.5.6 humanfriendly==10.0 immutables==0.21 jsonschema==4.26.0 \
    jsonschema-specifications==2025.9.1 jupyter-core==5.9.1 multiprocess==0.70.19 nbformat==5.11.1 \
    platformdirs==4.14.8 pulp==3.3.2 pydantic==2.14.4 pydantic-core==2.50.5 referencing==0.37.0 \
    rpds-py==2026.9.1 smart-open==7.7.1 smmap==5.0.3 snakemake==9.27.1 \
    snakemake-interface-common==1.23.0 snakemake-interface-executor-plugins==9.4.0 \
    snakemake-interface-logger-plugins==2.1.0 snakemake-interface-report-plugins==1.3.0 \
    snakemake-interface-scheduler-plugins==2.0.2 snakemake-interface-storage-plugins==4.4.1 \
    sqlalchemy==2.0.58 sqlmodel==0.0.37 tenacity==9.2.1 throttler==1.2.3 traitlets==5.16.1 \
    typing-inspection==0.4.5 yte==1.9.4
  python3 -m pip wheel -q --no-deps -w .whl connection_pool==0.0.3  # published as an sdist only
  du -sh .whl .gpu
  exit 0
fi

out=${OUT:-/tmp/gpu_check}
mkdir -p "$out"
export PYTHONPATH=$PWD/workflow_scripts:$PWD/benchmarks PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
nvidia-smi -L | tee "$out/device.txt"

if [[ $stage == engine || $stage == all ]]; then
  python3 benchmarks/engine_benchmark.py --layers 12 6 --precisions tf32 bf16 fp32 --batches 40 256 1024 2048 \
    --steps 20 --out "$out/rates.json" 2>&1 | tee "$out/engine.md"
  python3 benchmarks/plan.py --configfile config.yaml --rates "$out/rates.json" 2>&1 | tee "$out/plan.md" || true
  python3 benchmarks/precision_benchmark.py --text .gpu/wiki.test.raw --tokenizer .gpu/20B_tokenizer.json \
    --batch 64 --steps 2000 --out "$out/precision.json" 2>&1 | tee "$out/precision.md"
  python3 benchmarks/perturbation_benchmark.py 2>&1 | tee "$out/perturbation.md"
  python3 -m pytest -q -m gpu tests/test_optimize.py 2>&1 | tail -5 | tee "$out/gpu_tests.txt" || true
fi

if [[ $stage == dag || $stage == all ]]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PYTHONPATH
  work=/tmp/agenda && model=/tmp/pythia-160m-random && mkdir -p "$work"
  python3 - "$model" "$work/agenda.yaml" <<'EOF'
import sys, torch, yaml
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast
model, config_out = sys.argv[1:]
torch.manual_seed(0)  # random init of Pythia-160M's shape: the compute is the real model's
GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, rotary_pct=0.25, max_position_embeddings=2048,
                                 use_parallel_residual=True)).save_pretrained(model)
PreTrainedTokenizerFast(tokenizer_file=".gpu/20B_tokenizer.json", eos_token="<|endoftext|>",
                        bos_token="<|endoftext|>").save_pretrained(model)
config = yaml.safe_load(open("config.yaml"))
config["model"]["name"] = model
config["dataset"] = {"path": "text", "name": None, "split": "train", "data_files": ".gpu/wiki.test.raw",
                     "text_field": "text", "min_chars": 20}
yaml.safe_dump(config, open(config_out, "w"), sort_keys=False)
EOF
  cp .gpu/wiki.test.raw "$work/" && sed -i "s#.gpu/wiki.test.raw#$work/wiki.test.raw#" "$work/agenda.yaml"
  start=$SECONDS
  status=0
  timeout -k 10 ${DAG_TIMEOUT:-570} python3 -m snakemake -s "$PWD/Snakefile" --directory "$work" \
    --configfile "$work/agenda.yaml" --cores 16 --resources gpu=2 > "$out/snakemake.log" 2>&1 || status=$?
  echo "agenda DAG (extraction to plots): exit $status after $((SECONDS - start)) s" | tee "$out/dag.txt"
  python3 benchmarks/pipeline_overhead.py "$work/results" 2>&1 | tee -a "$out/dag.txt" || true
  tail -5 "$out/snakemake.log"
  tar czf "$out/dag_results.tgz" -C "$work" results/benchmarks results/logs results/comparison.md \
    $(cd "$work" && ls results/*/metrics.json 2>/dev/null) 2>/dev/null || true
fi
