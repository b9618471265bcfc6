"""Rule cache_residuals: the pool's residuals at the site, and their per-position statistics."""

from reachability.gpu_pool import claim_device

# One device per job under `--resources gpu=N`, claimed before anything initialises CUDA.
GPU = claim_device() if snakemake.config["engine"]["device"] in ("auto", "cuda") else None

import torch  # noqa: E402

from reachability.config import check_model_limits  # noqa: E402
from reachability.models import load_model, resolve_device  # noqa: E402
from reachability.pipeline import provenance, start_log  # noqa: E402
from reachability.forward import residuals_of_tokens  # noqa: E402
from reachability.sites import Site, check_site  # noqa: E402
from reachability.storage import read_h5, write_h5  # noqa: E402
from reachability.targets import position_statistics  # noqa: E402

log = start_log(snakemake.log[0])
log.info("GPU pool: %s", "device " + GPU if GPU else "not used (SLURM, or no GPU)")
cfg = snakemake.config
device = resolve_device(cfg["engine"]["device"])
lm = load_model(cfg["model"]["name"], cfg["model"]["revision"], device, cfg["model"]["allow_pickle_weights"])
check_model_limits(cfg, lm.config)
site = Site.from_tag(snakemake.wildcards.site)
check_site(site, lm.n_layers)
pool, _ = read_h5(snakemake.input.pool, ["tokens"], expect=provenance(cfg))
residuals = residuals_of_tokens(lm, site, torch.from_numpy(pool["tokens"])).numpy()
stats = position_statistics(residuals)
write_h5(snakemake.output.cache, {"residuals": residuals, **stats},
         {**provenance(cfg, site), "d_model": lm.d_model, "n_layers": lm.n_layers})
log.info("cached %s residuals at %s", residuals.shape, site)
