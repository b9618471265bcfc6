"""Rule plot_transition: Exp 4's final MSE against the fraction of dimensions replaced."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import numpy as np

from reachability import plots
from reachability.records import load

cfg, steps = snakemake.config, snakemake.params.steps
conditions = load(cfg, snakemake.input.metrics, steps)["conditions"]
fractions = [float(c[1:]) for c in conditions]
best = np.array([s["per_target"]["best_final_mse"] for s in conditions.values()], dtype=float)
fit = load(cfg, snakemake.input.findings, steps)[f"{snakemake.wildcards.experiment}_fit"]
plots.transition(snakemake.output.transition, fractions, best, fit, snakemake.params.plots["dpi"])
