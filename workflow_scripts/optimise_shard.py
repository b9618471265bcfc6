"""Rule optimise_shard: optimise every (target, restart) run of one shard on the GPU."""

from reachability.gpu_pool import claim_for

GPU = claim_for(snakemake.config)  # one device per job under --resources gpu=N, before CUDA starts

import time  # noqa: E402

import torch  # noqa: E402

from reachability.ablation import ablated  # noqa: E402
from reachability.config import ABLATED  # noqa: E402
from reachability.forward import residual_function  # noqa: E402
from reachability.optimize import initial_prompt, optimize_runs  # noqa: E402
from reachability.pipeline import device_name, library_versions, load_study_model, provenance, start_log  # noqa: E402
from reachability.runs import RunId  # noqa: E402
from reachability.sites import Site  # noqa: E402
from reachability.storage import read_h5, write_h5  # noqa: E402

log = start_log(snakemake.log[0])
log.info("GPU pool: %s", "device " + GPU if GPU else "not used (SLURM, or no GPU)")
w, cfg, opt = snakemake.wildcards, snakemake.config, snakemake.params.optimizer
site = Site.from_tag(w.site)
data, _ = read_h5(snakemake.input.targets, expect=provenance(cfg, site))
runs = [RunId(w.experiment, w.condition, int(t), int(w.restart)) for t in data["target_id"]]
log.info("shard holds %d runs: %s %s at %s, restart %s, targets %s", len(runs), w.experiment, w.condition,
         site, w.restart, [r.target_id for r in runs])

lm = load_study_model(cfg)
init = torch.stack([initial_prompt(r, cfg["seq_len"], lm.d_model) for r in runs])
start = time.perf_counter()
with ablated(lm, ABLATED.get(w.condition)):  # the ablation experiment's no_ffn / no_attention
    result = optimize_runs(
        residual_function(lm, site), torch.from_numpy(data["target"]), init,
        opt["steps"], opt["lr"], opt["precision"], cfg["engine"]["batch_size"], lm.device, progress=True,
    )
wall = time.perf_counter() - start
write_h5(
    snakemake.output.runs,
    {**vars(result), "target_id": data["target_id"]},
    {**provenance(cfg, site), **opt, "experiment": w.experiment, "condition": w.condition,
     "restart": int(w.restart), "device": device_name(lm.device), "wall_s": wall,
     "versions": library_versions()},
)
log.info("%d runs x %d steps in %.1f s (%.0f run-steps/s); %d diverged", len(runs), opt["steps"], wall,
         len(runs) * opt["steps"] / wall, int(result.diverged.sum()))
