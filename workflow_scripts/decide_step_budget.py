"""Checkpoint step_budget: the agenda's rule, "if Exp 1 shows that the configured steps aren't
enough (loss curves still declining), increase to extend_steps everywhere", decided from Exp 1's
packs by the plateau verdict."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from reachability.budget import decide
from reachability.records import budget_record, expected
from reachability.results import collect_runs
from reachability.storage import write_json

cfg, p = snakemake.config, snakemake.params
runs = collect_runs(list(snakemake.input.runs), p.layout["conditions"], p.n_targets, p.layout["restarts"],
                    lambda path: expected(cfg, path))
loss = runs["loss"][0].reshape(-1, runs["loss"].shape[-1])  # every run of Exp 1, [targets x restarts, steps]
budget = decide(loss, p.optimizer, p.plateau)
log.info("step budget: %d steps. %s", budget["steps"], budget["reason"])
write_json(snakemake.output.budget, budget, budget_record(cfg))
