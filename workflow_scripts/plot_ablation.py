"""Rule plot_ablation: per-target cosine of the full model and of each ablated variant, each
side's best over the same restarts."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.guide import paired_table
from reachability.results import experiment_runs

i = snakemake.input
(full, _), (variants, attrs) = (experiment_runs(snakemake.config, path, snakemake.params.steps, ["final_mse", "cosine"])
                                for path in (i.full_runs, i.ablated_runs))
rows = paired_table(full, variants, attrs["conditions"])
groups = {"full": rows[0]["full_cosine"], **{r["variant"].replace("_", " "): r["cosine"] for r in rows}}
plots.boxes(snakemake.output.figure, groups, "per-target mean cosine (best restart)",
            f"Ablations on {rows[0]['targets']} of Exp 1's targets, {rows[0]['restarts']} restart(s) each",
            dpi=snakemake.params.plots["dpi"])
