"""Rule compare_models: the compared models' metrics -> one table (results/compare/models.md,
.json): median best final MSE and reached share per model and condition, with intervals."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability.budget import steps_of
from reachability.comparison import markdown_table, model_rows, steps_note, studies
from reachability.records import compared_record
from reachability.results import read_metrics
from reachability.storage import write_json, writing

p, cfg = snakemake.params, snakemake.config
models, theirs = [m for m in p.models if p.metrics[m["label"]]], studies(cfg)


def metrics_of(label):
    """A model's metrics.json files, each checked against that model's own study at its own step budget."""
    return read_metrics(p.metrics[label], theirs[label], steps_of(theirs[label], p.budgets.get(label)))


rows = model_rows(models, [metrics_of(m["label"]) for m in models], p.findings)
write_json(snakemake.output.json, {"axis": p.axis, "models": models, "rows": rows}, compared_record(cfg))
with writing(snakemake.output.table) as f:
    note = steps_note(rows)
    f.write(f"# Reachability across models\n\nIntervals: median over targets with its {p.findings['confidence']:.0%} "
            f"bootstrap interval; reached share with its Clopper-Pearson interval. Relative MSE: best MSE over the "
            f"target's mean square (comparable across models whose residuals differ in scale).\n\n"
            + (f"**Note:** {note}.\n\n" if note else ""))
    f.write(markdown_table(rows, p.axis))
log.info("%d models, %d rows", len(models), len(rows))
