"""Rule conditions_table: the research log's table of every condition (results/conditions.md; it was
comparison.md)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import json

from reachability.results import label_conditions, read_metrics
from reachability.storage import writing


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


loaded = read_metrics(snakemake.input.metrics, snakemake.config, snakemake.params.steps)
rows = label_conditions(loaded)
budgets = {json.dumps(m["provenance"]["step_budget"], sort_keys=True) for m in loaded}
with writing(snakemake.output.table) as f:
    for budget in map(json.loads, sorted(budgets)):
        f.write(f"Step budget: {budget['steps']} steps. {budget['reason']}.\n\n")
    f.write("| condition | median cosine | median best MSE | reached | diverged runs | needs more steps |\n")
    f.write("|---|---|---|---|---|---|\n")
    for label, s in rows.items():
        more = "yes" if s["plateau"]["needs_more_steps"] else "no"
        f.write(f"| {label} | {fmt(s['median_cosine'], '.4f')} | {fmt(s['median_best_final_mse'], '.4g')} "
                f"| {s['reached_fraction']:.0%} | {s['n_diverged']} | {more} |\n")
