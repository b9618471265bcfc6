"""Rule layer_sweep: reachability of real and random targets at each site."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

start_log(snakemake)  # first: import errors land in the log

import itertools
from collections import defaultdict

import numpy as np

from reachability.runs import SOFT, split
from reachability.study import conditions
from reachability.records import expected, place_of
from reachability.results import collect_runs, summarise_condition
from reachability.storage import write_json, writing
from reachability.sites import Site

cfg, sweep, m = snakemake.config, snakemake.params.sweep, snakemake.params.metrics
groups = defaultdict(list)
for path in snakemake.input.runs:  # filed by where they are in the study; each file is checked against it
    place = place_of(path)[1]
    groups[place["experiment"], place["site"]].append(path)
sites = [Site(s["kind"], s["layer"]) for s in sweep["sites"]]
results = defaultdict(dict)
for experiment in sweep["experiments"]:
    for site, condition in itertools.product(sites, conditions(cfg, experiment)):  # a swept experiment: one base
        runs = collect_runs(groups[experiment, site.tag], [condition], sweep["n_targets"], sweep["restarts"],
                            lambda path: expected(cfg, path))
        s = summarise_condition(runs, 0, m)
        relative = np.asarray(s["per_target"]["best_final_mse"]) / np.asarray(s["per_target"]["initial_mse"])
        method = split(condition)[1]  # each method of the experiment is a line of its own
        results[experiment if method == SOFT else f"{experiment}/{method}"][site.tag] = {
            "site": str(site), "median_cosine": s["median_cosine"], "median_best_final_mse": s["median_best_final_mse"],
            "median_relative_final_mse": float(np.nanmedian(relative)), "reached_fraction": s["reached_fraction"],
            "n_diverged": s["n_diverged"],
        }
write_json(snakemake.output.metrics, {"results": results}, expected(cfg, snakemake.output.metrics,
                                                                   snakemake.params.steps))
with writing(snakemake.output.table) as f:
    f.write("| experiment | site | median cosine | median best MSE | median final/initial MSE | reached |\n")
    f.write("|---|---|---|---|---|---|\n")
    for experiment, by_site in results.items():
        for r in by_site.values():
            f.write(f"| {experiment} | {r['site']} | {r['median_cosine']:.4f} | {r['median_best_final_mse']:.4g} "
                    f"| {r['median_relative_final_mse']:.3g} | {r['reached_fraction']:.0%} |\n")
