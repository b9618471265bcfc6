"""Rule optimise_pack: optimise every run of one pack (a range of an experiment's runs at a site).

The CPU-side start-up comes first (imports, targets, weights in host memory, initial prompts);
the device is claimed only then, and given back before the results are written, so with more
GPU jobs in flight than devices one job starts up while another computes."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors and waits for a device land in the log

import time

import numpy as np
import torch

from reachability.ablation import ablated
from reachability import experiments, study
from reachability.forward import residual_function
from reachability.gpu_pool import claimed_device
from reachability.methods import build
from reachability.optimize import BatchResult, optimize_runs
from reachability.job import device_name, library_versions
from reachability.models import load_study_model, token_embeddings
from reachability.storage import read_attrs, read_h5, read_targets, write_h5
from reachability.runs import Layout, parse_pack
from reachability.sites import Site
from reachability.records import expected, pack_record

w, cfg, p = snakemake.wildcards, snakemake.config, snakemake.params
opt, engine = {**p.optimizer, "steps": int(w.steps)}, cfg["engine"]
site = Site.from_tag(w.site)
layout = Layout(tuple(p.layout["conditions"]), p.layout["restarts"])
runs = layout.runs(w.experiment, *parse_pack(w.pack))
targets = read_targets([snakemake.input.targets], lambda path: expected(cfg, path))
log.info("pack %s holds %d runs of %s at %s: targets %d..%d x %d conditions x %d restarts", w.pack, len(runs),
         w.experiment, site, runs[0].target_id, runs[-1].target_id, len(layout.conditions), layout.restarts)

lm = load_study_model(cfg, {snakemake.input.targets: read_attrs(snakemake.input.targets)})  # host memory: the
# device is not ours yet; the model the targets were made with
n_parameters = sum(t.numel() for t in lm.model.parameters())  # its size, for comparisons across models
target = torch.from_numpy(np.stack([targets[r.condition, r.target_id] for r in runs]))
settings = study.methods(cfg, w.experiment)
prompt_length, scored, texts = cfg["seq_len"], None, None
if experiments.get(w.experiment).prompt:  # a real text follows the prompt (prefix steering): scored on it
    prompt_length, scored = experiments.get(w.experiment).prompt(cfg["experiments"][w.experiment], cfg["seq_len"])
    tokens = read_h5(snakemake.input.pool[0], ["tokens"], expect=expected(cfg, snakemake.input.pool[0]))[0]["tokens"]
    with torch.no_grad():
        texts = lm.embed(torch.from_numpy(tokens[[r.target_id for r in runs], prompt_length:])).float()
    target = target[:, scored]


plans = []  # (variant, the runs' indices, method, its steps, its inputs), before the device is claimed
for (variant, name), members in study.groups(runs).items():
    own = settings[runs[members[0]].condition]
    method = build(name, opt["lr"], own, lambda: token_embeddings(lm, cfg), engine)
    inputs = method.start([runs[i] for i in members], prompt_length, lm.d_model)
    plans.append((variant, members, method, own.get("steps", opt["steps"]), inputs))
parts, order = [], []
with claimed_device(cfg) as claim:
    claim.load(lm)
    start = time.perf_counter()
    for variant, members, method, steps, inputs in plans:  # variants and methods batch apart
        with ablated(lm, variant):
            parts.append(optimize_runs(
                residual_function(lm, site), target[members], inputs, method, steps, precision=opt["precision"], objective=opt["loss"],
                capture=engine["capture"], batch_size=engine["batch_size"], device=claim.device, progress=True,
                text=None if texts is None else texts[members], scored=scored,
            ))
        order += members
    optimising_s = time.perf_counter() - start
    device = device_name(claim.device)
result = BatchResult.concatenate(parts)
back = np.argsort(order)  # variants were batched apart: back to the pack's run order
dropped = () if p.keep_state else ("exp_avg", "exp_avg_sq")  # Adam's moments: kept to continue from
write_h5(
    snakemake.output.runs,
    {**{k: v[back] for k, v in result.arrays.items() if k not in dropped},
     "target_mean_square": target.double().pow(2).mean(dim=(1, 2)).float().numpy(),  # each run's target scale
     "target_id": [r.target_id for r in runs], "restart": [r.restart for r in runs],
     "condition": [layout.conditions.index(r.condition) for r in runs]},
    {**pack_record(cfg, w.experiment, w.site, w.pack, opt["steps"]), "model_identity": lm.identity,
     "n_parameters": n_parameters,
     "device": device, "optimising_s": optimising_s, "device_wait_s": claim.waited_s, "device_held_s": claim.held_s,
     "batches": result.batches, "versions": library_versions()},
)
run_steps = sum(len(members) * steps for _, members, _, steps, _ in plans)
log.info("%d runs, %d run-steps in %.1f s (%.0f run-steps/s); device held %.1f s; %d diverged; batches %s", len(runs),
         run_steps, optimising_s, run_steps / optimising_s, claim.held_s, int(result.diverged.sum()), result.batches)
