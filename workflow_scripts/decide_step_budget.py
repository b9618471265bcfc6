"""Checkpoint step_budget: the agenda's rule, "if Exp 1 shows that the configured steps aren't
enough (loss curves still declining), increase to extend_steps everywhere", decided from Exp 1's
packs by the plateau verdict."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors land in the log

from reachability.metrics import plateau_verdict  # noqa: E402
from reachability.records import expected  # noqa: E402
from reachability.results import collect_runs  # noqa: E402
from reachability.storage import write_json  # noqa: E402

cfg, p = snakemake.config, snakemake.params
opt = p.optimizer
runs = collect_runs(list(snakemake.input.runs), p.layout["conditions"], p.n_targets, p.layout["restarts"],
                    lambda path: expected(cfg, path))
loss = runs["loss"][0].reshape(-1, runs["loss"].shape[-1])  # every run of Exp 1, [targets x restarts, steps]
plateau = plateau_verdict(loss, p.plateau["plateau_tail"], p.plateau["plateau_tolerance"], p.plateau["plateau_fraction"])
more = plateau["needs_more_steps"]
reason = (f"Exp 1 at {opt['steps']} steps: {plateau['fraction_still_improving']:.0%} of its runs still fell more than "
          f"{plateau['tolerance']:.0%} over the last {plateau['tail_fraction']:.0%} of their steps "
          f"({'above' if more else 'not above'} the threshold of {plateau['fraction_threshold']:.0%})")
budget = {"steps": opt["extend_steps"] if more else opt["steps"], "base_steps": opt["steps"],
          "extend_steps": opt["extend_steps"], "extended": more, "reason": reason, "plateau": plateau}
log.info("step budget: %d steps. %s", budget["steps"], reason)
write_json(snakemake.output.budget, budget)
