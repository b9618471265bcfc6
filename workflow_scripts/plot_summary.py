"""Rule plot_summary: every condition's best final MSE (summary.png, the money plot)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import numpy as np

from reachability import plots
from reachability.results import label_conditions, read_metrics

rows = label_conditions(read_metrics(snakemake.input.metrics, snakemake.config, snakemake.params.steps))
groups = {label: np.array(s["per_target"]["best_final_mse"], dtype=float) for label, s in rows.items()}
plots.summary(snakemake.output.summary, groups, snakemake.params.plots["dpi"])
