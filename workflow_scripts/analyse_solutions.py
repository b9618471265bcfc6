"""Rule analyse_solutions: how far the optimised prompts are from the token embeddings, what
their nearest hard tokens reach, and the next-token KL of the achieved residuals."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.job import start_log

log = start_log(snakemake)  # first: import errors and waits for a device land in the log

from collections import defaultdict

import numpy as np

from reachability.gpu_pool import claimed_device
from reachability.models import load_tokenizer
from reachability.models import load_study_model
from reachability.records import expected, solutions_record
from reachability.solutions import analyse
from reachability.storage import read_h5, read_targets, write_json
from reachability.study import real_text, site_of

cfg = snakemake.config
site = site_of(cfg)
tokenizer = load_tokenizer(cfg["model"]["name"], cfg["model"]["revision"])
targets = read_targets(list(snakemake.input.targets), lambda path: expected(cfg, path))
keys = ("prompt", "achieved", "final_mse", "target_id", "restart")  # a pack of text methods only has no prompt
by_condition, made_with = defaultdict(lambda: defaultdict(list)), {}
for path in snakemake.input.runs:
    data, attrs = read_h5(path, [k for k in (*keys, "condition") if k != "prompt"], expect=expected(cfg, path),
                          optional=("prompt",))
    made_with[path] = attrs
    if "prompt" not in data:  # no run of this pack has prompt vectors (GCG, the inversion)
        data["prompt"] = np.full_like(data["achieved"], np.nan)
    for i, c in enumerate(data["condition"]):
        for key in keys:
            by_condition[attrs["conditions"][c]][key].append(data[key][i])
runs = {condition: {k: np.stack(v) for k, v in rec.items()} for condition, rec in by_condition.items()}
for condition in [c for c, rec in runs.items() if not np.isfinite(rec["prompt"]).any()]:
    log.info("%s: no prompt vectors (a method that keeps only its text, the inversion): not analysed", condition)
    del runs[condition]
texts = None
if real_text(cfg, snakemake.wildcards.experiment):  # its target t is pool sequence t: the text's trajectory too
    texts = read_h5(snakemake.input.pool, ["tokens"], expect=expected(cfg, snakemake.input.pool))[0]["tokens"]
lm = load_study_model(cfg, made_with)  # the model the runs were made with
with claimed_device(cfg) as claim:
    claim.load(lm)
    out = {condition: analyse(lm, site, rec, targets, condition, tokenizer.decode,
                              snakemake.params.analysis["decoded_examples"], texts) for condition, rec in runs.items()}
for condition, s in out.items():
    log.info("%s: nearest-token cosine %s, hard/soft MSE %.3g/%.3g, median KL %.3g", condition,
             s["manifold"]["nearest_token_cosine_median"], s["manifold"]["hard_median_mse"],
             s["manifold"]["soft_median_mse"], s["functional"]["median_kl"])
experiment = snakemake.wildcards.experiment
write_json(snakemake.output.solutions, {"experiment": experiment, "site": str(site), "conditions": out,
                                        "model_identity": lm.identity, "device_held_s": claim.held_s},
           solutions_record(cfg, experiment, snakemake.params.steps))
