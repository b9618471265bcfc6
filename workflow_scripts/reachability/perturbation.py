"""How much does a residual perturbation of size ε·RMS change the predictions (notebook 004)?

At one token of real sequences, the residual at a site is moved by ε × RMS(h) along a unit
direction: either isotropic random (the notebook), or toward another real activation at the
same site and token (the sharper baseline of the activation-plateau literature). The score is
KL(perturbed ‖ unperturbed) of the next-token distributions at that token and the ones after
it, averaged over positions, directions and sequences.
"""

from __future__ import annotations

import numpy as np
import torch

from .forward import residuals_of_tokens
from .functional import kl_divergence, logits_from_site
from .models import LanguageModel
from .sites import Site

DIRECTIONS = ("isotropic", "toward_real")


def unit_directions(h: torch.Tensor, kind: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """[N, n, d] unit vectors for residuals h [N, d]: random, or toward other sequences' h."""
    count, d = h.shape
    if kind == "isotropic":
        v = torch.randn(count, n, d, generator=generator)
    elif kind == "toward_real":
        offsets = torch.randint(1, count, (count, n), generator=generator)
        other = (torch.arange(count)[:, None] + offsets) % count  # never the sequence itself
        v = h[other] - h[:, None, :]
    else:
        raise ValueError(f"direction {kind!r} is not one of {DIRECTIONS}")
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def rms(h: torch.Tensor) -> torch.Tensor:
    """Root mean square over the last axis (the notebook's scale): ‖h‖ / sqrt(d)."""
    return h.pow(2).mean(-1).sqrt()


def kl_vs_epsilon(
    lm: LanguageModel,
    site: Site,
    tokens: torch.Tensor,
    token_index: int,
    epsilons: list[float],
    n_directions: int,
    kind: str = "isotropic",
    seed: int = 0,
) -> np.ndarray:
    """Mean KL(perturbed ‖ base) for each ε ([len(epsilons)]), over positions token_index..S-1,
    directions and sequences."""
    residual = residuals_of_tokens(lm, site, tokens)  # [N, S, d]
    base = logits_from_site(lm, site, residual)[:, token_index:]
    h = residual[:, token_index]
    v = unit_directions(h, kind, n_directions, torch.Generator().manual_seed(seed))
    scale = rms(h)[:, None, None]
    out = []
    for eps in epsilons:
        if eps == 0:  # the unperturbed run itself: KL 0 by definition, no forward needed
            out.append(0.0)
            continue
        kls = []
        for k in range(n_directions):
            moved = residual.clone()
            moved[:, token_index] += eps * scale[:, 0] * v[:, k]
            logits = logits_from_site(lm, site, moved)[:, token_index:]
            kls.append(kl_divergence(logits, base).mean())
        out.append(float(torch.stack(kls).mean()))
    return np.array(out)


def epsilon_of_error(achieved: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ε a reachability error corresponds to, per position: ‖a − t‖ / RMS(t)."""
    error = np.linalg.norm(achieved - target, axis=-1)
    return error / np.sqrt((target.astype(np.float64) ** 2).mean(-1))


def predicted_kl(epsilons: list[float], kl: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """KL the perturbation curve predicts at `eps` (linear interpolation, clamped at the ends)."""
    order = np.argsort(epsilons)
    return np.interp(eps, np.asarray(epsilons)[order], np.asarray(kl)[order])
