"""Rule plot_hard_prompts: per target, hard against soft prompts."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.storage import read_json

rows = read_json(snakemake.input.table)["targets"]
plots.hard_vs_soft(snakemake.output.figure, rows, snakemake.params.plots["dpi"])
