"""Rule plot_layer_sweep: median cosine and relative final MSE against the site."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

from reachability import plots
from reachability.records import load

results = load(snakemake.config, snakemake.input.metrics, snakemake.params.steps)["results"]
sites = list(next(iter(results.values())))  # in the sweep's order
rows = {e: {site: (r["median_cosine"], r["median_relative_final_mse"]) for site, r in by_site.items()}
        for e, by_site in results.items()}
plots.layer_sweep(snakemake.output.figure, sites, rows, snakemake.params.plots["dpi"])
