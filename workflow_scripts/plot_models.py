"""Rule plot_models: reachability against training step or size (results/compare/)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.comparison import steps_note
from reachability.records import load

table = load(snakemake.config, snakemake.input.rows)
plots.across_models(snakemake.output.figure, table["rows"], table["axis"], steps_note(table["rows"]),
                    snakemake.params.plots["dpi"])
