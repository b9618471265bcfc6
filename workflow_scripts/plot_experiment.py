"""Rule plot_experiment: loss curves, final-MSE histogram and per-position cosine."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import numpy as np

from reachability import plots
from reachability.storage import read_h5
from reachability.records import expected, load

cfg, dpi, out = snakemake.config, snakemake.params.plots["dpi"], snakemake.output
exp = snakemake.wildcards.experiment
steps = snakemake.params.steps
metrics = load(cfg, snakemake.input.metrics, steps)
runs, attrs = read_h5(snakemake.input.runs, ["loss"], expect=expected(cfg, snakemake.input.runs, steps))
conditions = attrs["conditions"]
summaries = metrics["conditions"]
per_target = [summaries[c]["per_target"] for c in conditions]
best = np.array([t["best_final_mse"] for t in per_target], dtype=float)
cosine = np.array([t["cosine_by_position"] for t in per_target], dtype=float)
plots.loss_curves(out.loss_curves, runs["loss"], conditions, f"{exp}: loss curves", dpi, snakemake.params.plots["max_curves"])
plots.final_mse_histogram(out.histogram, best, conditions, f"{exp}: best-of-restarts final MSE", dpi)
plots.cosine_by_position(out.cosine, cosine, conditions, f"{exp}: per-position cosine (best run)", dpi)
