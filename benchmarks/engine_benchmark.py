"""Run-steps per second: the agenda's reference loop against our batched engine, side by side.

One process, one device. The model has Pythia-160M's shape (real weights where `--model`
loads, otherwise a random init of the same shape: the compute is the same), or with
`--configfile` the shape of that study's model (a built demo model's spec, or its local
directory). A run-step is one step of one run; `--methods` times any methods of the registry
(soft, pez, norm_ball, mixture, gcg, inversion: the hard-prompt steps with PEZ's nearest-token
search and GCG's candidates; the inversion's step is one position, every token tried).

  python benchmarks/engine_benchmark.py --out rates.json    # GPU: the README's table, plan.py's rates
  python benchmarks/engine_benchmark.py --tiny --device cpu  # smoke run (seconds)
  python benchmarks/engine_benchmark.py --points soft:12:500 gcg:12:150 --out rates.json  # these, in order

The engine is timed by difference: (time of 2N steps - time of N steps) / N, so the warm-up,
the capture, the final evaluation and the one host copy at the end of a batch cancel out;
those fixed costs per batch are reported beside (`fixed_s`). Every row says how its batches
really ran (`ran`: captured, or eager and why), so a failed capture is never read as a
captured rate. Beside the rates: each step's FLOPs per run-step (torch's FLOP counter), the
device's best matmul rate per precision (its peak, for the fraction a step reaches), and the
start-up of jobs (a fresh interpreter's imports for a GPU job and for a CPU job; moving the
weights to the device). `--out` writes the rate table that `benchmarks/plan.py --rates`
reads, and rewrites it as each number is measured: a run cut short leaves what it measured.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow_scripts"))  # this checkout's library, before any installed copy

from reachability.forward import residual_function
from reachability.methods import METHODS, build
from reachability.runs import RunId
from reachability.models import LanguageModel, ModelLoadError, architecture_of, load_model
from reachability.optimize import optimize_batch
from reachability.job import device_name
from reachability.precision import precision_mode
from reachability.sites import Site
from reachability.storage import write_table

SEQ = 20
# What a job imports before it claims a device (workflow_scripts/optimise_pack.py), and what a
# CPU job imports (targets, aggregation, findings, plots); both as Snakemake runs a script.
JOB_IMPORTS = ("import snakemake.script, torch, transformers, h5py, numpy; import reachability.forward, "
               "reachability.optimize, reachability.models, reachability.storage, reachability.results, "
               "reachability.gpu_pool")
CPU_JOB_IMPORTS = ("import snakemake.script, numpy, h5py, scipy.stats, matplotlib; matplotlib.use('Agg'); "
                   "import matplotlib.pyplot; import reachability.results, reachability.storage, "
                   "reachability.findings")
PYTHIA = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072, vocab_size=50304)


def random_model(device: str, name: str, **shape) -> LanguageModel:
    """A random-init GPT-NeoX of the given shape (Pythia's structure), frozen, on `device`."""
    config = GPTNeoXConfig(max_position_embeddings=shape.pop("max_positions", 2048), rotary_pct=0.25,
                           use_parallel_residual=True, **shape)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config).eval().requires_grad_(False).to(device)
    return LanguageModel(model=model, arch=architecture_of(config), name=name)


def pythia_shaped(device: str, tiny: bool) -> LanguageModel:
    if tiny:
        return random_model(device, "random-init, 64 wide (smoke run)", hidden_size=64, num_hidden_layers=12,
                            num_attention_heads=4, intermediate_size=256, vocab_size=50304)
    return random_model(device, "random-init pythia-160m shape", **PYTHIA)


def benchmark_model(name: str, device: str, tiny: bool) -> LanguageModel:
    """`name` with its real weights where it loads, else a random init of Pythia-160M's shape."""
    if tiny:
        return pythia_shaped(device, True)
    try:
        return load_model(name, device=device)
    except ModelLoadError:
        return pythia_shaped(device, False)


def study_model(configfile: Path, device: str) -> LanguageModel:
    """The model of a study config: a random init of a built model's shape (the demo), else
    the model itself where it loads, else Pythia-160M's shape."""
    model = yaml.safe_load(configfile.read_text())["model"]
    build = model.get("build")
    if build:
        width = build.get("hidden_size", 64)
        return random_model(device, f"random-init shape of {configfile.name}'s built model", hidden_size=width,
                            num_hidden_layers=build.get("num_layers", 4), num_attention_heads=build.get("num_heads", 4),
                            intermediate_size=4 * width, vocab_size=build.get("vocab_size", 1024),
                            max_positions=build.get("max_positions", 64))
    return benchmark_model(model["name"], device, tiny=False)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def reference_loop(lm: LanguageModel, layer: int, steps: int, device: str) -> float:
    """The agenda's optimize_prompt: full model + LM head, hidden_states[layer], batch 1, .item()."""
    target = torch.randn(SEQ, lm.d_model, device=device)
    prompt = torch.randn(SEQ, lm.d_model, device=device, requires_grad=True)
    optimizer = torch.optim.Adam([prompt], lr=0.01)

    def step():
        optimizer.zero_grad()
        residual = lm.model(inputs_embeds=prompt.unsqueeze(0), output_hidden_states=True).hidden_states[layer].squeeze(0)
        loss = ((residual - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(3):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps / (time.perf_counter() - start)


def method_of(name: str, lm: LanguageModel, candidates: int = 512):
    """A method of the registry with its default settings (GCG: `candidates`, top-k 256), at lr 0.01."""
    vocabulary = lm.embedding.weight.detach()
    settings = {"top_k": min(256, len(vocabulary)), "candidates": candidates} if name == "gcg" else {}
    return build(name, 0.01, settings, lambda: vocabulary)


def inputs_for(name: str, lm: LanguageModel, batch: int, device: str) -> dict:
    """How a batch of B runs of the method starts, as in a study (its `start`)."""
    runs = [RunId("benchmark", "real", i, 0) for i in range(batch)]
    return {k: v.to(device) for k, v in method_of(name, lm).start(runs, SEQ, lm.d_model).items()}


def most_steps(name: str) -> int:
    """The steps a run of the method can take: a method of one step per position, SEQ."""
    return SEQ if METHODS[name].__dict__.get("per_position") else 10**9


def engine(lm: LanguageModel, site: Site, batch: int, precision: str, steps: int, device: str,
           capture: bool, method: str = "soft", candidates: int = 512, seconds: float = 2.0) -> dict:
    """run-steps/s, fixed seconds per batch, peak GiB and how the batches ran, by the
    difference of two lengths: N and 2N steps, N at most `steps` and no more than the warm-up says
    `seconds` take, so a slow step (GCG's) is timed in few; but at least 2, and captured at least
    4 (more than the capture's three warm-up steps, so that both lengths replay a graph)."""
    residual = residual_function(lm, site)
    targets = torch.randn(batch, SEQ, lm.d_model, device=device)
    inputs, how = inputs_for(method, lm, batch, device), method_of(method, lm, candidates)
    sync(device)
    start = time.perf_counter()
    optimize_batch(residual, targets, inputs, how, 4, precision=precision, capture=capture)  # warm-up
    sync(device)
    fewest = 2 + 2 * capture  # a captured timing needs more steps than the capture's 3 warm-ups, or it runs eagerly
    steps = max(fewest, min(steps, int(seconds * 4 / (time.perf_counter() - start)), most_steps(method) // 2))
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, ran = [], set()
    for n in (steps, 2 * steps):
        sync(device)
        start = time.perf_counter()
        result = optimize_batch(residual, targets, inputs, how, n, precision=precision, capture=capture)
        sync(device)
        times.append(time.perf_counter() - start)
        ran |= {(b["mode"], b["reason"]) for b in result.batches}
    per_step = (times[1] - times[0]) / steps
    if per_step <= 0:  # timing noise swamped a short run (a busy machine): no fixed cost to separate
        per_step = times[1] / (2 * steps)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else float("nan")
    (mode, reason), = ran if len(ran) == 1 else [("mixed", "; ".join(sorted(r for _, r in ran)))]
    extra = {"candidates": candidates, "forwards_per_s": candidates * batch / per_step} if method == "gcg" else {}
    return dict(run_steps_per_s=batch / per_step, fixed_s=max(times[0] - steps * per_step, 0.0), peak_gib=peak,
                ran=mode, reason=reason, **extra)


def gflop_per_run_step(lm: LanguageModel, site: Site, method: str, device: str, candidates: int = 512) -> float:
    """The GFLOPs of one run-step, by torch's FLOP counter: one run for 2 steps less 1 step (the
    final evaluation cancels out), eager (a captured step does the same work)."""
    residual, targets = residual_function(lm, site), torch.randn(1, SEQ, lm.d_model, device=device)
    how, inputs, counts = method_of(method, lm, candidates), inputs_for(method, lm, 1, device), []
    for steps in (1, 2):
        with FlopCounterMode(display=False) as counter:
            optimize_batch(residual, targets, inputs, how, steps)
        counts.append(counter.get_total_flops())
    return (counts[1] - counts[0]) / 1e9


def peak_tflops(precision: str, device: str, n: int) -> float:
    """The device's best matmul rate in `precision` (TFLOP/s): a square product of size n, the
    mean of 5 after 2 warm-ups."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    with precision_mode(precision, torch.device(device)):
        for _ in range(2):
            a @ b
        sync(device)
        start = time.perf_counter()
        for _ in range(5):
            a @ b
        sync(device)
    return 2 * n**3 * 5 / (time.perf_counter() - start) / 1e12


def fresh_interpreter_s(imports: str) -> float:
    """A fresh interpreter's time to import `imports` (this checkout's library, as a rule script's)."""
    library = os.pathsep.join([str(ROOT / "workflow_scripts"), *filter(None, [os.environ.get("PYTHONPATH")])])
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", imports], check=True, env={**os.environ, "PYTHONPATH": library})
    return time.perf_counter() - start


def startup(lm: LanguageModel, device: str) -> dict:
    """A job's start-up: a fresh interpreter's imports (a GPU job's, before its claim; a CPU
    job's), and moving the weights from host memory to the device (after the claim; the first
    CUDA use included)."""
    cpu_s, cpu_job_s = fresh_interpreter_s(JOB_IMPORTS), fresh_interpreter_s(CPU_JOB_IMPORTS)
    lm.to("cpu")
    start = time.perf_counter()
    lm.to(device)
    torch.zeros(1, device=device).add_(1)
    sync(device)
    return {"cpu_s": round(cpu_s, 2), "device_s": round(time.perf_counter() - start, 2), "cpu_job_s": round(cpu_job_s, 2),
            "note": "a fresh interpreter's imports: a GPU job's (cpu_s) and a CPU job's (cpu_job_s); weights to the "
                    "device, first CUDA use included (device_s)"}


def points_of(args) -> list[tuple[str, int, int]]:
    """(method, layer, batch) in the order to measure: `--points`, else the grid."""
    if args.points:
        return [(m, int(layer), int(b)) for m, layer, b in (p.split(":") for p in args.points)]
    return [(m, layer, b) for m in args.methods for layer in args.layers for b in args.batches]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EleutherAI/pythia-160m")
    parser.add_argument("--configfile", type=Path, help="benchmark the model (shape) of this study config")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[40, 256, 1024, 2048])
    parser.add_argument("--precisions", nargs="+", default=["tf32", "fp32", "bf16"])
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 12])
    parser.add_argument("--methods", nargs="+", default=["soft"], choices=list(METHODS))
    parser.add_argument("--points", nargs="+", help="method:layer:batch, measured in this order (not the grid "
                                                    "of --methods, --layers and --batches)")
    parser.add_argument("--candidates", type=int, default=512, help="GCG's candidate sequences per step")
    parser.add_argument("--capture", choices=["both", "on", "off"], default="both",
                        help="time the CUDA-graph step, the eager step, or both (the CPU is always eager)")
    parser.add_argument("--steps", type=int, default=20, help="the most steps of a timed run")
    parser.add_argument("--seconds", type=float, default=2.0, help="the longest a timed run should take")
    parser.add_argument("--reference-steps", type=int, default=30)
    parser.add_argument("--tiny", action="store_true", help="a 64-wide model: a smoke run, not a measurement")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (a study's job has 1)")
    parser.add_argument("--flops-only", action="store_true", help="count the steps' FLOPs, time nothing")
    parser.add_argument("--out", type=Path, help="write the rate table (JSON) here, for benchmarks/plan.py --rates")
    parser.add_argument("--append", action="store_true", help="add to the table --out names (its start-up, "
                                                              "reference and peaks kept)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    lm = study_model(args.configfile, "cpu") if args.configfile else benchmark_model(args.model, "cpu", args.tiny)
    device = device_name(args.device)
    table = json.loads(args.out.read_text()) if args.append and args.out and args.out.exists() else {}
    table.update({k: v for k, v in {"device": device, "torch": torch.__version__, "model": lm.name,
                                    "engine": "this checkout", "date": datetime.date.today().isoformat(),
                                    "d_model": lm.d_model, "n_layers": lm.n_layers}.items() if k not in table})
    table.setdefault("rows", [])
    save = (lambda: write_table(args.out, table)) if args.out else (lambda: None)
    print(f"device: {device}; model: {lm.name}; torch {torch.__version__}", flush=True)
    if not args.flops_only:
        if "startup" not in table:
            table["startup"] = startup(lm, args.device)
            save()
        lm.to(args.device)
        if "reference" not in table:
            layer = min(12, lm.n_layers)
            table["reference"] = {"layer": layer, "run_steps_per_s": reference_loop(lm, layer, args.reference_steps,
                                                                                     args.device)}
            save()
        for precision in args.precisions:
            if precision not in table.setdefault("peak_tflops", {}):
                table["peak_tflops"][precision] = peak_tflops(precision, args.device, 8192 if "cuda" in args.device
                                                              else 1024)
                save()
        start = table["startup"]
        print(f"start-up of a GPU job: {start['cpu_s']:.1f} s of imports (before the claim), {start['device_s']:.1f} "
              f"s to put the weights on the device; of a CPU job: {start['cpu_job_s']:.1f} s of imports; peak "
              f"{', '.join(f'{p} {t:,.1f}' for p, t in table['peak_tflops'].items())} TFLOP/s\n")
        print("| loop | layer | precision | B | run-steps/s | × reference | GFLOP/run-step | % of peak | fixed s/batch "
              "| peak GiB | ran |\n|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        print(f"| seed reference (B=1, full model + LM head, .item()) | {table['reference']['layer']} | fp32 | 1 "
              f"| {table['reference']['run_steps_per_s']:,.0f} | 1.0 | | | | | eager |", flush=True)
    lm.to(args.device)
    captures = {"both": [True, False], "on": [True], "off": [False]}[args.capture]
    if torch.device(args.device).type != "cuda":
        captures = [False]
    flops = table.setdefault("flops", [])
    for method, layer, batch in points_of(args):
        layer = min(layer, lm.n_layers)
        site = Site("hidden_states", layer)
        counted = {"method": method, "layer": layer, **({"candidates": args.candidates} if method == "gcg" else {})}
        if not any(f.items() >= counted.items() for f in flops):
            flops.append({**counted, "gflop_per_run_step": gflop_per_run_step(lm, site, method, args.device,
                                                                             args.candidates)})
            save()
        if args.flops_only:
            continue
        gflop = next(f["gflop_per_run_step"] for f in flops if f.items() >= counted.items())
        for precision in args.precisions:
            for capture in captures:
                try:
                    measured = engine(lm, site, batch, precision, args.steps, args.device, capture, method,
                                      args.candidates, args.seconds)
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    continue
                r = dict(method=method, layer=layer, precision=precision, batch=batch, capture=capture, **measured)
                table["rows"].append(r)
                save()
                loop = f"{method}, {'CUDA graph asked' if capture else 'eager asked'}"
                if method == "gcg":  # a GCG run-step is a one-hot gradient and `candidates` forwards
                    loop += f" ({r['candidates']} candidates: {r['forwards_per_s']:,.0f} forwards/s)"
                share = r["run_steps_per_s"] * gflop / 1e3 / table["peak_tflops"][precision]
                ran = r["ran"] + (f" ({r['reason']})" if r["reason"] else "")
                print(f"| {loop} | {layer} | {precision} | {batch} | {r['run_steps_per_s']:,.0f} "
                      f"| {r['run_steps_per_s'] / table['reference']['run_steps_per_s']:,.1f} | {gflop:,.1f} "
                      f"| {share:.1%} | {r['fixed_s']:.2f} | {r['peak_gib']:.2f} | {ran} |", flush=True)
    for f in flops:
        print(f"FLOPs: {f['method']} at layer {f['layer']}: {f['gflop_per_run_step']:,.2f} GFLOP per run-step")
    if args.out:
        print(f"\nrate table written to {args.out}: python benchmarks/plan.py --rates {args.out}")


if __name__ == "__main__":
    main()
