"""Rule plot_boundary: relative best MSE against each distance, every target a point coloured
by its experiment and condition, the fitted boundary and its interval drawn, one row per site."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots, tidy
from reachability.storage import read_json

with open(snakemake.input.table) as f:
    rows = tidy.from_csv(f.read())
plots.boundary(snakemake.output.figure, rows, read_json(snakemake.input.json)["sites"], snakemake.params.plots["dpi"])
