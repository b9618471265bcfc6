"""Sequential exact inversion: the text whose residuals at a site best match a target, position
by position (Nikolaou et al. 2025, "Language models are injective and hence invertible").

A causal model's residual at position i depends on the tokens 0..i only. So with the tokens
before i fixed, the token at i is the vocabulary entry whose residual at i is nearest the
target's there (MSE at that position): for a target made by text, that text's token (the paper
shows the map is injective); for any other target, the best greedy text. The chosen prefix
runs once, a token at a time, into the model's own key/value cache of the truncated model
(`forward.truncated_base`: only the blocks the site needs); every candidate then costs one
token's forward over it, in chunks that halve on CUDA out-of-memory (`methods.candidate_mse`).
Learned absolute positions (GPT-2) and rotary ones get the candidate's true position;
sliding-window layers keep their own window in the cache, as in generation.

Candidates are every vocabulary entry (`top_k=None`), or the `top_k` entries ranked by the
gradient of the position's MSE with respect to the token coordinates (one forward and backward
at the vocabulary's mean embedding: no candidate is favoured by where the linearisation is
taken), each verified exactly like the exhaustive ones; with `top_k` = the vocabulary size both
choose the same tokens.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from .forward import truncated_base
from .methods import candidate_mse
from .models import LanguageModel, max_positions
from .sites import Site


@dataclass
class Inversion:
    tokens: torch.Tensor  # [B, S] indices into the vocabulary
    mse: torch.Tensor  # [B, S] each chosen token's MSE at its position; their mean is the text's MSE
    forwards: int  # single-position forwards per target: candidates tried, the cache's growth, gradients
    backwards: int  # single-position backwards per target (the gradient-ordered variant's)


def _run(view, embeds: torch.Tensor, position: int, cache):
    """The view's output [N, 1, d] for one position's input embeddings [N, 1, d] after the
    cached prefix (no cache: a site before every block, where no position sees another)."""
    ids = torch.full((1, 1), position, device=embeds.device)
    return view(inputs_embeds=embeds, position_ids=ids, cache=cache, use_cache=cache is not None).last_hidden_state


def invert(lm: LanguageModel, site: Site, targets: torch.Tensor, vocabulary: torch.Tensor | None = None,
           top_k: int | None = None, chunk: int = 8192) -> Inversion:
    """The greedy text [B, S] whose residuals at `site` match `targets` [B, S, d], position by
    position, over `vocabulary` (token embeddings [V, d]; default the whole embedding), trying
    every entry (`top_k=None`) or the `top_k` the gradient ranks first; at most `chunk`
    candidates per forward (halved on CUDA out-of-memory)."""
    if targets.ndim != 3 or targets.shape[-1] != lm.d_model or targets.shape[1] > max_positions(lm.config):
        raise ValueError(f"targets must be [B, S, {lm.d_model}] with S within the context; got {tuple(targets.shape)}")
    device, (batch, seq_len, _) = lm.device, targets.shape
    vocabulary = (lm.embedding.weight if vocabulary is None else vocabulary).to(device, torch.float32)
    targets = targets.to(device, torch.float32)
    view = truncated_base(lm, site)
    cache = None if site.layer == 0 else DynamicCache(config=view.config)  # no block: no position sees another
    count = len(vocabulary) if top_k is None else min(top_k, len(vocabulary))
    tokens = torch.empty(batch, seq_len, dtype=torch.long, device=device)
    mse = torch.empty(batch, seq_len, device=device)
    sizes, rows = [chunk], torch.arange(batch, device=device)
    for i in range(seq_len):
        def loss(embeds: torch.Tensor, which: torch.Tensor, prefix=None) -> torch.Tensor:
            """MSE at position i [N] of one token's embeddings [N, 1, d] after row `which`'s prefix
            (its own cache: candidate_mse's prefix is for candidates that change an earlier position)."""
            own = copy.deepcopy(cache)
            if own is not None:
                own.batch_select_indices(which)
            return (_run(view, embeds, i, own)[:, 0] - targets[which, i]).pow(2).mean(-1)

        options = torch.arange(count, device=device).expand(batch, count) if top_k is None else \
            _ranked(loss, vocabulary, rows, count)
        found = candidate_mse(loss, vocabulary, options[..., None], sizes)  # [B, count]
        best = found.argmin(dim=1)
        tokens[:, i], mse[:, i] = options[rows, best], found[rows, best]
        if cache is not None:
            with torch.no_grad():
                _run(view, vocabulary[tokens[:, i]][:, None], i, cache)  # the prefix grows by the chosen tokens
    gradients = 0 if top_k is None else seq_len
    return Inversion(tokens.cpu(), mse.cpu(), seq_len * (count + (cache is not None)) + gradients, gradients)


def _ranked(loss, vocabulary: torch.Tensor, rows: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` entries [B, count] (ascending ids) whose token coordinate most lowers each
    row's MSE, by the gradient at the uniform mixture of the vocabulary (its mean embedding)."""
    mixture = torch.full((len(rows), 1, len(vocabulary)), 1 / len(vocabulary), device=vocabulary.device,
                         requires_grad=True)
    (grad,) = torch.autograd.grad(loss(mixture @ vocabulary, rows).sum(), mixture)
    return (-grad[:, 0]).topk(count, dim=-1).indices.sort(dim=-1).values
