"""Rule plot_hard_prompts: per target, hard against soft prompts."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.records import load

rows = load(snakemake.config, snakemake.input.table, snakemake.params.steps)["targets"]
plots.hard_vs_soft(snakemake.output.figure, rows, snakemake.params.plots["dpi"])
