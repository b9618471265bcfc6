"""Rule boundary: reachability against distance from the data manifold, at each site of a
targets table (results/boundary.{md,json}; the layer sweep's under results/layer_sweep/)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability import boundary, tidy
from reachability.records import expected, load
from reachability.storage import write_json, writing

cfg, settings, steps = snakemake.config, snakemake.params.findings, snakemake.params.steps
rows = tidy.from_csv(load(cfg, snakemake.input.table, steps))
sites = list(dict.fromkeys(r["site"] for r in rows))
results = {site: boundary.analyse([r for r in rows if r["site"] == site], settings) for site in sites}
for site, result in results.items():
    for name in boundary.DISTANCES:
        log.info("%s, %s distance: AUC %s, boundary %s", site, name, result[name]["pooled"]["auc"],
                 result[name]["pooled"]["boundary"])
write_json(snakemake.output.json, {"settings": settings, "sites": results}, expected(cfg, snakemake.output.json, steps))
with writing(snakemake.output.table) as f:
    f.write("\n".join(boundary.markdown(result, site, settings["boundary_auc"]) for site, result in results.items()))
