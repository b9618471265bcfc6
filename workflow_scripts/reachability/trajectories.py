"""Per-layer trajectories (the research log's): how close to a target the residual is at every
layer, for an optimised soft prompt and for the real text that made the target.

The target is one tensor [S, d] at its site; the residual stream shares one basis at every
layer, so the cosine of `hidden_states[L]` with it says where along the depth the run's residual
(or the text's) comes to point the target's way. One forward of the base model (no LM head)
gives every layer.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .models import LanguageModel


@torch.no_grad()
def layer_cosines(lm: LanguageModel, embeds: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Input embeddings [B, S, d] (a soft prompt, or `lm.embed(tokens)` for text) and targets
    [B, S, d] -> [B, n_layers + 1]: the mean over positions of cos(hidden_states[L], target) at
    every L (Hugging Face's `hidden_states`: L = 0 the input, n_layers after the final norm)."""
    out = lm.base(inputs_embeds=embeds.to(lm.device, torch.float32), output_hidden_states=True, use_cache=False)
    hidden = torch.stack(out.hidden_states, dim=1).float()  # [B, L + 1, S, d]
    return F.cosine_similarity(hidden, targets.to(hidden)[:, None], dim=-1).mean(-1).cpu()


def best_median_worst(score, higher_is_better: bool = True) -> dict[str, int]:
    """The indices of the best, the median and the worst target by `score` [T] (for the median of
    an even count, the lower middle in the order from worst to best); NaN is the worst."""
    score = np.asarray(score, dtype=float)
    ranked = np.where(np.isnan(score), -np.inf, score if higher_is_better else -score)
    order = np.argsort(ranked, kind="stable")  # worst first
    return {"best": int(order[-1]), "median": int(order[(len(order) - 1) // 2]), "worst": int(order[0])}
