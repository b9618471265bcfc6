"""Rule cache_residuals: the pool's residuals at the site, and their per-position statistics."""

from reachability.gpu_pool import claim_for

GPU = claim_for(snakemake.config)  # one device per job under --resources gpu=N, before CUDA starts

import torch  # noqa: E402

from reachability.forward import residuals_of_tokens  # noqa: E402
from reachability.pipeline import load_study_model, provenance, start_log  # noqa: E402
from reachability.sites import Site  # noqa: E402
from reachability.storage import read_h5, write_h5  # noqa: E402
from reachability.targets import position_statistics  # noqa: E402

log = start_log(snakemake.log[0])
log.info("GPU pool: %s", "device " + GPU if GPU else "not used (SLURM, or no GPU)")
cfg = snakemake.config
lm = load_study_model(cfg)
site = Site.from_tag(snakemake.wildcards.site)  # checked against the model by the forward
pool, _ = read_h5(snakemake.input.pool, ["tokens"], expect=provenance(cfg))
residuals = residuals_of_tokens(lm, site, torch.from_numpy(pool["tokens"])).numpy()
stats = position_statistics(residuals)
write_h5(snakemake.output.cache, {"residuals": residuals, **stats},
         {**provenance(cfg, site), "d_model": lm.d_model, "n_layers": lm.n_layers})
log.info("cached %s residuals at %s", residuals.shape, site)
