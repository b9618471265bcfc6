"""Rules cache_residuals and cache_site: the pool's residuals at each site this job makes, and
their per-position statistics, from one model load and one forward for all of them."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors and waits for a device land in the log

import torch

from reachability.forward import residuals_at
from reachability.gpu_pool import claimed_device
from reachability.models import load_study_model
from reachability.records import cache_record, expected, place_of
from reachability.sites import Site
from reachability.storage import read_h5, write_h5
from reachability.targets import position_statistics

cfg = snakemake.config
sites = [Site.from_tag(place_of(path)[1]["site"]) for path in snakemake.output]  # checked by the forward
pool, _ = read_h5(snakemake.input.pool, ["tokens"], expect=expected(cfg, snakemake.input.pool))
lm = load_study_model(cfg)
with claimed_device(cfg) as claim:
    residuals = residuals_at(claim.load(lm), sites, torch.from_numpy(pool["tokens"]))
for path, site in zip(snakemake.output, sites):  # on the CPU, after the device is given back
    cache = residuals[site].numpy()
    write_h5(path, {"residuals": cache, **position_statistics(cache)},
             {**cache_record(cfg, site.tag), "model_identity": lm.identity, "d_model": lm.d_model, "n_layers": lm.n_layers,
              "device_held_s": claim.held_s})
    log.info("cached %s residuals at %s", cache.shape, site)
