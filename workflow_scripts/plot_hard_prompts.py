"""Rule plot_hard_prompts: per target, hard against soft prompts (results/hard_prompt/)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

from reachability import plots  # noqa: E402
from reachability.storage import read_json  # noqa: E402

rows = read_json(snakemake.input.table)["targets"]
plots.hard_vs_soft(snakemake.output.figure, rows, snakemake.params.plots["dpi"])
