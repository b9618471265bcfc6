"""Rule placement_curve: the KL-vs-ε curve that reachability errors are placed on, at the study's
site, made the way an error is (every position moved at once, KL at each; the median), on a
log-spaced grid that spans the errors being placed."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors and waits for a device land in the log

import torch

from reachability.study import site_of
from reachability.gpu_pool import claimed_device
from reachability.perturbation import DIRECTIONS, placement_curve
from reachability.models import load_study_model
from reachability.placement import grid_for
from reachability.results import read_solutions
from reachability.storage import read_h5, write_json
from reachability.records import expected, load

cfg, p = snakemake.config, snakemake.params.perturbation
site = site_of(cfg)
pool, _ = read_h5(snakemake.input.pool, ["tokens"], expect=expected(cfg, snakemake.input.pool))
tokens = torch.from_numpy(pool["tokens"][: p["n_sequences"]])
steps = snakemake.params.steps
errors = [s["functional"]["epsilon"] for s in read_solutions(snakemake.input.solutions, cfg, steps).values()]
grid = p["placement_epsilons"] or grid_for(errors, p["placement_points"])
log.info("placement curve at %s over eps %.3g..%.3g (%d points)", site, min(grid), max(grid), len(grid))
lm = load_study_model(cfg, {path: load(cfg, path, steps) for path in snakemake.input.solutions})
with claimed_device(cfg) as claim:
    claim.load(lm)
    curves = {kind: placement_curve(lm, site, tokens, grid, p["n_directions"], kind, p["seed"]).tolist()
              for kind in DIRECTIONS}
write_json(snakemake.output.curve, {
    "site": str(site), "epsilons": grid, "curves": curves, "n_sequences": len(tokens),
    "n_directions": p["n_directions"], "derived": p["placement_epsilons"] is None,
    "statistic": "median over sequences, directions and positions of KL(unperturbed ‖ perturbed) at a position, "
                 "every position moved by eps x its RMS along its own unit direction",
    "model_identity": lm.identity, "device_held_s": claim.held_s}, expected(cfg, snakemake.output.curve, steps))
