"""Rule plot_ladder: per set of targets, each rung's relative best MSE, target by target."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.records import load

found = load(snakemake.config, snakemake.input.table, snakemake.params.steps)
plots.ladder(snakemake.output.figure, found["sections"], found["reached_threshold"], snakemake.params.plots["dpi"])
