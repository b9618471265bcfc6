"""Rule targets_table: one row per (experiment, soft-prompt condition, target) at each site, with
each target's distances from the pool's residuals there (results/targets.csv; docs/outputs.md)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

from collections import defaultdict

import numpy as np

from reachability import tidy
from reachability.records import expected, place_of
from reachability.results import collect_runs
from reachability.storage import read_h5, read_targets, write_csv
from reachability.runs import SOFT, split
from reachability.study import conditions

cfg, tables = snakemake.config, snakemake.params.tables
files = defaultdict(list)  # filed by where they are in the study; each file is checked against it
for path in [*snakemake.input.runs, *snakemake.input.targets, *snakemake.input.caches]:
    kind, place = place_of(path)
    files[kind, place.get("experiment"), place["site"]].append(path)
rows = []
for site in tables["sites"]:
    (cache,) = files["cache", None, site]
    pool = read_h5(cache, ["residuals"], expect=expected(cfg, cache))[0]["residuals"]
    found, points = [], []
    for experiment in tables["experiments"]:
        # the soft prompt's conditions: the boundary is of what a soft prompt reaches (the other methods are the
        # ladder's), and a target run by several methods would count as several
        names = [c for c in conditions(cfg, experiment) if split(c)[1] == SOFT]
        n, restarts = tables["shape"][experiment]
        packs = files["runs", experiment, site] + files["extended", experiment, site]
        runs = collect_runs(packs, names, n, restarts, lambda path: expected(cfg, path))
        targets = read_targets(files["targets", experiment, site], lambda path: expected(cfg, path))
        mine, made = tidy.rows_of(site, experiment, names, runs, targets, snakemake.params.metrics)
        found, points = found + mine, points + [made]
    rows += tidy.measure(found, np.concatenate(points), pool)  # every target of the site in one pass
    log.info("%s: %d targets", site, len(found))
write_csv(snakemake.output.table, tidy.to_csv(rows), expected(cfg, snakemake.output.table, snakemake.params.steps))
