"""Rule plot_steering: per ε, what a prompt reaches of a steered target, beside the next-token
KL of the same ε applied to the residual directly (notebook 004's curve at the study's site)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.records import load
from reachability.runs import split
from reachability.study import site_of

cfg = snakemake.config
conditions = load(cfg, snakemake.input.metrics, snakemake.params.steps)["conditions"]
by_method: dict[str, dict[float, dict]] = {}
for condition, summary in conditions.items():
    base, method = split(condition)
    by_method.setdefault(method, {})[float(base[1:])] = summary
kl = None
if snakemake.input.kl:  # the isotropic curve at the study's site (perturb_residuals adds the site)
    curves = load(cfg, snakemake.input.kl)
    kl = (curves["epsilons"], curves["curves"][site_of(cfg).tag]["isotropic"]["kl_at_token"])
plots.steering(snakemake.output.figure, by_method, kl, snakemake.params.plots["dpi"])
