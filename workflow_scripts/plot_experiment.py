"""Rule plot_experiment: loss curves, final-MSE histogram and per-position cosine."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

import numpy as np  # noqa: E402

from reachability import plots  # noqa: E402
from reachability.config import site_of  # noqa: E402
from reachability.pipeline import provenance  # noqa: E402
from reachability.storage import read_h5  # noqa: E402

cfg, dpi, out = snakemake.config, snakemake.params.plots["dpi"], snakemake.output
exp = snakemake.wildcards.experiment
runs, attrs = read_h5(snakemake.input.runs, ["loss"], expect=provenance(cfg, site_of(cfg)))
conditions = attrs["conditions"]
with open(snakemake.input.metrics) as f:
    summaries = json.load(f)["conditions"]
per_target = [summaries[c]["per_target"] for c in conditions]
best = np.array([t["best_final_mse"] for t in per_target], dtype=float)
cosine = np.array([t["cosine_by_position"] for t in per_target], dtype=float)
plots.loss_curves(out.loss_curves, runs["loss"], conditions, f"{exp}: loss curves", dpi, snakemake.params.plots["max_curves"])
plots.final_mse_histogram(out.histogram, best, conditions, f"{exp}: best-of-restarts final MSE", dpi)
plots.cosine_by_position(out.cosine, cosine, conditions, f"{exp}: per-position cosine (best run)", dpi)
