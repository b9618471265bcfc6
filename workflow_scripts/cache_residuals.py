"""Rule cache_residuals: the pool's residuals at the site, and their per-position statistics."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors and waits for a device land in the log

import torch

from reachability.forward import residuals_of_tokens
from reachability.gpu_pool import claimed_device
from reachability.models import load_study_model
from reachability.sites import Site
from reachability.storage import read_h5, write_h5
from reachability.targets import position_statistics
from reachability.records import cache_record, expected

cfg = snakemake.config
site = Site.from_tag(snakemake.wildcards.site)  # checked against the model by the forward
pool, _ = read_h5(snakemake.input.pool, ["tokens"], expect=expected(cfg, snakemake.input.pool))
lm = load_study_model(cfg)
with claimed_device(cfg) as claim:
    residuals = residuals_of_tokens(claim.load(lm), site, torch.from_numpy(pool["tokens"])).numpy()
stats = position_statistics(residuals)  # on the CPU, after the device is given back
write_h5(snakemake.output.cache, {"residuals": residuals, **stats},
         {**cache_record(cfg, site.tag), "model_identity": lm.identity, "d_model": lm.d_model, "n_layers": lm.n_layers, "device_held_s": claim.held_s})
log.info("cached %s residuals at %s", residuals.shape, site)
