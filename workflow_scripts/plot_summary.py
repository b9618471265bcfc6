"""Rule plot_summary: every condition's final MSE (summary.png) and the research log's
comparison table (comparison.md)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

import numpy as np  # noqa: E402

from reachability import plots  # noqa: E402

dpi = snakemake.params.plots["dpi"]
LABELS = {"experiment1": "Exp 1", "experiment2a": "Exp 2a", "experiment2b": "Exp 2b",
          "experiment3": "Exp 3 α=", "experiment4": "Exp 4 f=", "ablation": "Ablation"}
groups, rows = {}, []
for path in snakemake.input.metrics:
    with open(path) as f:
        m = json.load(f)
    exp = m["experiment"]
    for cond, s in m["conditions"].items():
        label = LABELS[exp] + (cond[1:] if exp in ("experiment3", "experiment4") else f" {cond}")
        groups[label] = np.array(s["per_target"]["best_final_mse"], dtype=float)
        rows.append((label, s["median_cosine"], s["median_best_final_mse"], s["reached_fraction"],
                     s["n_diverged"], s["plateau"]["needs_more_steps"]))
plots.summary(snakemake.output.summary, groups, dpi)

def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)

with open(snakemake.output.table, "w") as f:
    f.write("| condition | median cosine | median best MSE | reached | diverged runs | needs more steps |\n")
    f.write("|---|---|---|---|---|---|\n")
    for label, cos, mse, reached, diverged, more in rows:
        f.write(f"| {label} | {fmt(cos, '.4f')} | {fmt(mse, '.4g')} | {reached:.0%} | {diverged} | {'yes' if more else 'no'} |\n")
