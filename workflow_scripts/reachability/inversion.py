"""Sequential exact inversion outside a study: the greedy text whose residuals at a site best
match a target, position by position (Nikolaou et al. 2025, "Language models are injective and
hence invertible"). The search is the engine's method `methods.Inversion` (one step per
position, every candidate on the run's cached prefix); this runs it on any targets and says
what each position cost.

Learned absolute positions (GPT-2) and rotary ones get the candidate's true position;
sliding-window layers keep their own window in the cache, as in generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .forward import residual_function
from .methods import Inversion
from .models import LanguageModel, max_positions
from .optimize import optimize_batch
from .sites import Site


@dataclass
class Inverted:
    tokens: torch.Tensor  # [B, S] indices into the vocabulary
    mse: torch.Tensor  # [B, S] each chosen token's MSE at its position; their mean is the text's MSE
    forwards: int  # single-position forwards per target: candidates tried, the prefix's growth, gradients
    backwards: int  # single-position backwards per target (the gradient-ordered variant's)


def invert(lm: LanguageModel, site: Site, targets: torch.Tensor, vocabulary: torch.Tensor | None = None,
           top_k: int | None = None, chunk: int = 8192) -> Inverted:
    """The greedy text [B, S] whose residuals at `site` match `targets` [B, S, d], over
    `vocabulary` (token embeddings [V, d]; default the whole embedding), trying every entry
    (`top_k=None`) or the `top_k` the gradient ranks first; at most `chunk` candidates per forward
    (halved on CUDA out-of-memory)."""
    if targets.ndim != 3 or targets.shape[-1] != lm.d_model or targets.shape[1] > max_positions(lm.config):
        raise ValueError(f"targets must be [B, S, {lm.d_model}] with S within the context; got {tuple(targets.shape)}")
    method = Inversion(lm.embedding.weight.detach() if vocabulary is None else vocabulary, top_k, chunk)
    batch, seq_len = targets.shape[:2]
    result = optimize_batch(residual_function(lm, site), targets.to(lm.device, torch.float32),
                            method.start([None] * batch, seq_len, lm.d_model), method, seq_len)
    prefix_mse = torch.from_numpy(result.loss) * torch.arange(1, seq_len + 1)  # the chosen prefixes' summed MSE
    mse = torch.diff(prefix_mse, dim=1, prepend=torch.zeros(batch, 1))  # each position's own
    backwards = 0 if top_k is None else seq_len
    return Inverted(torch.from_numpy(result.tokens), mse, int(result.forwards[0]), backwards)
