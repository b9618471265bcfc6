"""Rule build_targets: one experiment condition's targets for one block of target ids."""

from reachability.pipeline import provenance, start_log
from reachability.runs import parse_block
from reachability.storage import read_h5, write_h5
from reachability.targets import build_targets

log = start_log(snakemake.log[0])
w, cfg = snakemake.wildcards, snakemake.config
ids = range(*parse_block(w.block))
cache, _ = read_h5(snakemake.input.cache, expect=provenance(cfg))
real = cache.pop("residuals")
targets = build_targets(w.experiment, w.condition, ids, real, cache)
write_h5(snakemake.output.targets, {"target": targets, "target_id": list(ids)},
         {**provenance(cfg), "experiment": w.experiment, "condition": w.condition})
log.info("%s %s targets %s: %s", w.experiment, w.condition, w.block, targets.shape)
