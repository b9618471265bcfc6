"""Rule ablation_table: full model vs no-FFN vs no-attention on Exp 1's targets."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

import numpy as np  # noqa: E402

from reachability.results import best_runs  # noqa: E402

with open(snakemake.input.full) as f:
    full_cos, full_mse = best_runs(json.load(f)["conditions"]["real"])
with open(snakemake.input.ablated) as f:
    ablated = {c: best_runs(s) for c, s in json.load(f)["conditions"].items()}
n = min(len(cos) for cos, _ in ablated.values())
full_cos, full_mse = full_cos[:n], full_mse[:n]
with open(snakemake.output.table, "w") as f:
    f.write("| variant | median cosine | Δ from full | median best MSE | better than full (lower MSE) |\n")
    f.write("|---|---|---|---|---|\n")
    f.write(f"| full model | {np.nanmedian(full_cos):.5f} | — | {np.nanmedian(full_mse):.4g} | — |\n")
    for name, (cos, mse) in ablated.items():
        delta = np.nanmedian(cos) - np.nanmedian(full_cos)
        better = float(np.mean(mse < full_mse))
        f.write(f"| {name.replace('_', ' ')} | {np.nanmedian(cos):.5f} | {delta:+.5f} | {np.nanmedian(mse):.4g} "
                f"| {better:.0%} |\n")
