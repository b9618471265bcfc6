"""Rule aggregate: one experiment's run packs -> runs.h5 ([condition, target, restart] arrays)
and metrics.json (per target and per condition, with provenance)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

import numpy as np  # noqa: E402

from reachability.config import site_of  # noqa: E402
from reachability.pipeline import config_hash, library_versions, provenance  # noqa: E402
from reachability.storage import jsonable, read_attrs, write_h5  # noqa: E402
from reachability.results import collect_runs, summarise_condition  # noqa: E402

cfg, p = snakemake.config, snakemake.params
made_by = provenance(cfg, site_of(cfg))
runs = collect_runs(list(snakemake.input.runs), p.conditions, p.n_targets, p.restarts, made_by)
packs = [read_attrs(path) for path in snakemake.input.runs]
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
        "devices": sorted({s["device"] for s in packs}),
        "optimisation_wall_s": float(sum(s["optimising_s"] for s in packs)),
        "device_held_s": float(sum(s["device_held_s"] for s in packs)),
        "n_packs": len(packs),
        "versions": library_versions(),
        "pack_versions": sorted({json.dumps(s["versions"], sort_keys=True) for s in packs}),
    },
}
with open(snakemake.output.metrics, "w") as f:
    json.dump(jsonable(metrics), f, indent=1)
write_h5(snakemake.output.runs, runs, {**made_by, "conditions": p.conditions})
log.info("%s: %d conditions x %d targets x %d restarts; %d diverged", snakemake.wildcards.experiment,
         len(p.conditions), p.n_targets, p.restarts, int(np.sum(runs["diverged"])))
