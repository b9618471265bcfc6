"""Captured against eager, family by family: the same runs should give the same numbers.

For each tiny model family of the tests (random GPT-NeoX, GPT-2, Llama, Qwen2 with and without
sliding layers, Qwen3, Mistral) and a random Pythia-160M-shaped model, and each precision, B
runs go `--steps` steps eagerly and then captured, from the same start toward the same targets
(real-token residuals at the last layer). The table gives how each batch ran and the largest
relative gap of the loss curves and of the final MSE. Both paths make the same attention call
(forward.py), so in fp32 the gaps are float rounding; TF32 and bf16 gaps show what a kernel
choice does over the steps.

  python benchmarks/capture_check.py                           # GPU
  python benchmarks/capture_check.py --device cpu --steps 5    # smoke run: both paths eager
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from engine_benchmark import pythia_shaped
from reachability.forward import residual_function, residuals_of_tokens
from reachability.methods import Soft
from reachability.models import load_model
from reachability.optimize import optimize_batch
from reachability.job import device_name
from reachability.precision import PRECISIONS
from reachability.sites import Site

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import FAMILIES, save_tiny


def compare(lm, precision: str, batch: int, steps: int, device: str) -> dict:
    site = Site("hidden_states", lm.n_layers)
    tokens = torch.randint(0, lm.config.vocab_size, (batch, 20), generator=torch.Generator().manual_seed(0))
    targets = residuals_of_tokens(lm, site, tokens.to(lm.device)).to(device)
    inputs = {"prompt": torch.randn(batch, 20, lm.d_model, generator=torch.Generator().manual_seed(1)).to(device)}
    residual = residual_function(lm, site)
    eager = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps, precision=precision)
    captured = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps, precision=precision, capture=True)

    def gap(a, b):
        return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))

    ran = captured.batches[0]
    return {"ran": ran["mode"] + (f" ({ran['reason']})" if ran["reason"] else ""), "loss_gap": gap(captured.loss, eager.loss),
            "final_gap": gap(captured.final_mse, eager.final_mse), "final_mse": float(np.median(eager.final_mse))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--no-pythia", action="store_true", help="leave out the Pythia-160M-shaped model")
    args = parser.parse_args()
    models = {}
    with tempfile.TemporaryDirectory() as folder:
        for family in sorted(FAMILIES):
            models[family] = load_model(save_tiny(family, Path(folder) / family)).to(args.device)
    if not args.no_pythia:
        models["pythia-160m shape"] = pythia_shaped(args.device, tiny=False)
    print(f"device: {device_name(args.device)}; torch {torch.__version__}; B = {args.batch}, {args.steps} steps\n")
    print("| model | precision | the captured batch ran | max rel. gap, loss curve | max rel. gap, final MSE "
          "| median final MSE |")
    print("|---|---|---|---|---|---|")
    for name, lm in models.items():
        for precision in args.precisions:
            r = compare(lm, precision, args.batch, args.steps, args.device)
            print(f"| {name} | {precision} | {r['ran']} | {r['loss_gap']:.2e} | {r['final_gap']:.2e} "
                  f"| {r['final_mse']:.3g} |")


if __name__ == "__main__":
    main()
