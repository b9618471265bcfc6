"""KL vs ε: notebook 004's loop against the batched perturbation, on one device.

Notebook 004 runs the full model once per (sequence, ε, direction), moves the residual by a
hook, copies the logits to the CPU and computes the KL there. `perturbation_kl` runs every
perturbation of a site in a few batched forwards that start at the site, with the KL on the
device. Both get the same sequences and directions, so their KLs must agree; the table gives
both times and the ratio.

  python benchmarks/perturbation_benchmark.py                       # GPU
  python benchmarks/perturbation_benchmark.py --tiny --device cpu   # smoke run
"""

from __future__ import annotations

import argparse
import time

import torch

from engine_benchmark import benchmark_model, sync
from reachability.forward import residuals_of_tokens
from reachability.functional import kl_divergence
from reachability.models import LanguageModel
from reachability.perturbation import perturbation_kl, rms, unit_directions
from reachability.job import device_name
from reachability.sites import Site


def notebook_loop(lm: LanguageModel, site: Site, tokens: torch.Tensor, token_index: int, epsilons: list[float],
                  directions: torch.Tensor) -> torch.Tensor:
    """Mean KL over positions token_index.. [E, N, n], one full forward per perturbation with
    the residual moved by a hook on the block that produces the site (a block output site),
    logits and KL on the CPU: the notebook's loop."""
    module = lm.blocks[site.layer - 1]
    tokens = tokens.to(lm.device)
    with torch.no_grad():
        base = lm.model(input_ids=tokens).logits[:, token_index:].float().cpu()
    h = residuals_of_tokens(lm, site, tokens)[:, token_index]
    out = torch.zeros(len(epsilons), len(tokens), directions.shape[1])
    for e, eps in enumerate(epsilons):
        for i in range(len(tokens)):
            for k in range(directions.shape[1]):
                if eps == 0:
                    continue  # the notebook records 0 without a forward
                delta = (eps * rms(h[i]) * directions[i, k]).to(lm.device)

                def move(module, args, output, delta=delta):
                    hidden = (output[0] if isinstance(output, tuple) else output).clone()
                    hidden[:, token_index] += delta
                    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

                handle = module.register_forward_hook(move)
                try:
                    with torch.no_grad():
                        logits = lm.model(input_ids=tokens[i:i + 1]).logits[0, token_index:].float().cpu()
                finally:
                    handle.remove()
                out[e, i, k] = kl_divergence(logits, base[i]).mean()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EleutherAI/pythia-160m")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layer", type=int, default=6, help="block_output site")
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--directions", type=int, default=8)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0, 0.25, 0.5, 1.0, 2.0])
    parser.add_argument("--token-index", type=int, default=9)
    parser.add_argument("--tiny", action="store_true")
    args = parser.parse_args()

    lm = benchmark_model(args.model, args.device, args.tiny)
    site = Site("block_output", min(args.layer, lm.n_layers))
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, lm.config.vocab_size, (args.sequences, 20), generator=generator)
    h = residuals_of_tokens(lm, site, tokens)
    v = unit_directions(h[:, args.token_index], "isotropic", args.directions, generator)
    times, results = {}, {}
    for name, run in (("batched, from the site", lambda: perturbation_kl(lm, site, h, args.token_index, args.epsilons, v)["perturbed_base"].mean(-1)),
                      ("notebook 004 loop", lambda: notebook_loop(lm, site, tokens, args.token_index, args.epsilons, v))):
        run()  # warm-up
        sync(args.device)
        start = time.perf_counter()
        results[name] = run()
        sync(args.device)
        times[name] = time.perf_counter() - start
    fast, slow = times["batched, from the site"], times["notebook 004 loop"]
    gap = (results["batched, from the site"] - results["notebook 004 loop"]).abs().max().item()
    n = args.sequences * args.directions * sum(e != 0 for e in args.epsilons)
    print(f"\ndevice: {device_name(args.device)}; model: {lm.name}; {site}; {n} perturbations "
          f"({args.sequences} sequences x {args.directions} directions x {len(args.epsilons)} ε)\n")
    print("| loop | seconds | perturbations/s |")
    print("|---|---|---|")
    for name, seconds in times.items():
        print(f"| {name} | {seconds:.3f} | {n / seconds:,.0f} |")
    print(f"\nbatched / notebook: {slow / fast:.1f}x faster; largest |ΔKL| between them {gap:.2e}")


if __name__ == "__main__":
    main()
