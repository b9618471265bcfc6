"""A forward pass that stops at a site: only the blocks the site needs, and no LM head.

A layer-6 target costs 6 blocks. The truncated model is a view of the loaded one (parameters
shared, its own child-module table), so the original model stays whole.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from .models import LanguageModel, max_positions
from .sites import Site, check_site


def truncated_base(lm: LanguageModel, site: Site) -> nn.Module:
    """A view of the base model with only the blocks `site` needs (parameters shared).

    The copy owns its child-module table, so the original model is untouched; the final norm
    stays only where the site is after it.
    """
    check_site(site, lm.n_layers)
    base = copy.copy(lm.base)
    base._modules = dict(base._modules)
    setattr(base, lm.arch.blocks, nn.ModuleList(list(lm.blocks)[: site.layer]))
    if not site.ends_with_final_norm(lm.n_layers):
        setattr(base, lm.arch.final_norm, nn.Identity())
    base.config = copy.copy(base.config)
    base.config.num_hidden_layers = site.layer
    return base


def residual_function(lm: LanguageModel, site: Site) -> Callable[[torch.Tensor], torch.Tensor]:
    """embeds [B, S, d] -> the residual at `site` [B, S, d], through the truncated model.

    Prompts of the wrong width, or longer than the model's context, are refused with a
    message instead of failing deep inside the model (or silently running past its
    position encoding)."""
    base = truncated_base(lm, site)
    context = max_positions(lm.config)

    def residual(embeds: torch.Tensor) -> torch.Tensor:
        if embeds.ndim != 3 or embeds.shape[-1] != lm.d_model or embeds.shape[1] > context:
            raise ValueError(
                f"prompts must be [B, S, d_model] with d_model = {lm.d_model} and S <= {context} "
                f"(the model's context); got {tuple(embeds.shape)}"
            )
        return base(inputs_embeds=embeds, use_cache=False).last_hidden_state

    return residual


@torch.no_grad()
def residuals_of_tokens(
    lm: LanguageModel, site: Site, tokens: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """Residuals at `site` of real token sequences [N, S] -> [N, S, d] on the CPU (float32)."""
    residual = residual_function(lm, site)
    out = [residual(lm.embed(chunk)).float().cpu() for chunk in tokens.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, tokens.shape[1], lm.d_model)
