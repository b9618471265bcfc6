"""Run-steps per second: the agenda's reference loop against our batched engine, side by side.

One process, one device. The model has Pythia-160M's shape; real weights are used when
`--model` loads (hub reachable or a local copy), otherwise a random init of the same shape
(the compute is the same). A run-step is one Adam step of one run.

  python benchmarks/engine_benchmark.py --out rates.json    # GPU: the README's table, plan.py's rates
  python benchmarks/engine_benchmark.py --tiny --device cpu  # smoke run (seconds)

The engine is timed by difference: (time of 2N steps - time of N steps) / N, so the capture,
the final evaluation and the one host copy at the end of a batch cancel out; those fixed
costs per batch are reported beside (`fixed_s`). `--out` writes the rate table that
`benchmarks/plan.py --rates` reads: rows by layer, precision, batch size and capture, and the
start-up of a GPU job (a fresh interpreter's imports; moving the weights to the device).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from reachability.forward import residual_function
from reachability.models import LanguageModel, ModelLoadError, architecture_of, load_model
from reachability.optimize import optimize_batch
from reachability.pipeline import device_name
from reachability.sites import Site

SEQ = 20
ROOT = Path(__file__).resolve().parents[1]
GFLOP_PER_RUN_STEP_L12 = 6.8  # forward 3.4 + input-gradient backward 3.4 at Pythia-160M's shape
BF16_PEAK_TFLOPS = 800.0  # an H100 on large bf16 matmuls
# What a GPU job imports before it claims a device (workflow_scripts/optimise_pack.py).
JOB_IMPORTS = ("import torch, transformers, h5py, numpy; import reachability.forward, reachability.optimize, "
               "reachability.models, reachability.storage, reachability.results, reachability.gpu_pool")


def pythia_shaped(device: str, tiny: bool) -> LanguageModel:
    size = dict(hidden_size=64, num_hidden_layers=12, num_attention_heads=4, intermediate_size=256) if tiny else \
        dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)
    config = GPTNeoXConfig(vocab_size=50304, max_position_embeddings=2048, rotary_pct=0.25,
                           use_parallel_residual=True, **size)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(config).eval().requires_grad_(False).to(device)
    return LanguageModel(model=model, arch=architecture_of(config), name="random-init pythia-160m shape")


def benchmark_model(name: str, device: str, tiny: bool) -> LanguageModel:
    """`name` with its real weights where it loads, else a random init of Pythia-160M's shape."""
    if tiny:
        return pythia_shaped(device, True)
    try:
        return load_model(name, device=device)
    except ModelLoadError:
        return pythia_shaped(device, False)


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


def engine(lm: LanguageModel, site: Site, batch: int, precision: str, steps: int, device: str,
           capture: bool) -> dict:
    """run-steps/s, fixed seconds per batch and peak GiB of optimize_batch, by the difference
    of two lengths."""
    residual = residual_function(lm, site)
    targets = torch.randn(batch, SEQ, lm.d_model, device=device)
    init = torch.randn(batch, SEQ, lm.d_model, device=device)
    optimize_batch(residual, targets, init, 3, 0.01, precision, capture=capture)  # warm-up
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for n in (steps, 2 * steps):
        sync(device)
        start = time.perf_counter()
        optimize_batch(residual, targets, init, n, 0.01, precision, capture=capture)
        sync(device)
        times.append(time.perf_counter() - start)
    per_step = (times[1] - times[0]) / steps
    if per_step <= 0:  # timing noise swamped a short run (a busy machine): no fixed cost to separate
        per_step = times[1] / (2 * steps)
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else float("nan")
    return dict(run_steps_per_s=batch / per_step, fixed_s=max(times[0] - steps * per_step, 0.0), peak_gib=peak)


def startup(lm: LanguageModel, device: str) -> dict:
    """A GPU job's start-up: a fresh interpreter's imports (before the claim), and moving the
    weights from host memory to the device (after it; the first CUDA use included)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", JOB_IMPORTS], check=True)
    cpu_s = time.perf_counter() - start
    lm.to("cpu")
    start = time.perf_counter()
    lm.to(device)
    torch.zeros(1, device=device).add_(1)
    sync(device)
    return {"cpu_s": round(cpu_s, 2), "device_s": round(time.perf_counter() - start, 2),
            "note": "a fresh interpreter's imports (cpu_s); weights to the device, first CUDA use included (device_s)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EleutherAI/pythia-160m")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[40, 256, 1024, 2048])
    parser.add_argument("--precisions", nargs="+", default=["tf32", "fp32", "bf16"])
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 12])
    parser.add_argument("--capture", choices=["both", "on", "off"], default="both",
                        help="time the CUDA-graph step, the eager step, or both (the CPU is always eager)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reference-steps", type=int, default=30)
    parser.add_argument("--tiny", action="store_true", help="a 64-wide model: a smoke run, not a measurement")
    parser.add_argument("--out", help="write the rate table (JSON) here, for benchmarks/plan.py --rates")
    args = parser.parse_args()

    lm = benchmark_model(args.model, "cpu", args.tiny)
    start_up = startup(lm, args.device)
    rows = []
    reference = reference_loop(lm, 12, args.reference_steps, args.device)
    captures = {"both": [True, False], "on": [True], "off": [False]}[args.capture]
    if torch.device(args.device).type != "cuda":
        captures = [False]
    for layer in args.layers:
        site = Site("hidden_states", layer)
        for precision in args.precisions:
            for capture in captures:
                for batch in args.batches:
                    try:
                        measured = engine(lm, site, batch, precision, args.steps, args.device, capture)
                    except torch.OutOfMemoryError:
                        torch.cuda.empty_cache()
                        continue
                    rows.append(dict(layer=layer, precision=precision, batch=batch, capture=capture, **measured))
    device = device_name(args.device)
    print(f"\ndevice: {device}; model: {lm.name}; torch {torch.__version__}")
    print(f"start-up of a GPU job: {start_up['cpu_s']:.1f} s of imports (before the claim), "
          f"{start_up['device_s']:.1f} s to put the weights on the device\n")
    print("| loop | layer | precision | B | run-steps/s | × reference | % of bf16 roofline | fixed s/batch | peak GiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| seed reference (B=1, full model + LM head, .item()) | 12 | fp32 | 1 | {reference:,.0f} | 1.0 | | | |")
    for r in rows:
        roofline = r["run_steps_per_s"] * GFLOP_PER_RUN_STEP_L12 * r["layer"] / 12 / (BF16_PEAK_TFLOPS * 1e3)
        loop = "engine, CUDA graph" if r["capture"] else "engine, eager"
        print(f"| {loop} | {r['layer']} | {r['precision']} | {r['batch']} | {r['run_steps_per_s']:,.0f} "
              f"| {r['run_steps_per_s'] / reference:,.1f} | {roofline:.1%} | {r['fixed_s']:.2f} | {r['peak_gib']:.2f} |")
    if args.out:
        table = {"device": device, "torch": torch.__version__, "model": lm.name, "engine": "this checkout",
                 "reference": {"layer": 12, "run_steps_per_s": reference}, "rows": rows, "startup": start_up}
        Path(args.out).write_text(json.dumps(table, indent=1))
        print(f"\nrate table written to {args.out}: python benchmarks/plan.py --rates {args.out}")


if __name__ == "__main__":
    main()
