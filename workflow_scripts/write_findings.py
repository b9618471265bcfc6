"""Rule findings: the agenda's interpretation guide, line by line, with effect sizes, bootstrap
intervals, tests (Holm-adjusted) and verdicts (findings.md, findings.json)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log

log = start_log(snakemake)  # first: import errors land in the log

import json

from reachability import guide
from reachability.results import read_metrics
from reachability.storage import jsonable, read_json, writing
from reachability.study import site_of

settings = snakemake.params.findings
metrics = {m["experiment"]: m for m in read_metrics(snakemake.input.metrics)}
boundary = None
if snakemake.input.boundary:
    site, by_site = site_of(snakemake.config).tag, read_json(snakemake.input.boundary[0])["sites"]
    if site not in by_site:
        raise ValueError(f"{snakemake.input.boundary[0]} analyses {list(by_site)}, not the study's site {site}: it "
                         f"belongs to another study; delete it and rerun")
    boundary = by_site[site]
rows, extras = guide.rows(metrics, settings, boundary)
warned = guide.warnings(metrics)
for row in rows:
    log.info("%s: %s", row.observation, row.verdict)
for warning in warned:
    log.warning(warning)
with writing(snakemake.output.table) as f:
    f.write(guide.markdown(rows, settings, warned))
with writing(snakemake.output.json) as f:
    json.dump(jsonable({"settings": settings, "warnings": warned, "findings": [r.row() for r in rows], **extras}),
              f, indent=1)
