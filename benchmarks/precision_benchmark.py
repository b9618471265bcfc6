"""Precision evidence: the same real-target batch optimised in fp32, tf32 and bf16.

Same targets (residuals of real token sequences), same initial prompts, same steps; the final
MSE and cosine are always evaluated in float32. The recommended default is the fastest
precision whose median final MSE is within 2 % of fp32's.

  python benchmarks/precision_benchmark.py                       # GPU: the README's table
  python benchmarks/precision_benchmark.py --tiny --device cpu --steps 20 --batch 4   # smoke
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from engine_benchmark import benchmark_model, sync
from reachability.optimize import PRECISIONS, initial_prompt, optimize_batch
from reachability.pipeline import device_name
from reachability.forward import residual_function, residuals_of_tokens
from reachability.runs import RunId
from reachability.sites import Site


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EleutherAI/pythia-160m")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layer", type=int, default=12)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--tolerance", type=float, default=0.02, help="allowed relative excess of median final MSE")
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()

    lm = benchmark_model(args.model, args.device, args.tiny)
    site = Site("hidden_states", min(args.layer, lm.n_layers))
    tokens = torch.randint(0, lm.config.vocab_size, (args.batch, 20), generator=torch.Generator().manual_seed(0))
    targets = residuals_of_tokens(lm, site, tokens).to(args.device)  # reachable: made by real tokens
    init = torch.stack([initial_prompt(RunId("precision", "real", t, 0), 20, lm.d_model) for t in range(args.batch)])
    residual = residual_function(lm, site)
    rows = {}
    for precision in PRECISIONS:
        sync(args.device)
        start = time.perf_counter()
        result = optimize_batch(residual, targets, init.to(args.device), args.steps, 0.01, precision)
        sync(args.device)
        seconds = time.perf_counter() - start
        rows[precision] = dict(mse=float(np.median(result.final_mse)), cos=float(np.median(result.cosine.mean(-1))),
                               rate=args.batch * args.steps / seconds)
    reference = rows["fp32"]["mse"]
    eligible = [p for p in PRECISIONS if rows[p]["mse"] <= (1 + args.tolerance) * reference]
    choice = max(eligible, key=lambda p: rows[p]["rate"])
    print(f"\ndevice: {device_name(args.device)}; model: {lm.name}; {site}; B={args.batch}; {args.steps} steps\n")
    print("| precision | median final MSE | vs fp32 | median cosine | run-steps/s |")
    print("|---|---|---|---|---|")
    for p, r in rows.items():
        print(f"| {p} | {r['mse']:.4g} | {r['mse'] / reference - 1:+.2%} | {r['cos']:.5f} | {r['rate']:,.0f} |")
    print(f"\nfastest within {args.tolerance:.0%} of fp32's median final MSE: {choice}")


if __name__ == "__main__":
    main()
