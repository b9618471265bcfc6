"""Rule analyse_solutions: how far the optimised prompts are from the token embeddings, what
their nearest hard tokens reach, and the next-token KL of the achieved residuals."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors and waits for a device land in the log

import json  # noqa: E402
from collections import defaultdict  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from reachability.config import site_of  # noqa: E402
from reachability.forward import residual_function  # noqa: E402
from reachability.functional import kl_from_site  # noqa: E402
from reachability.gpu_pool import claimed_device  # noqa: E402
from reachability.manifold import nearest_tokens, norm_summary  # noqa: E402
from reachability.metrics import best_per_target  # noqa: E402
from reachability.models import load_tokenizer  # noqa: E402
from reachability.placement import epsilon_of_error  # noqa: E402
from reachability.pipeline import load_study_model, provenance  # noqa: E402
from reachability.storage import jsonable, read_h5, read_targets, writing  # noqa: E402
from reachability.records import expected  # noqa: E402

cfg = snakemake.config
site = site_of(cfg)
made_by = provenance(cfg, site)
lm = load_study_model(cfg)
tokenizer = load_tokenizer(cfg["model"]["name"], cfg["model"]["revision"])

targets = read_targets(list(snakemake.input.targets), lambda path: expected(cfg, path))
runs = defaultdict(lambda: defaultdict(list))
for path in snakemake.input.runs:
    data, attrs = read_h5(path, ["prompt", "achieved", "final_mse", "target_id", "restart", "condition"],
                          expect=expected(cfg, path))
    for i, c in enumerate(data["condition"]):
        rec = runs[attrs["conditions"][c]]
        for key in ("prompt", "achieved", "final_mse", "target_id", "restart"):
            rec[key].append(data[key][i])


def analyse(condition: str, rec: dict) -> dict:
    """One condition's prompts: the manifold and functional summaries (on the held device)."""
    prompt, achieved = np.stack(rec["prompt"]), np.stack(rec["achieved"])
    final, ids_of_run = np.asarray(rec["final_mse"]), np.asarray(rec["target_id"])
    target = np.stack([targets[condition, int(t)] for t in ids_of_run])
    finite = np.isfinite(final)

    # every optimised prompt: nearest token embedding, norms, what those hard tokens reach
    token_ids, token_cos = nearest_tokens(torch.from_numpy(prompt).to(lm.device), embedding)
    with torch.no_grad():
        hard = torch.cat([residual(lm.embed(chunk)).float().cpu() for chunk in token_ids.split(64)]).numpy()
    hard_mse = ((hard - target) ** 2).mean(axis=(1, 2))
    hard_cos = F.cosine_similarity(torch.from_numpy(hard), torch.from_numpy(target), dim=-1).mean(-1).numpy()
    soft_cos = F.cosine_similarity(torch.from_numpy(achieved), torch.from_numpy(target), dim=-1).mean(-1).numpy()
    cos_values = token_cos[torch.from_numpy(finite)].flatten().numpy()

    # each target's best restart: next-token KL(target ‖ achieved) and the ε of its error
    best = best_per_target(final, ids_of_run)
    chosen = list(best.values())
    kl = kl_from_site(lm, site, torch.from_numpy(target[chosen]), torch.from_numpy(achieved[chosen])).numpy()
    eps = epsilon_of_error(achieved[chosen], target[chosen])
    k = snakemake.params.analysis["decoded_examples"]
    summary = {
        "manifold": {
            "n_prompts": int(finite.sum()),
            "nearest_token_cosine_median": float(np.median(cos_values)) if cos_values.size else None,
            "fraction_above_0.9": float((cos_values > 0.9).mean()) if cos_values.size else None,
            "nearest_token_cosine_sample": np.random.default_rng(0).permutation(cos_values)[:2000],
            **norm_summary(torch.from_numpy(prompt[finite]), embedding),
            "soft_median_mse": float(np.median(final[finite])),
            "soft_median_cosine": float(np.median(soft_cos[finite])),
            "hard_median_mse": float(np.median(hard_mse[finite])),
            "hard_median_cosine": float(np.median(hard_cos[finite])),
            # every run's nearest-token projection (hard_prompts takes each target's best over the
            # restarts it compares)
            "projected_runs": {"target_id": ids_of_run, "restart": np.asarray(rec["restart"]),
                               "mse": np.where(finite, hard_mse, np.nan), "cosine": np.where(finite, hard_cos, np.nan)},
            "decoded_examples": [
                {"target_id": int(ids_of_run[i]), "tokens": [tokenizer.decode([int(x)]) for x in token_ids[i]]}
                for i in np.flatnonzero(finite)[:k]
            ],
        },
        "functional": {  # KL(target ‖ achieved) and ε of the error, per best run and position
            "target_ids": sorted(best),
            "kl": kl,
            "epsilon": eps,
            "kl_by_position_median": np.median(kl, axis=0),
            "per_target_mean_kl": kl.mean(axis=1),
            "median_kl": float(np.median(kl.mean(axis=1))),
            "median_epsilon": float(np.median(eps)),
        },
    }
    log.info("%s: nearest-token cosine %.3f, hard/soft MSE %.3g/%.3g, median KL %.3g", condition,
             summary["manifold"]["nearest_token_cosine_median"], summary["manifold"]["hard_median_mse"],
             summary["manifold"]["soft_median_mse"], summary["functional"]["median_kl"])
    return summary

with claimed_device(cfg) as claim:
    claim.load(lm)
    embedding = lm.embedding.weight.detach()
    residual = residual_function(lm, site)
    out = {condition: analyse(condition, rec) for condition, rec in runs.items()}
    del embedding, residual  # nothing of the model outlives the claim
with writing(snakemake.output.solutions) as f:
    json.dump(jsonable({"experiment": snakemake.wildcards.experiment, "site": str(site), "conditions": out,
                       "device_held_s": claim.held_s}), f, indent=1)
