#!/usr/bin/env bash
# Everything this project needs to know from a GPU, as one prepared command (docs/speed.md,
# "The GPU check").
#
#   bash benchmarks/gpu_check.sh prepare DATA   # where pip works: wheels -> .whl/ (Snakemake, datasets,
#                                               # jsonschema, pytest and their needs, for Python 3.12),
#                                               # DATA/{wiki.test.raw,20B_tokenizer.json} -> .gpu/
#   bash benchmarks/gpu_check.sh                # on the GPU machine (no network), .whl and .gpu beside
#   bash benchmarks/gpu_check.sh --smoke        # the same stages on the CPU, tiny
#   ... [--python PATH]                         # the interpreter (else found: see below)
#
# The interpreter: --python, else the first of $VIRTUAL_ENV, $CONDA_PREFIX, ./.venv, python3 and
# python that has the project installed (pip install -e .), else the first that has torch,
# transformers and h5py (a GPU machine's own Python, the project not installed).
#
# Each stage has its own time limit; on the GPU the limits add up to the overall budget
# (GPU_CHECK_BUDGET, default 520 s: one call and a machine's start fit in 9½ minutes, leaving a
# session of 15 device minutes room for a partial rerun) less a margin for the summary, so every
# stage gets its share, the engine and the real DAG the most.
# In smoke mode a limit is what an idle 2-core machine needs, with ample room, times the machine's
# measured slowdown when the stage starts (its load per core, at least 1), so a machine that other
# jobs load gets proportionally longer. A stage may
# fail alone: it is reported and the next one runs. Every measurement is written the moment it
# exists: the rate table row by row, so a stage cut short leaves what it measured and the DAG
# stage prices from that, naming what is missing. What comes back is three files in $OUT (default
# /tmp/gpu_check): summary.md (the stage table and every stage's main output), rates.json (the
# rate table: `plan.py --rates rates.json` prices any config from it) and logs.tgz (every stage's
# full log and the reduced DAG's results).
#
# Stages: env (the device, versions, the imports' time); wheels (install .whl/ for this Python,
# then check what it installed is importable: plan.py and the DAG need Snakemake); tests (the GPU
# tests, and the GCG known answers under this machine's transformers); capture (captured vs eager
# on the tests' tiny families and a Pythia-160M-shaped model, fp32/tf32/bf16); engine (plan.py
# --measure: Snakemake's DAG building for config.yaml, timed, then the captured step at every
# (method, layer, batch) that config's packs run, most work first, with FLOPs per run-step and the
# device's matmul peak, then the token mixture and the exact inversion where time is left; then the
# whole plan priced from them); perturbation (the batched KL-vs-eps against notebook 004's loop); dag (a reduced study on a random Pythia-160M-shaped model with real
# WikiText-2 and the Pythia tokenizer, with --resources gpu=2: its wall time beside plan.py's
# projection from the engine stage's rates, and each rule's job time added to the rate table).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
wheels_python=3.12  # the GPU machine's Python: the wheels `prepare` downloads are for it

if [[ ${1:-} == prepare ]]; then
  set -e
  data=${2:?give the folder holding wiki.test.raw and 20B_tokenizer.json}
  mkdir -p .gpu && cp "$data/wiki.test.raw" "$data/20B_tokenizer.json" .gpu/
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version $wheels_python --implementation cp \
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

smoke=0 python=""
while (($#)); do
  case $1 in
    --smoke) smoke=1 ;;
    --python) python=${2:?--python needs a path}; shift ;;
    *) echo "unknown argument $1 (--smoke, --python PATH)" >&2; exit 2 ;;
  esac
  shift
done

has() {  # has "MODULES" PYTHON: whether that interpreter finds every module (found, not imported: fast)
  "$2" -c "import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, sys.argv[1:])))" $1 2>/dev/null
}
if [[ -z $python ]]; then
  candidates=("${VIRTUAL_ENV:+$VIRTUAL_ENV/bin/python}" "${CONDA_PREFIX:+$CONDA_PREFIX/bin/python}" .venv/bin/python
              python3 python)
  for needs in "reachability torch transformers h5py" "torch transformers h5py"; do
    for candidate in "${candidates[@]}"; do
      if [[ -n $candidate ]] && command -v "$candidate" > /dev/null && has "$needs" "$candidate"; then
        python=$(command -v "$candidate")
        break 2
      fi
    done
  done
fi
if [[ -z $python ]] || ! has "torch transformers h5py" "$python"; then
  echo "no Python with torch, transformers and h5py found (${python:-tried ${candidates[*]}}): name one with --python" >&2
  exit 2
fi

out=${OUT:-/tmp/gpu_check}
work=$(mktemp -d /tmp/gpu_check_work.XXXX)
logs=$work/logs
mkdir -p "$out" "$logs"
budget=${GPU_CHECK_BUDGET:-520}
margin=30  # the summary, the archive and a stage's kill grace
deadline=$((SECONDS + budget - margin))
export PYTHONPATH=$root/workflow_scripts:$root/benchmarks${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
echo "| stage | status | seconds | limit s |" > "$work/table.md"
echo "|---|---|---|---|" >> "$work/table.md"

slowdown() {  # how many times slower than idle this machine runs now: its load per core, at least 1
  awk -v cores="$(nproc)" '{f = ($1 + 1) / cores; print (f > 1 ? f : 1)}' /proc/loadavg 2>/dev/null || echo 1
}

stage() {  # stage NAME GPU_LIMIT_S SMOKE_IDLE_S COMMAND...: run it with its own limit; report
  local name=$1 limit=$2 start=$SECONDS status
  ((smoke)) && limit=$(awk -v s="$3" -v f="$(slowdown)" 'BEGIN {print int(s * f + 0.5)}')
  shift 3
  local left=$((deadline - SECONDS))
  ((!smoke && left < limit)) && limit=$left
  if ((limit < 5)); then
    echo "| $name | skipped: the budget is spent | 0 | 0 |" >> "$work/table.md"
    return
  fi
  timeout -k 5 "$limit" bash -c '"$@"' _ "$@" > "$logs/$name.log" 2>&1  # a stage may be a function
  status=$?
  local word=ok
  ((status == 124 || status == 137)) && word="timed out"
  ((status != 0 && status != 124 && status != 137)) && word="failed (exit $status)"
  local took=$((SECONDS - start))
  echo "| $name | $word | $took | $limit |" >> "$work/table.md"
  { echo; echo "## $name ($word, $took s)"; echo; echo '```'; tail -n 80 "$logs/$name.log"; echo '```'; } \
    >> "$work/details.md"
}

env_stage() {
  nvidia-smi -L 2>/dev/null || echo "no nvidia-smi: no GPU here"
  echo "python: $python"
  "$python" -c "import time; t = time.perf_counter(); import sys, torch, transformers, h5py; print(sys.version.split()[0], \
'torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available(), \
f'(imports {time.perf_counter() - t:.1f} s)')"
}

wheels_stage() {  # the check runs with the installed folder on the path, as the later stages will
  if compgen -G ".whl/*.whl" > /dev/null && ((smoke)) && [[ $("$python" -c "import sys; print(*sys.version_info[:2], sep='.')") != "$wheels_python" ]]; then
    echo "the wheels in .whl/ are for Python $wheels_python, the GPU machine's; this is $("$python" -V 2>&1): using the installed packages"
  elif compgen -G ".whl/*.whl" > /dev/null; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$work/site" \
      .whl/*.whl || return 1
  else
    echo "no .whl/ here (gpu_check.sh prepare makes it): using the installed packages"
  fi
  PYTHONPATH=$work/site:$PYTHONPATH "$python" -c "import snakemake, jsonschema, pytest; \
print('snakemake', snakemake.__version__, 'pytest', pytest.__version__)"
}

dag_config() {  # dag_config OUT_YAML: the reduced study, on a model this stage builds
  "$python" - "$@" <<'EOF'
import sys, torch, yaml
from pathlib import Path
out, smoke = Path(sys.argv[1]), sys.argv[2] == "1"
config = yaml.safe_load(open("demo.yaml" if smoke else "config.yaml"))
kept = ("experiment1", "experiment2b")  # every other experiment the config names is switched off
config["experiments"] = {e: {**spec, "enabled": e in kept} for e, spec in config["experiments"].items()}
for section in ("layer_sweep", "analysis", "perturbation", "boundary"):
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
    config["optimizer"] = {**config["optimizer"], "steps": 500, "extend_steps": 750}
yaml.safe_dump(config, open(out, "w"), sort_keys=False)
print(f"reduced study written to {out}")
EOF
}

dag_stage() {  # priced from what the engine stage measured (what is missing, said); its job times recorded
  dag_config "$work/dag.yaml" "$smoke" || return 1
  [[ -f $out/rates.json ]] || echo '{"device": "nothing measured", "rows": []}' > "$out/rates.json"
  "$python" benchmarks/plan.py --configfile "$work/dag.yaml" --rates "$out/rates.json" --cores "$cores" \
    --resources gpu=2 --validate --record --workdir "$work/dag" --json "$work/dag_plan.json"
}

cores=16 study=config.yaml steps=10 also="mixture:12:500 inversion:12:4"  # methods config.yaml does not run
((smoke)) && cores=2 study=demo.yaml steps=3 also="mixture:4:8 inversion:4:4"
export -f env_stage wheels_stage dag_config dag_stage
export work smoke out python cores wheels_python
# stage NAME GPU_LIMIT_S SMOKE_IDLE_S ...: the GPU limits add up to the budget less the margin
stage env 15 60 env_stage
stage wheels 10 30 wheels_stage
[[ -d $work/site ]] && export PYTHONPATH=$work/site:$PYTHONPATH
stage tests 50 150 "$python" -m pytest -q -p no:cacheprovider --gpu-first -m "not slow" -k "gpu or gcg or candidates" \
  tests/test_hard_prompt.py tests/test_capture.py tests/test_optimize.py
if ((smoke)); then
  stage capture 40 120 "$python" benchmarks/capture_check.py --device cpu --steps 4 --batch 4 --no-pythia
else
  stage capture 40 120 "$python" benchmarks/capture_check.py --steps 30 --batch 64
fi
stage engine 175 180 "$python" benchmarks/plan.py --configfile $study --measure "$out/rates.json" --steps $steps \
  --also $also --cores $cores --resources gpu=2
if ((smoke)); then
  stage perturbation 30 60 "$python" benchmarks/perturbation_benchmark.py --tiny --device cpu --sequences 3 \
    --directions 2 --epsilons 0 1
else
  stage perturbation 30 60 "$python" benchmarks/perturbation_benchmark.py --sequences 8 --directions 4
fi
stage dag 160 240 dag_stage

{
  echo "# gpu_check.sh$([[ $smoke == 1 ]] && echo ' --smoke') on $(hostname), $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "python: $python; limits: $( ((smoke)) && echo "an idle machine's seconds times the slowdown at each start" \
    || echo "seconds within a budget of $budget s")"
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
