"""Rule extend_pack: continue a pack's runs from their saved state (final prompt, Adam's moments
and step count) to the step budget, as if they had never stopped."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

import time

import numpy as np
import torch

from reachability.forward import residual_function
from reachability.gpu_pool import claimed_device
from reachability.methods import build
from reachability.optimize import BatchResult
from reachability.runs import split
from reachability.optimize import optimize_runs
from reachability.job import device_name, library_versions
from reachability.models import load_study_model, token_embeddings
from reachability.sites import Site
from reachability.storage import read_h5, read_targets, write_h5
from reachability.records import expected, extended_record

cfg, w = snakemake.config, snakemake.wildcards
budget = int(w.steps)
site = Site.from_tag(w.site)
pack, attrs = read_h5(snakemake.input.runs, expect=expected(cfg, snakemake.input.runs))
done = int(attrs["steps"])
if "exp_avg" not in pack or budget <= done:
    raise ValueError(f"{snakemake.input.runs} holds no saved state to continue from {done} to {budget} steps")
names = attrs["conditions"]
targets = read_targets([snakemake.input.targets], lambda path: expected(cfg, path))
target = torch.from_numpy(np.stack([targets[names[c], int(t)] for c, t in zip(pack["condition"], pack["target_id"])]))
log.info("continuing %d runs of %s from %d to %d steps", len(target), snakemake.input.runs, done, budget)
lm = load_study_model(cfg, {snakemake.input.runs: attrs})  # host memory: the device is not ours yet
saved = {k: torch.from_numpy(pack[k]) for k in ("prompt", "exp_avg", "exp_avg_sq")}
by_method = {}  # each method's runs continue from their own state (the budget admits only methods that can)
for i, c in enumerate(pack["condition"]):
    by_method.setdefault(split(names[c])[1], []).append(i)
parts, order = [], []
with claimed_device(cfg) as claim:
    claim.load(lm)
    start = time.perf_counter()
    for name, members in by_method.items():
        method = build(name, attrs["lr"], {**attrs["methods"][names[pack["condition"][members[0]]]], "resume_step": done},
                       lambda: token_embeddings(lm, cfg), cfg["engine"])
        parts.append(optimize_runs(residual_function(lm, site), target[members], {k: v[members] for k, v in saved.items()},
                                   method, budget - done, precision=attrs["precision"], objective=attrs["loss"],
                                   capture=cfg["engine"]["capture"],
                                   batch_size=cfg["engine"]["batch_size"], device=claim.device, progress=True))
        order += members
    optimising_s = time.perf_counter() - start
    device = device_name(claim.device)
back = np.argsort(order)
more = BatchResult({k: v[back] for k, v in BatchResult.concatenate(parts).arrays.items()},
                   [b for part in parts for b in part.batches])
arrays = {**more.arrays, "loss": np.concatenate([pack["loss"], more.loss], axis=1), "initial_mse": pack["initial_mse"],
          "diverged": pack["diverged"] | more.diverged,
          **{k: pack[k] for k in ("target_id", "restart", "condition", "target_mean_square")}}
write_h5(snakemake.output.runs, arrays,
         {**attrs, **extended_record(cfg, w.experiment, w.site, w.pack, budget), "device": device, "optimising_s": optimising_s,
          "device_held_s": claim.held_s, "device_wait_s": claim.waited_s,
          "base_optimising_s": attrs["optimising_s"], "base_device_held_s": attrs["device_held_s"],
          "batches": more.batches, "base_batches": attrs.get("batches", []), "versions": library_versions()})
log.info("%d runs continued by %d steps in %.1f s; %d diverged", len(target), budget - done, optimising_s,
         int(arrays["diverged"].sum()))
