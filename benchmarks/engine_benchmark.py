"""Run-steps per second: the agenda's reference loop against our batched engine, side by side.

One process, one device. The model has Pythia-160M's shape; real weights are used when
`--model` loads (hub reachable or a local copy), otherwise a random init of the same shape
(the compute is the same). A run-step is one Adam step of one run.

  python benchmarks/engine_benchmark.py                      # GPU: the table for the README
  python benchmarks/engine_benchmark.py --tiny --device cpu  # smoke run (seconds)

Our engine is timed by difference: (time of 2N steps - time of N steps) / N, so the final
evaluation and the one host copy at the end of a batch cancel out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from reachability.config import conditions, n_targets

from reachability.models import LanguageModel, ModelLoadError, architecture_of, load_model
from reachability.optimize import optimize_batch
from reachability.pipeline import device_name
from reachability.forward import residual_function
from reachability.sites import Site

SEQ = 20
ROOT = Path(__file__).resolve().parents[1]
GFLOP_PER_RUN_STEP_L12 = 6.8  # forward 3.4 + input-gradient backward 3.4 (design notes §6)
BF16_PEAK_TFLOPS = 800.0  # an H100 on large bf16 matmuls (design notes §6)


def agenda_run_steps() -> int:
    """Run-steps of the agenda as config.yaml writes it (Exp 1, 2a, 2b, 3, 4): about 7.9 M.
    (config.yaml spells out every key, so no schema is needed: GPU images lack Snakemake.)"""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    runs = sum(len(conditions(config, e)) * n_targets(config, e) * config["experiments"][e]["restarts"]
               for e in ("experiment1", "experiment2a", "experiment2b", "experiment3", "experiment4"))
    return runs * config["optimizer"]["steps"]


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


def engine(lm: LanguageModel, site: Site, batch: int, precision: str, steps: int, device: str) -> tuple[float, float]:
    """(run-steps/s, peak GiB) of optimize_batch, by the difference of two lengths."""
    residual = residual_function(lm, site)
    targets = torch.randn(batch, SEQ, lm.d_model, device=device)
    init = torch.randn(batch, SEQ, lm.d_model, device=device)
    optimize_batch(residual, targets, init, 3, 0.01, precision)  # warm-up
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for n in (steps, 2 * steps):
        sync(device)
        start = time.perf_counter()
        optimize_batch(residual, targets, init, n, 0.01, precision)
        sync(device)
        times.append(time.perf_counter() - start)
    per_step = (times[1] - times[0]) / steps
    peak = torch.cuda.max_memory_allocated() / 2**30 if torch.device(device).type == "cuda" else float("nan")
    return batch / per_step, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EleutherAI/pythia-160m")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "tf32", "bf16"])
    parser.add_argument("--layers", type=int, nargs="+", default=[6, 12])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reference-steps", type=int, default=30)
    parser.add_argument("--tiny", action="store_true", help="a 64-wide model: a smoke run, not a measurement")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()

    lm = benchmark_model(args.model, args.device, args.tiny)
    rows = []
    reference = reference_loop(lm, 12, args.reference_steps, args.device)
    rows.append(dict(loop="seed reference (B=1, full model + LM head, .item())", layer=12, precision="fp32",
                     batch=1, run_steps_per_s=reference, peak_gib=float("nan")))
    for layer in args.layers:
        site = Site("hidden_states", layer)
        for precision in args.precisions:
            for batch in args.batches:
                try:
                    rate, peak = engine(lm, site, batch, precision, args.steps, args.device)
                except torch.OutOfMemoryError:
                    torch.cuda.empty_cache()
                    continue
                rows.append(dict(loop="batched engine", layer=layer, precision=precision, batch=batch,
                                 run_steps_per_s=rate, peak_gib=peak))
    device = device_name(args.device)
    print(f"\ndevice: {device}; model: {lm.name}; torch {torch.__version__}\n")
    print("| loop | layer | precision | B | run-steps/s | × reference | % of bf16 roofline | peak GiB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        r["roofline"] = r["run_steps_per_s"] * GFLOP_PER_RUN_STEP_L12 * r["layer"] / 12 / (BF16_PEAK_TFLOPS * 1e3)
        print(f"| {r['loop']} | {r['layer']} | {r['precision']} | {r['batch']} | {r['run_steps_per_s']:,.0f} "
              f"| {r['run_steps_per_s'] / reference:,.1f} | {r['roofline']:.1%} | {r['peak_gib']:.2f} |")
    best = max((r for r in rows if r["layer"] == 12), key=lambda r: r["run_steps_per_s"])
    total = agenda_run_steps()
    print(f"\nthe agenda's job plan: {total:,} run-steps; at the best layer-12 rate ({best['run_steps_per_s']:,.0f} "
          f"run-steps/s, {best['precision']}, B={best['batch']}) that is {total / best['run_steps_per_s'] / 60:,.1f} "
          f"minutes of optimisation (job start-up not included; see benchmarks/pipeline_overhead.py)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"device": device, "model": lm.name, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
