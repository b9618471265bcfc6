"""Rule findings: the agenda's interpretation guide, line by line, with effect sizes, bootstrap
intervals, tests (Holm-adjusted) and verdicts (findings.md, findings.json)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability import experiments, guide
from reachability.records import expected, load
from reachability.results import read_metrics
from reachability.storage import write_json, writing
from reachability.study import site_of

cfg, settings, steps = snakemake.config, snakemake.params.findings, snakemake.params.steps
metrics = {m["experiment"]: m for m in read_metrics(snakemake.input.metrics, cfg, steps)}
boundary = None
if snakemake.input.boundary:  # made for this study's site and targets (its record), so the site is there
    boundary = load(cfg, snakemake.input.boundary[0], steps)["sites"][site_of(cfg).tag]
context = guide.Context(metrics, settings, experiments.REGISTRY)
lines = [(name, line) for name, record in experiments.REGISTRY.items() for line in record.findings]  # each record's own
rows, extras = guide.rows(context, lines, boundary)
warned = guide.warnings(metrics)
for row in rows:
    log.info("%s: %s", row.observation, row.verdict)
for warning in warned:
    log.warning(warning)
with writing(snakemake.output.table) as f:
    f.write(guide.markdown(rows, settings, warned))
write_json(snakemake.output.json, {"settings": settings, "warnings": warned, "findings": [r.row() for r in rows],
                                   **extras}, expected(cfg, snakemake.output.json, steps))
