"""Precision evidence: the same real-text targets optimised in fp32, tf32 and bf16.

Targets are the model's residuals of real text (the first usable sequences of `--text`, cut
as the study's pool is); the initial prompts and the steps are the same for every precision,
and the final MSE and cosine are always evaluated in float32. The recommended default is the
fastest precision whose median final MSE is within 2 % of fp32's.

  python benchmarks/precision_benchmark.py --text wiki.test.raw --tokenizer 20B_tokenizer.json
  python benchmarks/precision_benchmark.py --tiny --device cpu --text demo/corpus.txt \\
      --tokenizer DIR --steps 20 --batch 4                                        # smoke run

`--text` is a plain text file, one text per line (WikiText's raw files are); `--tokenizer` a
tokenizer.json or a directory with a tokenizer (default: the model's own).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from engine_benchmark import benchmark_model, sync
from reachability.data import extract_sequences
from reachability.forward import residual_function, residuals_of_tokens
from reachability.models import load_tokenizer
from reachability.methods import Soft, initial_prompt
from reachability.optimize import optimize_batch
from reachability.precision import PRECISIONS
from reachability.job import device_name
from reachability.runs import RunId
from reachability.sites import Site


def tokenizer_from(path: str):
    if path.endswith(".json"):
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast(tokenizer_file=path)
    return load_tokenizer(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="EleutherAI/pythia-160m")
    parser.add_argument("--text", required=True, help="plain text, one text per line (e.g. WikiText-2's wiki.test.raw)")
    parser.add_argument("--tokenizer", help="tokenizer.json or a directory (default: the model's)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layer", type=int, default=12)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--tolerance", type=float, default=0.02, help="allowed relative excess of median final MSE")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--out", help="write the table (JSON) here")
    args = parser.parse_args()

    lm = benchmark_model(args.model, args.device, args.tiny)
    tokenizer = tokenizer_from(args.tokenizer or args.model)
    texts = Path(args.text).read_text(encoding="utf-8").splitlines()
    tokens, _ = extract_sequences(texts, tokenizer, 20, args.batch)
    if tokens.max() >= lm.config.vocab_size:
        raise SystemExit(f"the tokenizer's ids reach {tokens.max()}, beyond the model's vocabulary of "
                         f"{lm.config.vocab_size}: use the model's own tokenizer")
    site = Site("hidden_states", min(args.layer, lm.n_layers))
    targets = residuals_of_tokens(lm, site, torch.from_numpy(tokens)).to(args.device)  # reachable: real text
    init = torch.stack([initial_prompt(RunId("precision", "real", t, 0), 20, lm.d_model) for t in range(args.batch)])
    residual = residual_function(lm, site)
    rows = {}
    for precision in PRECISIONS:
        sync(args.device)
        start = time.perf_counter()
        result = optimize_batch(residual, targets, {"prompt": init.to(args.device)}, Soft(lr=0.01), args.steps,
                                precision=precision, capture=torch.device(args.device).type == "cuda")
        sync(args.device)
        seconds = time.perf_counter() - start
        rows[precision] = dict(mse=float(np.median(result.final_mse)), cos=float(np.median(result.cosine.mean(-1))),
                               rate=args.batch * args.steps / seconds, seconds=seconds, ran=result.batches[0]["mode"])
    reference = rows["fp32"]["mse"]
    eligible = [p for p in PRECISIONS if rows[p]["mse"] <= (1 + args.tolerance) * reference]
    choice = max(eligible, key=lambda p: rows[p]["rate"])
    device = device_name(args.device)
    print(f"\ndevice: {device}; model: {lm.name}; {site}; {args.batch} real sequences of {args.text}; "
          f"{args.steps} steps\n")
    print("| precision | median final MSE | vs fp32 | median cosine | run-steps/s | step ran |")
    print("|---|---|---|---|---|---|")
    for p, r in rows.items():
        print(f"| {p} | {r['mse']:.4g} | {r['mse'] / reference - 1:+.2%} | {r['cos']:.6f} | {r['rate']:,.0f} "
              f"| {r['ran']} |")
    print(f"\nfastest within {args.tolerance:.0%} of fp32's median final MSE: {choice}")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": device, "model": lm.name, "site": str(site),
                                              "steps": args.steps, "batch": args.batch, "rows": rows,
                                              "choice": choice}, indent=1))


if __name__ == "__main__":
    main()
