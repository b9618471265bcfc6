"""Rule plot_reachability_curves: Exp 3's reachability curve of each pair (best MSE against α)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import numpy as np

from reachability import plots
from reachability.records import load

conditions = load(snakemake.config, snakemake.input.metrics, snakemake.params.steps)["conditions"]
alphas = [float(c[1:]) for c in conditions]
best = np.array([s["per_target"]["best_final_mse"] for s in conditions.values()], dtype=float)  # [α, pair]
relative = np.array([s["per_target"]["relative_best_final_mse"] for s in conditions.values()], dtype=float)
plots.reachability_curves(snakemake.output.figure, alphas, best, relative, snakemake.params.plots["dpi"])
