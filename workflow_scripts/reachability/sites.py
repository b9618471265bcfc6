"""Which residual tensor a target is, and a forward pass that stops there.

Two sites (design notes §4):
  hidden_states L   what Hugging Face returns as `hidden_states[L]`: the input embedding for
                    L = 0, the raw residual after L blocks for 0 < L < n_layers, and for
                    L = n_layers the output of the *final norm* (the agenda's "layer 12").
  block_output L    the raw residual stream after block L (1-based), never normed.
They differ only at L = n_layers. The truncated forward runs the first L blocks and no LM
head, so a layer-6 target costs 6 blocks.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .models import LanguageModel

SITE_KINDS = ("hidden_states", "block_output")


class SiteError(ValueError):
    """A site the model does not have."""


@dataclass(frozen=True)
class Site:
    kind: str
    layer: int

    def __str__(self) -> str:
        return f"{self.kind}[{self.layer}]"

    @property
    def tag(self) -> str:
        """Short file-name-safe form: hs12, block12."""
        return f"{'hs' if self.kind == 'hidden_states' else 'block'}{self.layer}"

    def ends_with_final_norm(self, n_layers: int) -> bool:
        return self.kind == "hidden_states" and self.layer == n_layers


def check_site(site: Site, n_layers: int) -> None:
    """Raise SiteError unless the model with `n_layers` blocks has `site`."""
    if site.kind not in SITE_KINDS:
        raise SiteError(f"site.kind {site.kind!r} is not one of {SITE_KINDS}")
    low = 0 if site.kind == "hidden_states" else 1
    if not low <= site.layer <= n_layers:
        raise SiteError(
            f"site.layer {site.layer} is out of range for {site.kind} of a model with "
            f"{n_layers} blocks: choose {low}..{n_layers}"
        )


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
    """embeds [B, S, d] -> the residual at `site` [B, S, d], through the truncated model."""
    base = truncated_base(lm, site)

    def residual(embeds: torch.Tensor) -> torch.Tensor:
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
