"""Continue the forward pass from a residual at a site to next-token distributions.

Does a residual at cosine 0.996 also give the target's predictions? `forward.logits_function`
runs only what follows the site (the later blocks, the final norm, the LM head); here the
logits, log-softmax and KL stay on the device, batch by batch, and only the KL per position
comes back to the host.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .forward import logits_function
from .models import LanguageModel
from .sites import Site


def kl_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) over the last (vocabulary) axis: [..., V] -> [...]."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).clamp_min(0.0)


@torch.no_grad()
def kl_from_site(lm: LanguageModel, site: Site, residual_p: torch.Tensor, residual_q: torch.Tensor,
                 first: int = 0, batch_size: int = 64) -> torch.Tensor:
    """KL(p ‖ q) [B, S - first] (on the CPU) of the next-token distributions continued from
    residuals p and q ([B, S, d] each) at `site`, at positions first..S-1."""
    logits = logits_function(lm, site)
    out = []
    for p, q in zip(residual_p.split(batch_size), residual_q.split(batch_size)):
        p, q = (x.to(lm.device, torch.float32) for x in (p, q))
        out.append(kl_divergence(logits(p, first), logits(q, first)).cpu())
    return torch.cat(out) if out else torch.empty(0, residual_p.shape[1] - first)
