"""What an experiment's solutions are: how far its optimised prompts lie from the token
embeddings, what their nearest tokens reach, and what the achieved residuals predict.

For one condition's runs (prompts, achieved residuals, final MSEs, targets): the manifold
summary — every prompt vector's nearest token embedding (by cosine), the norms, and the MSE the
nearest tokens reach at the target in place of the soft prompt (per run, so a comparison can
take the same restarts on every side) — and the functional summary — for each target's best
run, KL(target ‖ achieved) of the next-token distributions and the ε of its error, per position —
and the trajectories — for the same runs, the cosine to the target at every layer of the prompt
and of the text that made the target.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .forward import residual_function
from .functional import kl_from_site
from .manifold import nearest_tokens, norm_summary
from .metrics import best_per_target
from .models import LanguageModel
from .placement import epsilon_of_error
from .sites import Site
from .trajectories import best_median_worst, layer_cosines


def what_tokens_reach(lm: LanguageModel, site: Site, token_ids: torch.Tensor, target: np.ndarray) -> tuple:
    """(MSE [R], mean cosine [R]) of the residuals the token sequences [R, S] reach, against the targets."""
    residual = residual_function(lm, site)
    with torch.no_grad():
        hard = torch.cat([residual(lm.embed(chunk)).float().cpu() for chunk in token_ids.split(64)]).numpy()
    mse = ((hard - target) ** 2).mean(axis=(1, 2))
    cos = F.cosine_similarity(torch.from_numpy(hard), torch.from_numpy(target), dim=-1).mean(-1).numpy()
    return mse, cos


def manifold(lm: LanguageModel, site: Site, runs: dict, target: np.ndarray, decode, examples: int) -> dict:
    """Nearest token embeddings of every prompt vector, their norms, and what those tokens reach."""
    embedding = lm.embedding.weight.detach()
    prompt, final = runs["prompt"], runs["final_mse"]
    finite = np.isfinite(final)
    token_ids, token_cos = nearest_tokens(torch.from_numpy(prompt).to(lm.device), embedding)
    hard_mse, hard_cos = what_tokens_reach(lm, site, token_ids, target)
    soft_cos = F.cosine_similarity(torch.from_numpy(runs["achieved"]), torch.from_numpy(target), dim=-1).mean(-1).numpy()
    cos_values = token_cos[torch.from_numpy(finite)].flatten().numpy()
    return {
        "n_prompts": int(finite.sum()),
        "nearest_token_cosine_median": float(np.median(cos_values)) if cos_values.size else None,
        "fraction_above_0.9": float((cos_values > 0.9).mean()) if cos_values.size else None,
        "nearest_token_cosine_sample": np.random.default_rng(0).permutation(cos_values)[:2000],
        **norm_summary(torch.from_numpy(prompt[finite]), embedding),
        "soft_median_mse": float(np.median(final[finite])),
        "soft_median_cosine": float(np.median(soft_cos[finite])),
        "hard_median_mse": float(np.median(hard_mse[finite])),
        "hard_median_cosine": float(np.median(hard_cos[finite])),
        # every run's nearest-token projection (the hard-prompt report takes each target's best
        # over the restarts it compares)
        "projected_runs": {"target_id": runs["target_id"], "restart": runs["restart"],
                           "mse": np.where(finite, hard_mse, np.nan), "cosine": np.where(finite, hard_cos, np.nan)},
        "decoded_examples": [
            {"target_id": int(runs["target_id"][i]), "tokens": [decode([int(x)]) for x in token_ids[i]]}
            for i in np.flatnonzero(finite)[:examples]
        ],
    }


def functional(lm: LanguageModel, site: Site, runs: dict, target: np.ndarray) -> dict:
    """KL(target ‖ achieved) and the ε of the error, per position, of each target's best run."""
    best = best_per_target(runs["final_mse"], runs["target_id"])
    chosen = list(best.values())
    kl = kl_from_site(lm, site, torch.from_numpy(target[chosen]), torch.from_numpy(runs["achieved"][chosen])).numpy()
    eps = epsilon_of_error(runs["achieved"][chosen], target[chosen])
    return {"target_ids": sorted(best), "kl": kl, "epsilon": eps, "kl_by_position_median": np.median(kl, axis=0),
            "per_target_mean_kl": kl.mean(axis=1), "median_kl": float(np.median(kl.mean(axis=1))),
            "median_epsilon": float(np.median(eps))}


def trajectories(lm: LanguageModel, runs: dict, target: np.ndarray, texts: np.ndarray | None) -> dict:
    """The research log's per-layer trajectories: for each target's best run, the mean over
    positions of cos(hidden_states[L], target) at every layer L of its prompt, and with `texts`
    (the token ids [T, S] that made each target) of that text; the best, median and worst targets
    by best final MSE, and the median over targets at every layer."""
    best = best_per_target(runs["final_mse"], runs["target_id"])
    chosen, ids = list(best.values()), sorted(best)
    prompt = torch.cat([layer_cosines(lm, torch.from_numpy(runs["prompt"][c]), torch.from_numpy(target[c]))
                        for c in np.array_split(chosen, max(1, len(chosen) // 64))]).numpy()
    out = {"target_ids": ids, "prompt": prompt, "prompt_median": np.median(prompt, axis=0),
           "picked": {k: ids[i] for k, i in best_median_worst(runs["final_mse"][chosen], higher_is_better=False).items()}}
    if texts is not None:
        text = layer_cosines(lm, lm.embed(torch.from_numpy(texts[ids]).to(lm.device)), torch.from_numpy(target[chosen]))
        out |= {"text": text.numpy(), "text_median": np.median(text.numpy(), axis=0)}
    return out


def analyse(lm: LanguageModel, site: Site, runs: dict, targets: dict, condition: str, decode, examples: int,
            texts: np.ndarray | None = None) -> dict:
    """One condition's solutions: `runs` holds its runs' arrays (prompt, achieved, final_mse,
    target_id, restart); `targets` the targets by (condition, target id); `texts` the token ids
    of the pool sequence that made each target, where one did (Exp 1: target t is sequence t)."""
    target = np.stack([targets[condition, int(t)] for t in runs["target_id"]])
    return {"manifold": manifold(lm, site, runs, target, decode, examples),
            "functional": functional(lm, site, runs, target),
            "trajectories": trajectories(lm, runs, target, texts)}
