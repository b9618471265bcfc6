"""Rule plot_transition: Exp 4's final MSE against the fraction of dimensions replaced."""

import json

import numpy as np

from reachability import plots
from reachability.pipeline import start_log

start_log(snakemake.log[0])
with open(snakemake.input.metrics) as f:
    conditions = json.load(f)["conditions"]
fractions = [float(c[1:]) for c in conditions]
best = np.array([s["per_target"]["best_final_mse"] for s in conditions.values()], dtype=float)
plots.transition(snakemake.output.transition, fractions, best, snakemake.params.plots["dpi"])
