"""Rule plot_transition: Exp 4's final MSE against the fraction of dimensions replaced."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

import numpy as np  # noqa: E402

from reachability import plots  # noqa: E402
from reachability.storage import read_json  # noqa: E402

conditions = read_json(snakemake.input.metrics)["conditions"]
fractions = [float(c[1:]) for c in conditions]
best = np.array([s["per_target"]["best_final_mse"] for s in conditions.values()], dtype=float)
fit = read_json(snakemake.input.findings)["experiment4_fit"]
plots.transition(snakemake.output.transition, fractions, best, fit, snakemake.params.plots["dpi"])
