"""Rule plot_perturbation: KL vs ε at each site (the curves perturb_residuals computed)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.records import load

perturbation = load(snakemake.config, snakemake.input.curves)
notebook = {site: {kind: c["kl_after"] for kind, c in by_kind.items()} for site, by_kind in perturbation["curves"].items()}
plots.kl_curves(snakemake.output.figure, notebook, perturbation["epsilons"], snakemake.params.plots["dpi"])
