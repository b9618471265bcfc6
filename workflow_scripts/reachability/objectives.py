"""What a run minimises, as a per-run loss over input embeddings (the engine's `Loss`).

  mse         mean((residual − target)²): the agenda's
  cosine_mse  (1 − mean over positions of cos(residual, target)) + w · mean((residual − target)²):
              the research log's (w = 0.01), which is why the log reports cosine first
Each has the same signature and shapes: (residual, targets [B, S, d], precision) ->
loss(embeds [N, S, d], rows [N] or None, prefix) -> [N], row n against target rows[n] (several candidates
of one run) or against target n. Summed over runs and differentiated, each run gets exactly its
own gradient, as with the MSE. A sequence shorter than the target (a prefix and one more
position: the exact inversion's candidates) is scored on its own positions, the target's first
ones: in a causal model they are those of any longer sequence that starts with it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Residual = Callable[..., torch.Tensor]
Loss = Callable[..., torch.Tensor]


def mse_of(residual: Residual, target: torch.Tensor, precision: str) -> Loss:
    """Input embeddings [N, S, d] -> per-row MSE [N] of the residual they reach, against the
    runs' targets (or those of `rows` [N], run indices: several candidates of one run); with a
    `forward.Prefix`, the embeddings continue it (the residual function computes only them). bf16
    autocast is entered per call, so its cast cache never outlives an update."""
    def loss(embeds: torch.Tensor, rows: torch.Tensor | None = None, prefix=None) -> torch.Tensor:
        with torch.autocast(target.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            achieved = residual(embeds) if prefix is None else residual(embeds, prefix)
        n = achieved.shape[1]
        want = target[:, :n] if rows is None else target[rows, :n]
        return (achieved.float() - want).pow(2).mean(dim=(1, 2))

    return loss


def cosine_mse_of(residual: Residual, target: torch.Tensor, precision: str, mse_weight: float = 0.01) -> Loss:
    """Input embeddings [N, S, d] -> per-row (1 − mean over positions of cos(residual, target))
    + mse_weight · MSE [N] (`F.cosine_similarity`, eps 1e-8); rows, prefix and bf16 autocast as
    for the MSE."""
    def loss(embeds: torch.Tensor, rows: torch.Tensor | None = None, prefix=None) -> torch.Tensor:
        with torch.autocast(target.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            achieved = residual(embeds) if prefix is None else residual(embeds, prefix)
        n = achieved.shape[1]
        achieved, want = achieved.float(), target[:, :n] if rows is None else target[rows, :n]
        cosine = F.cosine_similarity(achieved, want, dim=-1).mean(dim=1)
        return (1 - cosine) + mse_weight * (achieved - want).pow(2).mean(dim=(1, 2))

    return loss


MSE = {"kind": "mse"}  # the agenda's


def loss_of(objective: dict | None, residual: Residual, target: torch.Tensor, precision: str) -> Loss:
    """The per-run loss of a config's `optimizer.loss` ({kind: mse} or {kind: cosine_mse,
    mse_weight: w}; None: the MSE)."""
    objective = objective or MSE
    if objective["kind"] == "mse":
        return mse_of(residual, target, precision)
    if objective["kind"] == "cosine_mse":
        return cosine_mse_of(residual, target, precision, objective.get("mse_weight", 0.01))
    raise ValueError(f"optimizer.loss.kind is {objective['kind']!r}: it must be 'mse' or 'cosine_mse'")
