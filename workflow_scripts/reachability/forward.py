"""Forward passes that start or stop at a site: only the blocks they need.

`residual_function` runs from input embeddings to a site (a layer-6 target costs 6 blocks, no
LM head); `logits_function` continues from a residual at a site to the next-token logits
(only the blocks after the site, the final norm and the head). Both run a *view* of the
loaded base model (parameters shared, its own child-module table, its own config copy), so
the model's own code computes every block and the original model stays whole.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from .models import LanguageModel, max_positions
from .sites import Site, check_site


class ZeroPositions(nn.Module):
    """Learned absolute positions that add nothing: a residual already holds its positions."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model

    def forward(self, position_ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*position_ids.shape, self.d_model, device=position_ids.device)


def base_view(lm: LanguageModel, first: int, stop: int, final_norm: bool, positions: bool = True) -> nn.Module:
    """The base model running only blocks[first:stop] (then the final norm if `final_norm`;
    learned positions added to the input only if `positions`)."""
    base = copy.copy(lm.base)
    base._modules = dict(base._modules)
    setattr(base, lm.arch.blocks, nn.ModuleList(list(lm.blocks)[first:stop]))
    if not final_norm:
        setattr(base, lm.arch.final_norm, nn.Identity())
    if not positions and lm.arch.positions:
        setattr(base, lm.arch.positions, ZeroPositions(lm.d_model))
    base.config = copy.copy(base.config)
    base.config.num_hidden_layers = stop - first
    return base


def truncated_base(lm: LanguageModel, site: Site) -> nn.Module:
    """The base model up to `site`: the first site.layer blocks, and the final norm only where
    the site is after it."""
    check_site(site, lm.n_layers)
    return base_view(lm, 0, site.layer, site.ends_with_final_norm(lm.n_layers))


def _check_width(lm: LanguageModel, x: torch.Tensor, what: str) -> None:
    context = max_positions(lm.config)
    if x.ndim != 3 or x.shape[-1] != lm.d_model or x.shape[1] > context:
        raise ValueError(
            f"{what} must be [B, S, d_model] with d_model = {lm.d_model} and S <= {context} "
            f"(the model's context); got {tuple(x.shape)}"
        )


def residual_function(lm: LanguageModel, site: Site) -> Callable[[torch.Tensor], torch.Tensor]:
    """embeds [B, S, d] -> the residual at `site` [B, S, d], through the truncated model.

    Prompts of the wrong width, or longer than the model's context, are refused with a
    message instead of failing deep inside the model (or silently running past its
    position encoding)."""
    base = truncated_base(lm, site)

    def residual(embeds: torch.Tensor) -> torch.Tensor:
        _check_width(lm, embeds, "prompts")
        return base(inputs_embeds=embeds, use_cache=False).last_hidden_state

    return residual


def logits_function(lm: LanguageModel, site: Site) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """(residual [B, S, d] at `site`, first) -> next-token logits [B, S - first, V] of positions
    first..S-1, computing only what follows the site: the later blocks (all positions: they
    attend to the earlier ones), the final norm, and the LM head for the positions asked."""
    check_site(site, lm.n_layers)
    after_norm = site.ends_with_final_norm(lm.n_layers)
    tail = None if after_norm else base_view(lm, site.layer, lm.n_layers, final_norm=True, positions=False)
    head = lm.model.get_output_embeddings()

    def logits(residual: torch.Tensor, first: int = 0) -> torch.Tensor:
        _check_width(lm, residual, "residuals")
        hidden = residual if tail is None else tail(inputs_embeds=residual, use_cache=False).last_hidden_state
        return head(hidden[:, first:]).float()

    return logits


@torch.no_grad()
def residuals_of_tokens(
    lm: LanguageModel, site: Site, tokens: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """Residuals at `site` of real token sequences [N, S] -> [N, S, d] on the CPU (float32)."""
    residual = residual_function(lm, site)
    out = [residual(lm.embed(chunk)).float().cpu() for chunk in tokens.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, tokens.shape[1], lm.d_model)
