"""Rule plot_hard_prompts: per target, hard against soft prompts (results/hard_prompt/)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

from reachability import plots  # noqa: E402

with open(snakemake.input.table) as f:
    rows = json.load(f)["targets"]
plots.hard_vs_soft(snakemake.output.figure, rows, snakemake.params.plots["dpi"])
