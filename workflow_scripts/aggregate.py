"""Rule aggregate: one experiment's run packs -> runs.h5 ([condition, target, restart] arrays)
and metrics.json (per target and per condition, with provenance)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

import json

import numpy as np

from reachability.study import pool_warnings, site_of
from reachability.job import library_versions
from reachability.records import config_hash, provenance
from reachability.storage import read_attrs, write_h5, write_json
from reachability.records import expected, experiment_record, metrics_record
from reachability.results import (
    batch_modes, capture_warnings, collect_runs, divergence_warnings, summarise_condition,
)

cfg, p = snakemake.config, snakemake.params
made_by = provenance(cfg, site_of(cfg))
runs = collect_runs(list(snakemake.input.runs), p.conditions, p.n_targets, p.restarts, lambda path: expected(cfg, path))
packs = [read_attrs(path) for path in snakemake.input.runs]
m = cfg["metrics"]
budget = p.budget
steps = sorted({int(s["steps"]) for s in packs})
if steps != [budget["steps"]]:
    raise ValueError(f"the packs ran {steps} steps, but the step budget is {budget['steps']}: rerun them")
modes = batch_modes(packs)
conditions = {name: summarise_condition(runs, c, m) for c, name in enumerate(p.conditions)}
warnings = pool_warnings(cfg, snakemake.wildcards.experiment) + divergence_warnings(conditions) + capture_warnings(modes)
for warning in warnings:
    log.warning(warning)
metrics = {
    "experiment": snakemake.wildcards.experiment,
    "warnings": warnings,
    "conditions": conditions,
    "provenance": {
        **made_by,
        "site_kind": cfg["site"]["kind"],
        "layer": cfg["site"]["layer"],
        "config_hash": config_hash(cfg),
        "optimizer": cfg["optimizer"],
        "step_budget": {k: budget[k] for k in ("steps", "reason")},
        "precision": cfg["engine"]["precision"],
        "n_parameters": packs[0].get("n_parameters"),
        "devices": sorted({s["device"] for s in packs}),
        # a continued pack's times are its continuation's; its first part's are kept beside
        "optimisation_wall_s": float(sum(s["optimising_s"] + s.get("base_optimising_s", 0.0) for s in packs)),
        "device_held_s": float(sum(s["device_held_s"] + s.get("base_device_held_s", 0.0) for s in packs)),
        "n_packs": len(packs),
        "batches": modes,  # how the steps ran: captured, or eager and why
        "versions": library_versions(),
        "pack_versions": sorted({json.dumps(s["versions"], sort_keys=True) for s in packs}),
    },
}
write_json(snakemake.output.metrics, metrics, metrics_record(cfg, snakemake.wildcards.experiment, budget["steps"]))
write_h5(snakemake.output.runs, runs, experiment_record(cfg, snakemake.wildcards.experiment, budget["steps"]))
log.info("%s: %d conditions x %d targets x %d restarts; %d diverged", snakemake.wildcards.experiment,
         len(p.conditions), p.n_targets, p.restarts, int(np.sum(runs["diverged"])))
