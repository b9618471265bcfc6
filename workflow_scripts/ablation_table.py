"""Rule ablation_table: full model vs no-FFN vs no-attention on Exp 1's targets."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

import numpy as np  # noqa: E402

from reachability import plots  # noqa: E402

def per_target(summary: dict) -> tuple[np.ndarray, np.ndarray]:
    """(mean cosine over positions, best final MSE) of each target's best restart."""
    cosine = np.nanmean(np.array(summary["per_target"]["cosine_by_position"], dtype=float), axis=1)
    return cosine, np.array(summary["per_target"]["best_final_mse"], dtype=float)

with open(snakemake.input.full) as f:
    full_cos, full_mse = per_target(json.load(f)["conditions"]["real"])
with open(snakemake.input.ablated) as f:
    ablated = {c: per_target(s) for c, s in json.load(f)["conditions"].items()}
n = min(len(cos) for cos, _ in ablated.values())
full_cos, full_mse = full_cos[:n], full_mse[:n]
groups = {"full": full_cos, **{name.replace("_", " "): cos for name, (cos, _) in ablated.items()}}
with open(snakemake.output.table, "w") as f:
    f.write("| variant | median cosine | Δ from full | median best MSE | better than full (lower MSE) |\n")
    f.write("|---|---|---|---|---|\n")
    f.write(f"| full model | {np.nanmedian(full_cos):.5f} | — | {np.nanmedian(full_mse):.4g} | — |\n")
    for name, (cos, mse) in ablated.items():
        delta = np.nanmedian(cos) - np.nanmedian(full_cos)
        better = float(np.mean(mse < full_mse))
        f.write(f"| {name.replace('_', ' ')} | {np.nanmedian(cos):.5f} | {delta:+.5f} | {np.nanmedian(mse):.4g} "
                f"| {better:.0%} |\n")
plots.boxes(snakemake.output.figure, groups, "per-target mean cosine (best restart)",
            f"Ablations on {n} of Exp 1's targets", dpi=snakemake.params.plots["dpi"])
