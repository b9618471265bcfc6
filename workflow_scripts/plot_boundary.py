"""Rule plot_boundary: relative best MSE against each distance, every target a point coloured
by its experiment and condition, the fitted boundary and its interval drawn, one row per site."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots, tidy
from reachability.records import load

cfg, steps = snakemake.config, snakemake.params.steps
rows = tidy.from_csv(load(cfg, snakemake.input.table, steps))
plots.boundary(snakemake.output.figure, rows, load(cfg, snakemake.input.json, steps)["sites"], snakemake.params.plots["dpi"])
