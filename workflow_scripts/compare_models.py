"""Rule compare_models: the compared models' metrics -> one table (results/compare/models.md,
.json): median best final MSE and reached share per model and condition, with intervals."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log

log = start_log(snakemake)  # first: import errors land in the log

import json

from reachability.comparison import markdown_table, model_rows, steps_note
from reachability.results import read_metrics
from reachability.storage import jsonable, writing

p = snakemake.params
models = [m for m in p.models if p.metrics[m["label"]]]
rows = model_rows(models, [read_metrics(p.metrics[m["label"]]) for m in models], p.findings)
with writing(snakemake.output.json) as f:
    json.dump(jsonable({"axis": p.axis, "models": models, "rows": rows}), f, indent=1)
with writing(snakemake.output.table) as f:
    note = steps_note(rows)
    f.write(f"# Reachability across models\n\nIntervals: median over targets with its {p.findings['confidence']:.0%} "
            f"bootstrap interval; reached share with its Clopper-Pearson interval. Relative MSE: best MSE over the "
            f"target's mean square (comparable across models whose residuals differ in scale).\n\n"
            + (f"**Note:** {note}.\n\n" if note else ""))
    f.write(markdown_table(rows, p.axis))
log.info("%d models, %d rows", len(models), len(rows))
