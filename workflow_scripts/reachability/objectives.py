"""What a run minimises, as a per-run loss over input embeddings (the engine's `Loss`).

  mse         mean((residual − target)²): the agenda's (`optimize.mse_of`)
  cosine_mse  (1 − mean over positions of cos(residual, target)) + w · mean((residual − target)²):
              the research log's (w = 0.01), which is why the log reports cosine first
Each has `optimize.mse_of`'s signature and shapes: (residual, targets [B, S, d], precision) ->
loss(embeds [N, S, d], rows [N] or None) -> [N], row n against target rows[n] (several candidates
of one run) or against target n. Summed over runs and differentiated, each run gets exactly its
own gradient, as with the MSE.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Residual = Callable[[torch.Tensor], torch.Tensor]


def cosine_mse_of(residual: Residual, target: torch.Tensor, precision: str,
                  mse_weight: float = 0.01) -> Callable[..., torch.Tensor]:
    """Input embeddings [N, S, d] -> per-row (1 − mean over positions of cos(residual, target))
    + mse_weight · MSE [N] (`F.cosine_similarity`, eps 1e-8). bf16 autocast per call, as for
    the MSE."""
    def loss(embeds: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        with torch.autocast(target.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            achieved = residual(embeds)
        achieved, want = achieved.float(), target if rows is None else target[rows]
        cosine = F.cosine_similarity(achieved, want, dim=-1).mean(dim=1)
        return (1 - cosine) + mse_weight * (achieved - want).pow(2).mean(dim=(1, 2))

    return loss
