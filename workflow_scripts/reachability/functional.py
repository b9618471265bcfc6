"""Continue the forward pass from a residual at a site to next-token distributions.

Does a residual at cosine 0.996 also give the target's predictions? The residual is injected
by a forward hook that replaces the output of the module that produces the site (block L-1,
or the final norm for hidden_states[n_layers]); the model then runs to its logits as usual.
Only the blocks after the site see the injected tensor, so this is exact for every family
without knowing how a block is called.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import LanguageModel
from .sites import Site, check_site


def _site_module(lm: LanguageModel, site: Site) -> torch.nn.Module:
    check_site(site, lm.n_layers)
    if site.layer == 0:
        raise ValueError(f"{site}: the input embedding is not a residual to continue from; choose layer >= 1")
    if site.ends_with_final_norm(lm.n_layers):
        return getattr(lm.base, lm.arch.final_norm)
    return lm.blocks[site.layer - 1]


@torch.no_grad()
def logits_from_site(lm: LanguageModel, site: Site, residual: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Logits [B, S, V] (float32, on the CPU) of the model continued from `residual` [B, S, d]."""
    module = _site_module(lm, site)
    out = []
    for chunk in residual.split(batch_size):
        chunk = chunk.to(lm.device, torch.float32)

        def replace(mod, args, output, chunk=chunk):
            return (chunk, *output[1:]) if isinstance(output, tuple) else chunk

        handle = module.register_forward_hook(replace)
        try:
            dummy = torch.zeros_like(chunk)  # everything before the site is overwritten
            out.append(lm.model(inputs_embeds=dummy, use_cache=False).logits.float().cpu())
        finally:
            handle.remove()
    return torch.cat(out)


def kl_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ q) over the last (vocabulary) axis: [..., V] -> [...]."""
    log_p = F.log_softmax(logits_p.float(), dim=-1)
    log_q = F.log_softmax(logits_q.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).clamp_min(0.0)
