"""Rule build_targets: the targets of one pack's runs (each of its target ids in each of its
conditions)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors land in the log

import numpy as np

from reachability.runs import Layout, parse_pack
from reachability.sites import Site
from reachability.storage import read_h5, write_h5
from reachability.experiments import get
from reachability.records import expected, targets_record

w, cfg = snakemake.wildcards, snakemake.config
layout = Layout(tuple(snakemake.params.layout["conditions"]), snakemake.params.layout["restarts"])
runs = layout.runs(w.experiment, *parse_pack(w.pack))
site = Site.from_tag(w.site)
cache, made_with = read_h5(snakemake.input.cache, expect=expected(cfg, snakemake.input.cache))
real = cache.pop("residuals")
if get(w.experiment).forward:  # targets of composed texts: the pool's tokens and the model the cache was made with
    import torch

    from reachability.forward import residuals_of_tokens
    from reachability.models import load_study_model

    pool = snakemake.input.forward[0]
    cache["tokens"] = read_h5(pool, ["tokens"], expect=expected(cfg, pool))[0]["tokens"]
    lm = load_study_model(cfg, {snakemake.input.cache: made_with})
    cache["residuals_of"] = lambda tokens: residuals_of_tokens(lm, site, torch.from_numpy(tokens)).numpy()
targets, ids, conditions = [], [], []
for c, condition in enumerate(layout.conditions):
    wanted = sorted({r.target_id for r in runs if r.condition == condition})
    if wanted:
        targets.append(get(w.experiment).make(cfg["experiments"][w.experiment], condition, wanted, real, cache))
        ids += wanted
        conditions += [c] * len(wanted)
write_h5(snakemake.output.targets,
         {"target": np.concatenate(targets), "target_id": ids, "condition": conditions},
         {**targets_record(cfg, w.experiment, w.site, w.pack), "model_identity": made_with.get("model_identity")})
log.info("%s pack %s: %d targets (%d ids x conditions)", w.experiment, w.pack, len(ids), len(set(ids)))
