"""Checkpoint step_budget: the agenda's rule, "if Exp 1 shows that the configured steps aren't
enough (loss curves still declining), increase to extend_steps everywhere", decided from Exp 1's
packs by the plateau verdict."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

from reachability.config import site_of  # noqa: E402
from reachability.pipeline import provenance  # noqa: E402
from reachability.results import collect_runs, summarise_condition  # noqa: E402

cfg, p = snakemake.config, snakemake.params
opt = p.optimizer
runs = collect_runs(list(snakemake.input.runs), p.layout["conditions"], p.n_targets, p.layout["restarts"],
                    provenance(cfg, site_of(cfg)))
plateau = summarise_condition(runs, 0, p.metrics)["plateau"]
more = plateau["needs_more_steps"]
reason = (f"Exp 1 at {opt['steps']} steps: {plateau['fraction_still_improving']:.0%} of its runs still fell more than "
          f"{plateau['tolerance']:.0%} over the last {plateau['tail_fraction']:.0%} of their steps "
          f"({'above' if more else 'not above'} the threshold of {plateau['fraction_threshold']:.0%})")
budget = {"steps": opt["extend_steps"] if more else opt["steps"], "base_steps": opt["steps"],
          "extend_steps": opt["extend_steps"], "extended": more, "reason": reason, "plateau": plateau}
log.info("step budget: %d steps. %s", budget["steps"], reason)
with open(snakemake.output.budget, "w") as f:
    json.dump(budget, f, indent=1)
