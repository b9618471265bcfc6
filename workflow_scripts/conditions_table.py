"""Rule conditions_table: the research log's table of every condition (results/conditions.md; it was
comparison.md), with the log's own numbers beside ours in its setting."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import json

from reachability.reference import conditions_markdown
from reachability.results import label_conditions, read_metrics
from reachability.storage import writing

loaded = read_metrics(snakemake.input.metrics, snakemake.config, snakemake.params.steps)
budgets = [json.loads(b) for b in sorted({json.dumps(m["provenance"]["step_budget"], sort_keys=True) for m in loaded})]
with writing(snakemake.output.table) as f:
    f.write(conditions_markdown(label_conditions(loaded), budgets, snakemake.config))
