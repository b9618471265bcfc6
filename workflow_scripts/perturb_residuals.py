"""Rule perturb_residuals: KL of next-token distributions against a residual perturbation of
ε × RMS at one token, isotropic and toward other real activations, at each site."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors and waits for a device land in the log

import torch

from reachability.gpu_pool import claimed_device
from reachability.perturbation import DIRECTIONS, kl_vs_epsilon
from reachability.models import load_study_model
from reachability.sites import Site
from reachability.storage import read_h5, write_json
from reachability.records import expected, kl_curves_record

cfg, p = snakemake.config, snakemake.params.perturbation
pool, _ = read_h5(snakemake.input.pool, ["tokens"], expect=expected(cfg, snakemake.input.pool))
tokens = torch.from_numpy(pool["tokens"][: p["n_sequences"]])
lm = load_study_model(cfg)
curves = {}
with claimed_device(cfg) as claim:
    claim.load(lm)
    for tag in snakemake.params.sites:
        site = Site.from_tag(tag)
        curves[tag] = {kind: {name: curve.tolist() for name, curve in kl_vs_epsilon(
            lm, site, tokens, p["token_index"], p["epsilons"], p["n_directions"], kind, p["seed"]).items()}
            for kind in DIRECTIONS}
        log.info("%s: %s", site, curves[tag])
write_json(snakemake.output.curves, {
    "epsilons": p["epsilons"], "token_index": p["token_index"], "n_directions": p["n_directions"],
    "n_sequences": len(tokens), "curves": curves, "model_identity": lm.identity, "device_held_s": claim.held_s,
    "kl_after": "KL(perturbed ‖ unperturbed), mean over the perturbed token and the ones after it",
    "kl_at_token": "KL(unperturbed ‖ perturbed) at the perturbed token"}, kl_curves_record(cfg))
