"""Rule plot_transition: Exp 4's (or 4p's) final MSE against the fraction replaced, the other basis beside it when it ran."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import numpy as np

from reachability import experiments, plots
from reachability.records import load
from reachability.runs import SOFT, split

cfg, steps = snakemake.config, snakemake.params.steps


def curve(path):
    """A replacement experiment's soft-prompt conditions: (its label, fractions, best MSE [F, T])."""
    metrics = load(cfg, path, steps)
    conditions = {c: s for c, s in metrics["conditions"].items() if split(c)[1] == SOFT}
    return (experiments.get(metrics["experiment"]).label, [float(c[1:]) for c in conditions],
            np.array([s["per_target"]["best_final_mse"] for s in conditions.values()], dtype=float))


label, fractions, best = curve(snakemake.input.metrics)
others = {name: (f, b) for name, f, b in map(curve, snakemake.input.others)}  # the other basis, when it ran
fit = load(cfg, snakemake.input.findings, steps)[f"{snakemake.wildcards.experiment}_fit"]
plots.transition(snakemake.output.transition, fractions, best, fit, snakemake.params.plots["dpi"], label, others)
