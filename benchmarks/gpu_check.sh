#!/usr/bin/env bash
# Everything this project needs to know from a GPU, as one prepared command (README, "Speed").
#
#   bash benchmarks/gpu_check.sh prepare DATA   # where pip works: wheels -> .whl/ (Snakemake, datasets,
#                                               # jsonschema, pytest and their needs, for Python 3.12),
#                                               # DATA/{wiki.test.raw,20B_tokenizer.json} -> .gpu/
#   bash benchmarks/gpu_check.sh                # on the GPU machine (no network), .whl and .gpu beside
#   bash benchmarks/gpu_check.sh --smoke        # the same stages on the CPU, tiny, in about two minutes
#
# Each stage is timed, has its own time limit inside one overall budget (GPU_CHECK_BUDGET,
# default 470 s: one call fits in 8 minutes), and may fail alone: a failed stage is reported and
# the next one runs. What comes back is three files in $OUT (default /tmp/gpu_check): summary.md
# (the stage table and every stage's main output), rates.json (the engine's rate table, for
# `plan.py --rates`) and logs.tgz (every stage's full log and the reduced DAG's results).
#
# Stages: env; wheels (install .whl/ for this Python, first: plan.py and the DAG need Snakemake);
# tests (every test marked gpu, across files, then the CPU tests of the modules that use a model,
# in one session: a GPU test that leaves a shared model on the GPU fails those); capture
# (captured vs eager on the tests' tiny families and a Pythia-160M-shaped model, fp32/tf32/bf16,
# how each batch ran); engine (run-steps/s at layers 12 and 6, tf32, B = 256/1024/2048, captured
# and eager, the soft step and the hard-prompt (PEZ) step, the agenda's reference loop in the same
# process); gcg (GCG's run-steps and candidate forwards per second, B = 64, 512 candidates, added
# to the same rate table); perturbation (the batched KL-vs-eps against notebook 004's loop); dag (a reduced
# study on a random Pythia-160M-shaped model with real WikiText-2 and the Pythia tokenizer, with
# --resources gpu=2: its wall time beside plan.py's projection of the same config from the engine
# stage's rates).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [[ ${1:-} == prepare ]]; then
  set -e
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
    typing-inspection==0.4.5 yte==1.9.4 pytest==8.4.2 iniconfig==2.1.0 pluggy==1.6.0
  python3 -m pip wheel -q --no-deps -w .whl connection_pool==0.0.3  # published as an sdist only
  du -sh .whl .gpu
  exit 0
fi

smoke=0
[[ ${1:-} == --smoke ]] && smoke=1
out=${OUT:-/tmp/gpu_check}
work=$(mktemp -d /tmp/gpu_check_work.XXXX)
logs=$work/logs
mkdir -p "$out" "$logs"
budget=${GPU_CHECK_BUDGET:-470}
deadline=$((SECONDS + budget))
export PYTHONPATH=$root/workflow_scripts:$root/benchmarks${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
summary=$work/summary.md
echo "| stage | status | seconds | limit s |" > "$work/table.md"
echo "|---|---|---|---|" >> "$work/table.md"

stage() {  # stage NAME LIMIT_S COMMAND...: run it with its own limit inside the budget; report
  local name=$1 limit=$2 start=$SECONDS status
  shift 2
  local left=$((deadline - SECONDS))
  ((left < limit)) && limit=$left
  if ((limit < 5)); then
    echo "| $name | skipped: the budget is spent | 0 | 0 |" >> "$work/table.md"
    return
  fi
  timeout -k 5 "$limit" bash -c '"$@"' _ "$@" > "$logs/$name.log" 2>&1  # a stage may be a function
  status=$?
  local word=ok
  ((status == 124 || status == 137)) && word="timed out"
  ((status != 0 && status != 124 && status != 137)) && word="failed (exit $status)"
  echo "| $name | $word | $((SECONDS - start)) | $limit |" >> "$work/table.md"
  { echo; echo "## $name ($word, $((SECONDS - start)) s)"; echo; echo '```'; tail -n 60 "$logs/$name.log"; echo '```'; } \
    >> "$work/details.md"
}

env_stage() {
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi: no GPU here"
  python3 -c "import sys, torch, transformers; print(sys.version.split()[0], 'torch', torch.__version__, \
'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
}

wheels_stage() {
  if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" .whl/*.whl
  else
    echo "no .whl/ here (gpu_check.sh prepare makes it): using the installed packages"
  fi
  python3 -c "import snakemake, jsonschema; print('snakemake', snakemake.__version__)"
}

dag_config() {  # dag_config OUT_YAML: the reduced study, on a model this stage builds
  python3 - "$@" <<'EOF'
import sys, torch, yaml
from pathlib import Path
out, smoke = Path(sys.argv[1]), sys.argv[2] == "1"
config = yaml.safe_load(open("demo.yaml" if smoke else "config.yaml"))
off = ("experiment2a", "experiment3", "experiment4", "ablation", "hard_prompt")
config["experiments"] = {**config["experiments"], **{e: {**config["experiments"].get(e, {}), "enabled": False} for e in off}}
for section in ("layer_sweep", "analysis", "perturbation"):
    config[section] = {**config.get(section, {}), "enabled": False}
config["compare"] = {**config.get("compare", {}), "models": []}
if smoke:  # the demo's own tiny model, built by the workflow
    config["experiments"]["experiment1"] = {"enabled": True, "n_targets": 8, "restarts": 1}
    config["experiments"]["experiment2b"] = {"enabled": True, "n_targets": 8, "restarts": 1}
    config["optimizer"] = {**config["optimizer"], "steps": 60, "extend_steps": 80}
    config["dataset"]["data_files"] = str(Path("demo/corpus.txt").resolve())
    config["model"]["build"]["corpus"] = str(Path("demo/corpus.txt").resolve())
else:  # a random init of Pythia-160M's shape (the compute is the real model's), the real tokenizer and text
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast
    model = out.parent / "pythia-160m-random"
    torch.manual_seed(0)
    GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=50304, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                                     intermediate_size=3072, rotary_pct=0.25, max_position_embeddings=2048,
                                     use_parallel_residual=True)).save_pretrained(model)
    PreTrainedTokenizerFast(tokenizer_file=".gpu/20B_tokenizer.json", eos_token="<|endoftext|>",
                            bos_token="<|endoftext|>").save_pretrained(model)
    config["model"]["name"] = str(model)
    config["dataset"] = {"path": "text", "name": None, "split": "train", "data_files": str(Path(".gpu/wiki.test.raw").resolve()),
                         "text_field": "text", "min_chars": 20}
    config["experiments"]["experiment1"] = {"enabled": True, "n_targets": 100, "restarts": 2}
    config["experiments"]["experiment2b"] = {"enabled": True, "n_targets": 100, "restarts": 1}
    config["optimizer"] = {**config["optimizer"], "steps": 1000, "extend_steps": 1500}
yaml.safe_dump(config, open(out, "w"), sort_keys=False)
print(f"reduced study written to {out}")
EOF
}

dag_stage() {  # on the GPU the engine stage's rates price the plan; the smoke run measures its own model's
  dag_config "$work/dag.yaml" "$smoke" || return 1
  local cores=16 rates=(--rates "$out/rates.json")
  ((smoke)) && cores=2 rates=()
  python3 benchmarks/plan.py --configfile "$work/dag.yaml" "${rates[@]}" --cores $cores --resources gpu=2 \
    --validate --workdir "$work/dag" --json "$work/dag_plan.json"
}

export -f env_stage wheels_stage dag_config dag_stage
export work smoke out
stage env 15 env_stage
stage wheels 60 wheels_stage
[[ -d $work/site ]] && export PYTHONPATH=$work/site:$PYTHONPATH
if ((smoke)); then
  stage tests 60 python3 -m pytest -q -p no:cacheprovider --gpu-first -m gpu tests/
else
  stage tests 150 python3 -m pytest -q -p no:cacheprovider --gpu-first -m "not slow" tests/test_capture.py \
    tests/test_optimize.py tests/test_hard_prompt.py tests/test_sites.py tests/test_functional.py \
    tests/test_perturbation.py tests/test_ablation.py tests/test_manifold.py tests/test_models.py tests/test_gpu_pool.py
fi
if ((smoke)); then
  stage capture 60 python3 benchmarks/capture_check.py --device cpu --steps 4 --batch 4 --no-pythia
  stage engine 90 python3 benchmarks/engine_benchmark.py --tiny --device cpu --layers 12 6 --precisions fp32 \
    --batches 4 8 --methods soft pez --steps 3 --reference-steps 3 --out "$out/rates.json"
  stage gcg 60 python3 benchmarks/engine_benchmark.py --tiny --device cpu --layers 12 --precisions fp32 --batches 4 \
    --methods gcg --candidates 16 --capture off --steps 2 --reference-steps 2 --append --out "$out/rates.json"
  stage perturbation 60 python3 benchmarks/perturbation_benchmark.py --tiny --device cpu --sequences 3 --directions 2 \
    --epsilons 0 1
else
  stage capture 75 python3 benchmarks/capture_check.py --steps 50 --batch 64
  stage engine 150 python3 benchmarks/engine_benchmark.py --layers 12 6 --precisions tf32 --batches 256 1024 2048 \
    --methods soft pez --steps 20 --out "$out/rates.json"
  stage gcg 60 python3 benchmarks/engine_benchmark.py --layers 12 --precisions tf32 --batches 64 --methods gcg \
    --candidates 512 --capture off --steps 3 --reference-steps 3 --append --out "$out/rates.json"
  stage perturbation 60 python3 benchmarks/perturbation_benchmark.py
fi
if [[ -f $out/rates.json ]]; then
  stage dag 180 dag_stage
else
  echo "| dag | skipped: no rates.json from the engine stage | 0 | 0 |" >> "$work/table.md"
fi

{
  echo "# gpu_check.sh$([[ $smoke == 1 ]] && echo ' --smoke') on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  cat "$work/table.md"
  cat "$work/details.md"
} > "$out/summary.md"
kept=$(cd "$work" && ls -d dag.yaml dag_plan.json dag/results/benchmarks dag/results/logs dag/results/*/metrics.json \
  dag/results/*.md 2>/dev/null)
tar czf "$out/logs.tgz" -C "$work" logs $kept
cat "$work/table.md"
rm -rf "$work"
! grep -qE '\| (failed|timed out|skipped)' "$out/summary.md"
