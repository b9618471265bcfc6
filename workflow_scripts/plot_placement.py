"""Rule plot_placement: each condition's reachability error on the perturbation curve."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.records import load

placed = load(snakemake.config, snakemake.input.points, snakemake.params.steps)
plots.placement(snakemake.output.figure, placed["epsilons"], placed["curve"], placed["placed"], placed["site"],
                snakemake.params.plots["dpi"])
