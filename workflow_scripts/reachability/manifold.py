"""How far optimised soft prompts are from the token embeddings (the log's Exp 1b).

"Some vector reaches it" is not "some text reaches it": for each prompt vector we find its
nearest token embedding by cosine, compare norms, and then replace the prompt by those hard
tokens to measure what they reach at the target.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.no_grad()
def nearest_tokens(prompts: torch.Tensor, embedding: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """For prompt vectors [..., d]: the id [...] of the token embedding ([V, d]) with the
    highest cosine, and that cosine [...]."""
    flat = F.normalize(prompts.reshape(-1, prompts.shape[-1]).float(), dim=-1)
    table = F.normalize(embedding.float(), dim=-1)
    ids, cos = [], []
    for part in flat.split(chunk):
        best = (part.to(table.device) @ table.T).max(dim=-1)
        ids.append(best.indices.cpu())
        cos.append(best.values.cpu())
    shape = prompts.shape[:-1]
    return torch.cat(ids).reshape(shape), torch.cat(cos).reshape(shape)


def norm_summary(prompts: torch.Tensor, embedding: torch.Tensor) -> dict[str, float]:
    """Mean and median L2 norms of prompt vectors and of token embeddings."""
    p = prompts.reshape(-1, prompts.shape[-1]).float().norm(dim=-1)
    e = embedding.float().norm(dim=-1).cpu()
    return {
        "prompt_norm_mean": float(p.mean()),
        "prompt_norm_median": float(p.median()),
        "token_norm_mean": float(e.mean()),
        "token_norm_median": float(e.median()),
        "norm_ratio_mean": float(p.mean() / e.mean()),
    }
