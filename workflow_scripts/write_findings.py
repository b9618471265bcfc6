"""Rule findings: the agenda's interpretation guide, line by line, with effect sizes, bootstrap
intervals, tests (Holm-adjusted) and verdicts (findings.md, findings.json)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

from reachability import guide  # noqa: E402
from reachability.results import read_metrics  # noqa: E402
from reachability.storage import jsonable, writing  # noqa: E402

settings = snakemake.params.findings
metrics = {m["experiment"]: m for m in read_metrics(snakemake.input.metrics)}
rows, fit = guide.rows(metrics, settings)
warned = guide.warnings(metrics)
for row in rows:
    log.info("%s: %s", row.observation, row.verdict)
for warning in warned:
    log.warning(warning)
with writing(snakemake.output.table) as f:
    f.write(guide.markdown(rows, settings, warned))
with writing(snakemake.output.json) as f:
    json.dump(jsonable({"settings": settings, "warnings": warned, "findings": [r.row() for r in rows],
                        "experiment4_fit": fit}), f, indent=1)
