"""Rule aggregate: one experiment's shards -> runs.h5 ([condition, target, restart] arrays)
and metrics.json (per target and per condition, with provenance)."""

import json

import numpy as np

from reachability.config import site_of
from reachability.pipeline import config_hash, library_versions, provenance, start_log
from reachability.storage import read_attrs, write_h5
from reachability.results import collect_runs, jsonable, summarise_condition

log = start_log(snakemake.log[0])
cfg, p = snakemake.config, snakemake.params
made_by = provenance(cfg, site_of(cfg))
runs = collect_runs(list(snakemake.input.runs), p.conditions, p.n_targets, p.restarts, made_by)
shards = [read_attrs(path) for path in snakemake.input.runs]
m = cfg["metrics"]
metrics = {
    "experiment": snakemake.wildcards.experiment,
    "conditions": {
        name: summarise_condition(runs, c, m["reached_threshold"], m["plateau_tail"], m["plateau_tolerance"])
        for c, name in enumerate(p.conditions)
    },
    "provenance": {
        **made_by,
        "site_kind": cfg["site"]["kind"],
        "layer": cfg["site"]["layer"],
        "config_hash": config_hash(cfg),
        "optimizer": cfg["optimizer"],
        "precision": cfg["engine"]["precision"],
        "devices": sorted({s["device"] for s in shards}),
        "optimisation_wall_s": float(sum(s["wall_s"] for s in shards)),
        "n_shards": len(shards),
        "versions": library_versions(),
        "shard_versions": sorted({json.dumps(s["versions"], sort_keys=True) for s in shards}),
    },
}
with open(snakemake.output.metrics, "w") as f:
    json.dump(jsonable(metrics), f, indent=1)
write_h5(snakemake.output.runs, runs, {**made_by, "conditions": p.conditions})
log.info("%s: %d conditions x %d targets x %d restarts; %d diverged", snakemake.wildcards.experiment,
         len(p.conditions), p.n_targets, p.restarts, int(np.sum(runs["diverged"])))
