"""Forward passes that start or stop at a site: only the blocks they need.

`residual_function` runs from input embeddings to a site (a layer-6 target costs 6 blocks, no
LM head); `logits_function` continues from a residual at a site to the next-token logits
(only the blocks after the site, the final norm and the head). Both run a *view* of the
loaded base model (parameters shared, its own child-module table, its own config copy), so
the model's own code computes every block and the original model stays whole.

A residual function also continues a forward: given a `Prefix` (the keys and values of every
layer and the residual of earlier positions), it computes only the positions after it. In a
causal model a position never sees the later ones, so sequences that share their first p
tokens share everything there: GCG's candidates, each one token changed, reuse the forward of
their run's own tokens up to the change (methods.py).

Every view is given its attention mask, built once per shape by transformers' own mask
functions for the blocks' attention implementation: explicit (never the `is_causal` shortcut),
without padding or position ids (so no packed-sequence detection, which reads a value back to
the host). Left to itself, transformers decides differently while a CUDA graph is being
captured (it counts stream capture as tracing): the captured step would make another attention
call than the eager one. With the mask given, both make the same call.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable

import torch
from torch import nn
from transformers import DynamicCache, masking_utils

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
    if getattr(base.config, "layer_types", None):  # families that index layer types by block
        base.config.layer_types = list(base.config.layer_types)[first:stop]
    return base


MASKS = {"full_attention": masking_utils.create_causal_mask,
         "sliding_attention": masking_utils.create_sliding_window_causal_mask}


def attention_mask(lm: LanguageModel, config, length: int, device: torch.device):
    """The mask (or, for families whose blocks have layer types, one per type) that the model
    would build for a sequence of `length`, always explicit: the same on every path, captured or
    not. Built for batch 1 (it broadcasts), no padding, no cache, no position ids."""
    # config, inputs, padding, cache, position ids
    args = (config, torch.zeros(1, length, lm.d_model, device=device), None, None, None)
    if lm.arch.masks_by_layer_type:
        return {kind: MASKS[kind](*args, allow_is_causal_skip=False) for kind in set(config.layer_types)}
    kind = "full_attention" if getattr(config, "sliding_window", None) is None else "sliding_attention"
    return MASKS[kind](*args, allow_is_causal_skip=False)


class Prefix:
    """What a forward of B sequences leaves for its continuations: every layer's keys and values
    (the model's own cache) and the residual [B, length, d] of the positions it computed."""

    def __init__(self, cache: DynamicCache | None = None, residual: torch.Tensor | None = None) -> None:
        self.cache = DynamicCache() if cache is None else cache
        self.residual = residual

    @property
    def length(self) -> int:
        return 0 if self.residual is None else self.residual.shape[1]

    def take(self, rows: torch.Tensor, length: int) -> Prefix:
        """The first `length` positions of sequences `rows` (indices, repeats allowed), detached."""
        cache = DynamicCache()
        for i, layer in enumerate(self.cache.layers):
            cache.update(layer.keys[rows, :, :length].detach(), layer.values[rows, :, :length].detach(), i)
        return Prefix(cache, self.residual[rows, :length].detach())


def _cache_keyword(base: nn.Module) -> str:
    """The name a base model's forward gives its key/value cache (transformers renamed it)."""
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _rows_from(mask, start: int):
    """A mask's rows (each mask's, of one per layer type) for the queries from `start` on."""
    if isinstance(mask, dict):
        return {kind: _rows_from(m, start) for kind, m in mask.items()}
    return mask[..., start:, :] if start and mask is not None else mask


def masked(lm: LanguageModel, base: nn.Module) -> Callable[..., torch.Tensor]:
    """(inputs_embeds [B, n, d], prefix=None) -> the view's last hidden state [B, length + n, d]
    of the prefix's positions and these, with the mask built once per (length, device). The
    prefix, if given, grows by these positions."""
    masks: dict = {}
    keyword = _cache_keyword(base)

    def run(embeds: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        start = prefix.length if prefix is not None else 0
        key = (start + embeds.shape[1], embeds.device)
        if key not in masks:
            masks[key] = attention_mask(lm, base.config, *key)
        if prefix is None:
            return base(inputs_embeds=embeds, attention_mask=masks[key], use_cache=False).last_hidden_state
        where = {}  # with no block the cache stays empty, so the model cannot count the prefix: say where these are
        if start and not len(getattr(base, lm.arch.blocks)):
            where = {"position_ids": torch.arange(start, key[0], device=embeds.device)[None]}
        hidden = base(inputs_embeds=embeds, attention_mask=_rows_from(masks[key], start), use_cache=True,
                      **{keyword: prefix.cache}, **where).last_hidden_state
        if start:
            hidden = torch.cat([prefix.residual, hidden], dim=1)
        prefix.residual = hidden.detach()
        return hidden

    return run


def truncated_base(lm: LanguageModel, site: Site) -> nn.Module:
    """The base model up to `site`: the first site.layer blocks, and the final norm only where
    the site is after it."""
    check_site(site, lm.n_layers)
    return base_view(lm, 0, site.layer, site.ends_with_final_norm(lm.n_layers))


def _check_width(lm: LanguageModel, x: torch.Tensor, what: str, before: int = 0) -> None:
    context = max_positions(lm.config)
    if x.ndim != 3 or x.shape[-1] != lm.d_model or before + x.shape[1] > context:
        raise ValueError(
            f"{what} must be [B, S, d_model] with d_model = {lm.d_model} and S <= {context} "
            f"(the model's context); got {tuple(x.shape)}"
        )


def residual_function(lm: LanguageModel, site: Site) -> Callable[..., torch.Tensor]:
    """(embeds [B, n, d], prefix=None) -> the residual at `site` [B, S, d], through the truncated
    model: of the n positions given, or with a `Prefix` of the prefix's positions and these (only
    these computed; the prefix keeps them too, so an empty `Prefix()` records a forward).

    Prompts of the wrong width, or longer than the model's context, are refused with a
    message instead of failing deep inside the model (or silently running past its
    position encoding)."""
    run = masked(lm, truncated_base(lm, site))

    def residual(embeds: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        _check_width(lm, embeds, "prompts", prefix.length if prefix is not None else 0)
        return run(embeds, prefix)

    return residual


def followed_by(residual: Callable[..., torch.Tensor], text: torch.Tensor, scored: list[int]) -> Callable[..., torch.Tensor]:
    """A residual function of prompts [B, P, d] each followed by its run's text (input embeddings
    [B, T, d]): the residual of the whole sequence at the `scored` positions [B, K, d] (prefix
    steering: how a prefix moves the text after it). Every row is its run's: no candidates of a
    run, no continued prefix."""
    where = torch.tensor(scored, device=text.device)  # on the device once: a captured step reads no host index

    def run(embeds: torch.Tensor, prefix: Prefix | None = None) -> torch.Tensor:
        if prefix is not None or len(embeds) != len(text):
            raise ValueError(f"a prompt followed by a text takes one prompt per run ({len(text)}), without a cached "
                             f"prefix; got {len(embeds)} (a method that scores candidates run by run)")
        return residual(torch.cat([embeds, text.to(embeds)], dim=1)).index_select(1, where)

    return run


def logits_function(lm: LanguageModel, site: Site) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """(residual [B, S, d] at `site`, first) -> next-token logits [B, S - first, V] of positions
    first..S-1, computing only what follows the site: the later blocks (all positions: they
    attend to the earlier ones), the final norm, and the LM head for the positions asked."""
    check_site(site, lm.n_layers)
    after_norm = site.ends_with_final_norm(lm.n_layers)
    tail = None if after_norm else masked(lm, base_view(lm, site.layer, lm.n_layers, final_norm=True, positions=False))
    head = lm.model.get_output_embeddings()

    def logits(residual: torch.Tensor, first: int = 0) -> torch.Tensor:
        _check_width(lm, residual, "residuals")
        hidden = residual if tail is None else tail(residual)
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


@torch.no_grad()
def residuals_at(lm: LanguageModel, sites: list[Site], tokens: torch.Tensor,
                 batch_size: int = 64) -> dict[Site, torch.Tensor]:
    """Residuals at several sites of real token sequences [N, S] -> {site: [N, S, d]} on the CPU
    (float32), from one forward per chunk through the blocks up to the deepest site: Hugging Face's
    hidden states of a view without the final norm are the raw residuals after 0..L blocks, and
    the final norm of the last gives hidden_states[n_layers]."""
    for site in sites:
        check_site(site, lm.n_layers)
    view = base_view(lm, 0, max(s.layer for s in sites), final_norm=False)
    norm = getattr(lm.base, lm.arch.final_norm)
    out: dict[Site, list[torch.Tensor]] = {site: [] for site in sites}
    for chunk in tokens.split(batch_size):
        embeds = lm.embed(chunk)
        mask = attention_mask(lm, view.config, chunk.shape[1], embeds.device)
        hidden = view(inputs_embeds=embeds, attention_mask=mask, use_cache=False,
                      output_hidden_states=True).hidden_states
        for site in sites:
            h = hidden[site.layer]
            out[site].append((norm(h) if site.ends_with_final_norm(lm.n_layers) else h).float().cpu())
    empty = torch.empty(0, tokens.shape[1], lm.d_model)
    return {site: torch.cat(parts) if parts else empty for site, parts in out.items()}
