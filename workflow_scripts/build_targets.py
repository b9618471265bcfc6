"""Rule build_targets: one experiment condition's targets for one block of target ids."""

from reachability.pipeline import provenance, start_log
from reachability.runs import parse_block
from reachability.sites import Site
from reachability.storage import read_h5, write_h5
from reachability.targets import build_targets

log = start_log(snakemake.log[0])
w, cfg = snakemake.wildcards, snakemake.config
ids = range(*parse_block(w.block))
site = Site.from_tag(w.site)
cache, _ = read_h5(snakemake.input.cache, expect=provenance(cfg, site))
real = cache.pop("residuals")
targets = build_targets(w.experiment, w.condition, ids, real, cache)
write_h5(snakemake.output.targets, {"target": targets, "target_id": list(ids)},
         {**provenance(cfg, site), "experiment": w.experiment, "condition": w.condition})
log.info("%s %s targets %s: %s", w.experiment, w.condition, w.block, targets.shape)
