"""KL of next-token distributions against a residual perturbation of size ε × RMS (notebook 004).

At one token of real sequences, the residual at a site is moved by ε × RMS(h) along a unit
direction, and the forward pass continues from there. Directions are isotropic (the
notebook's random unit vectors) or point toward another sequence's residual at the same site
and token (on the data manifold: the sharper baseline of the activation-plateau literature).
The notebook's score is KL(perturbed ‖ unperturbed) of the next-token distributions at that
token and the ones after it. Placing reachability errors (placement.py) needs a curve made
the way an error is: `placement_curve` moves *every* position, each by ε × its own RMS along
its own unit direction, and takes the median KL(unperturbed ‖ perturbed) over sequences,
directions and positions — the statistic the placement compares with the errors' median.

Every (sequence, direction, ε) perturbation of a site goes through a few batched forwards
that start at the site (`forward.logits_function`); logits, log-softmax and KL stay on the
device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .forward import logits_function, residuals_of_tokens
from .models import LanguageModel
from .sites import Site

DIRECTIONS = ("isotropic", "toward_real")


def unit_directions(h: torch.Tensor, kind: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """[N, n, d] unit vectors for residuals h [N, d]: random, or toward other sequences' h.

    A partner whose residual equals h (two sequences that share their first tokens) gives no
    direction: partners are drawn among the sequences whose residual differs."""
    count, d = h.shape
    if kind == "isotropic":
        v = torch.randn(count, n, d, generator=generator)
    elif kind == "toward_real":
        different = (h[:, None, :] != h[None, :, :]).any(-1)  # [N, N]; False on the diagonal
        if not different.any(-1).all():
            lonely = int(torch.nonzero(~different.any(-1))[0, 0])
            raise ValueError(f"sequence {lonely}: every other sequence has the same residual at this token, "
                             "so there is no direction toward real data; use more or other sequences")
        other = torch.stack([
            torch.nonzero(row).flatten()[torch.randint(int(row.sum()), (n,), generator=generator)] for row in different
        ])
        v = h[other] - h[:, None, :]
    else:
        raise ValueError(f"direction {kind!r} is not one of {DIRECTIONS}")
    return v / v.norm(dim=-1, keepdim=True)


def rms(h: torch.Tensor) -> torch.Tensor:
    """Root mean square over the last axis (the notebook's scale): ‖h‖ / sqrt(d)."""
    return h.pow(2).mean(-1).sqrt()


@torch.no_grad()
def perturbation_kl(
    lm: LanguageModel,
    site: Site,
    residual: torch.Tensor,
    token_index: int,
    epsilons: list[float],
    directions: torch.Tensor,
    batch_size: int = 128,
) -> dict[str, torch.Tensor]:
    """KL of the next-token distributions, [E, N, n, S - token_index] in both directions —
    'perturbed_base' = KL(perturbed ‖ base) (the notebook's) and 'base_perturbed' =
    KL(base ‖ perturbed) — for residuals [N, S, d] at `site` moved at `token_index` by
    ε × RMS along each of `directions` [N, n, d]."""
    device = lm.device
    residual = residual.to(device, torch.float32)
    count, n = directions.shape[:2]
    logits = logits_function(lm, site)
    base = torch.cat([F.log_softmax(logits(chunk, token_index), -1) for chunk in residual.split(batch_size)])
    step = rms(residual[:, token_index])[:, None, None] * directions.to(device)  # [N, n, d] at ε = 1
    shape = (len(epsilons), count, n, residual.shape[1] - token_index)
    out = {"perturbed_base": torch.zeros(shape), "base_perturbed": torch.zeros(shape)}
    cases = [(e, i, k) for e, eps in enumerate(epsilons) if eps != 0 for i in range(count) for k in range(n)]
    scales = torch.tensor(epsilons, device=device)
    for chunk in torch.tensor(cases, dtype=torch.long).reshape(-1, 3).split(batch_size):
        e, i, k = chunk.T  # on the CPU, to index `out`; their copies on the device index the rest
        de, di, dk = chunk.to(device).T
        moved = residual[di].clone()
        moved[:, token_index] += scales[de, None] * step[di, dk]
        log_p, log_base = F.log_softmax(logits(moved, token_index), -1), base[di]
        out["perturbed_base"][e, i, k] = (log_p.exp() * (log_p - log_base)).sum(-1).clamp_min(0.0).cpu()
        out["base_perturbed"][e, i, k] = (log_base.exp() * (log_base - log_p)).sum(-1).clamp_min(0.0).cpu()
    return out  # ε = 0 is the unperturbed run itself: KL 0, no forward


def kl_vs_epsilon(
    lm: LanguageModel,
    site: Site,
    tokens: torch.Tensor,
    token_index: int,
    epsilons: list[float],
    n_directions: int,
    kind: str = "isotropic",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Two curves over ε, each a mean over directions and sequences:
    'kl_after': KL(perturbed ‖ base) averaged over positions token_index..S-1 (the notebook's
    score), and 'kl_at_token': KL(base ‖ perturbed) at the perturbed token itself (what a
    reachability error at one position is compared with: KL(target ‖ achieved) there)."""
    residual = residuals_of_tokens(lm, site, tokens)  # [N, S, d]
    v = unit_directions(residual[:, token_index], kind, n_directions, torch.Generator().manual_seed(seed))
    kl = perturbation_kl(lm, site, residual, token_index, epsilons, v)
    return {"kl_after": kl["perturbed_base"].mean(dim=(1, 2, 3)).numpy(),
            "kl_at_token": kl["base_perturbed"][..., 0].mean(dim=(1, 2)).numpy()}


@torch.no_grad()
def placement_curve(lm: LanguageModel, site: Site, tokens: torch.Tensor, epsilons: list[float], n_directions: int,
                    kind: str = "isotropic", seed: int = 0, batch_size: int = 64) -> np.ndarray:
    """The median over sequences, directions and positions of KL(base ‖ perturbed) at a position,
    when every position of a sequence's residual at `site` moves by ε × its RMS along its own
    unit direction ([E], one value per ε)."""
    device = lm.device
    residual = residuals_of_tokens(lm, site, tokens)  # [N, S, d] on the CPU
    count, seq_len, _ = residual.shape
    generator = torch.Generator().manual_seed(seed)
    directions = torch.stack([unit_directions(residual[:, p], kind, n_directions, generator) for p in range(seq_len)],
                             dim=2)  # [N, n, S, d]
    residual = residual.to(device, torch.float32)
    logits = logits_function(lm, site)
    base = torch.cat([F.log_softmax(logits(chunk), -1) for chunk in residual.split(batch_size)])  # [N, S, V]
    step = rms(residual)[:, None, :, None] * directions.to(device)  # [N, n, S, d] at ε = 1
    pairs = torch.cartesian_prod(torch.arange(count), torch.arange(n_directions)).to(device)
    out = []
    for eps in epsilons:
        kl = []
        for chunk in pairs.split(batch_size):
            i, k = chunk.T
            log_p = F.log_softmax(logits(residual[i] + eps * step[i, k]), -1)
            kl.append((base[i].exp() * (base[i] - log_p)).sum(-1).clamp_min(0.0).cpu())
        out.append(float(np.median(torch.cat(kl).numpy())))  # the median the errors get (numpy's, not torch's lower one)
    return np.array(out)
