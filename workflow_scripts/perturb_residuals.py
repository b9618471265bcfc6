"""Rule perturb_residuals: KL of next-token distributions against a residual perturbation of
ε × RMS at one token, isotropic and toward other real activations, at each site."""

from reachability.gpu_pool import claim_for

GPU = claim_for(snakemake.config)  # one device per job under --resources gpu=N, before CUDA starts

import json  # noqa: E402

import torch  # noqa: E402

from reachability import plots  # noqa: E402
from reachability.perturbation import DIRECTIONS, kl_vs_epsilon  # noqa: E402
from reachability.pipeline import load_study_model, provenance, start_log  # noqa: E402
from reachability.sites import Site  # noqa: E402
from reachability.storage import read_h5  # noqa: E402

log = start_log(snakemake.log[0])
cfg, p = snakemake.config, snakemake.params.perturbation
lm = load_study_model(cfg)
pool, _ = read_h5(snakemake.input.pool, ["tokens"], expect=provenance(cfg))
tokens = torch.from_numpy(pool["tokens"][: p["n_sequences"]])
curves = {}
for tag in snakemake.params.sites:
    site = Site.from_tag(tag)
    curves[tag] = {kind: kl_vs_epsilon(lm, site, tokens, p["token_index"], p["epsilons"], p["n_directions"], kind,
                                       p["seed"]).tolist() for kind in DIRECTIONS}
    log.info("%s: %s", site, curves[tag])
with open(snakemake.output.curves, "w") as f:
    json.dump({"epsilons": p["epsilons"], "token_index": p["token_index"], "n_directions": p["n_directions"],
               "n_sequences": len(tokens), "curves": curves}, f, indent=1)
plots.kl_curves(snakemake.output.figure, curves, p["epsilons"], snakemake.params.plots["dpi"])
