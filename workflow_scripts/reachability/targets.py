"""Targets built from real residuals at one site, each deterministic in its id.

  real                  the residual of pool sequence t (Exp 1, the ablation, hard prompts)
  distribution-matched  position i drawn from N(mu_i, Sigma_i) of the pool (Exp 2a)
  isotropic             randn(S, d), each position rescaled to the pool's typical norm (Exp 2b)
  interpolated          alpha * A + (1 - alpha) * B for pair p = (real 2p, real 2p + 1) (Exp 3)
  replaced              real target t with a fraction f of the d dimensions (the same at every
                        position) replaced by N(0, sigma_dim); the dimensions for f are the first
                        round(f d) of one permutation per target, so they nest as f grows (Exp 4)
  principal-replaced    real target t with its projections on the pool's top round(f d) principal
                        directions (PCA of every position's residuals pooled) replaced by draws
                        from each direction's own mean and std (the research log's Exp 5)
  steered               real target t moved by ε × RMS along a direction at chosen positions
  prefixed              the residual of pool sequence t's text after another sequence's prefix (a
                        forward of that composed text), moved by ε × RMS at the scored positions
Which experiment uses which is the experiment registry's (experiments.py).
"""

from __future__ import annotations

import numpy as np

from .seeds import numpy_rng

def position_statistics(residuals: np.ndarray) -> dict[str, np.ndarray]:
    """Per-position mean [S, d], covariance square root [S, d, d] (A with A Aᵀ = Σ),
    typical (mean) L2 norm [S], and each dimension's std over all positions [d].

    The square root comes from an eigendecomposition, so rank-deficient covariances (a
    final LayerNorm output lies in a hyperplane) are handled without jitter.
    """
    n, seq_len, d = residuals.shape
    if n < 2:
        raise ValueError(f"position statistics need at least 2 sequences, got {n}")
    x = residuals.astype(np.float64)
    mean = x.mean(axis=0)
    sqrt_cov = np.empty((seq_len, d, d))
    for i in range(seq_len):
        values, vectors = np.linalg.eigh(np.cov(x[:, i, :], rowvar=False))
        sqrt_cov[i] = vectors * np.sqrt(np.clip(values, 0.0, None))
    return {
        "mean": mean.astype(np.float32),
        "sqrt_cov": sqrt_cov.astype(np.float32),
        "typical_norm": np.linalg.norm(x, axis=-1).mean(axis=0).astype(np.float32),
        "dim_std": x.reshape(-1, d).std(axis=0).astype(np.float32),
    }


def distribution_matched(mean: np.ndarray, sqrt_cov: np.ndarray, target_id: int) -> np.ndarray:
    """Exp 2a: position i ~ N(mean_i, Σ_i)."""
    z = numpy_rng("experiment2a", target_id).standard_normal(mean.shape)
    return (mean + np.einsum("sij,sj->si", sqrt_cov.astype(np.float64), z)).astype(np.float32)


def isotropic(typical_norm: np.ndarray, d_model: int, target_id: int) -> np.ndarray:
    """Exp 2b: randn(S, d) with each position's norm set to the typical real norm."""
    z = numpy_rng("experiment2b", target_id).standard_normal((len(typical_norm), d_model))
    return (z / np.linalg.norm(z, axis=-1, keepdims=True) * typical_norm[:, None]).astype(np.float32)


def interpolate(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """Exp 3: alpha A + (1 - alpha) B."""
    return (alpha * a.astype(np.float64) + (1 - alpha) * b.astype(np.float64)).astype(np.float32)


def pair_of(pair_id: int) -> tuple[int, int]:
    """Exp 3's pair p uses real targets (2p, 2p + 1): fixed, disjoint, stable as studies grow."""
    return 2 * pair_id, 2 * pair_id + 1


def replace_dimensions(target: np.ndarray, fraction: float, dim_std: np.ndarray, target_id: int) -> np.ndarray:
    """Exp 4: the same round(fraction·d) dimensions at every position set to N(0, σ_dim)."""
    seq_len, d = target.shape
    rng = numpy_rng("experiment4", target_id)
    dims = rng.permutation(d)[: int(round(fraction * d))]
    noise = rng.standard_normal((seq_len, d)) * dim_std
    out = target.copy()
    out[:, dims] = noise[:, dims]
    return out.astype(np.float32)


def principal_statistics(residuals: np.ndarray) -> dict[str, np.ndarray]:
    """PCA of every position's residuals pooled ([N, S, d] -> N·S vectors): the principal
    directions [d, d] (rows, by decreasing variance) and the mean and standard deviation of
    the pool's projections on each [d] (the std is the square root of its eigenvalue)."""
    x = residuals.reshape(-1, residuals.shape[-1]).astype(np.float64)
    if len(x) < 2:
        raise ValueError(f"principal statistics need at least 2 residual vectors, got {len(x)}")
    values, vectors = np.linalg.eigh(np.cov(x, rowvar=False))
    order = np.argsort(values)[::-1]
    directions = vectors[:, order].T
    return {"directions": directions, "projection_mean": directions @ x.mean(axis=0),
            "projection_std": np.sqrt(np.clip(values[order], 0.0, None))}


def replace_principal(target: np.ndarray, fraction: float, stats: dict, target_id: int) -> np.ndarray:
    """The research log's Exp 5: the target's projections on the top round(fraction·d)
    principal directions, at every position, replaced by N(mean, std) of the pool's projections
    on each; the rest of the target kept. One draw [S, d] per target whatever f, so the
    replaced directions and their values nest as f grows."""
    seq_len, d = target.shape
    k = int(round(fraction * d))
    top = stats["directions"][:k]
    z = numpy_rng("principal", target_id).standard_normal((seq_len, d))
    draws = stats["projection_mean"] + stats["projection_std"] * z
    x = target.astype(np.float64)
    return (x + (draws[:, :k] - x @ top.T) @ top).astype(np.float32)


# One builder per kind of target, as the experiment registry names them:
# (the experiment's settings, condition, target ids, the pool's residuals [N, S, d], their statistics) ->
# targets [S, d] each.


def real(spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> list[np.ndarray]:
    """Exp 1 (and the ablation, the hard prompts): target t is pool sequence t's residual."""
    return [residuals[t] for t in ids]


def distribution_matched_targets(spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> list[np.ndarray]:
    return [distribution_matched(stats["mean"], stats["sqrt_cov"], t) for t in ids]


def isotropic_targets(spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> list[np.ndarray]:
    return [isotropic(stats["typical_norm"], residuals.shape[-1], t) for t in ids]


def interpolated(spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> list[np.ndarray]:
    """Exp 3: pair p at α = float(condition[1:])."""
    alpha = float(condition[1:])
    return [interpolate(residuals[a], residuals[b], alpha) for a, b in map(pair_of, ids)]


def replaced(spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> list[np.ndarray]:
    """Exp 4: target t with the fraction f = float(condition[1:]) of its dimensions replaced."""
    f = float(condition[1:])
    return [replace_dimensions(residuals[t], f, stats["dim_std"], t) for t in ids]


def steering_direction(path: str, d_model: int) -> np.ndarray:
    """A supplied steering vector (.npy, or .pt holding a tensor or a dict of one) as a unit
    vector [d_model]; anything else refused, naming the key, the file and the fix."""
    key = f"experiments.steering.direction = {path}"
    if not str(path).endswith((".npy", ".pt")):
        raise ValueError(f"{key}: a steering vector is a .npy file (numpy.save) or a .pt file (torch.save)")
    try:
        if str(path).endswith(".pt"):
            import torch

            vector = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(vector, dict) and len(vector) == 1:  # a state dict of one tensor
                vector = next(iter(vector.values()))
            if not isinstance(vector, torch.Tensor):
                raise ValueError(f"holds a {type(vector).__name__}, not a tensor: save the vector itself "
                                 f"(torch.save(v, path)) or a dict of one tensor")
            vector = vector.detach().double().numpy()
        else:
            vector = np.load(path, allow_pickle=False).astype(np.float64)
    except ValueError as error:
        raise ValueError(f"{key} {error}") from None
    except Exception as error:  # a truncated or foreign file: numpy's and torch's own words, with ours
        raise ValueError(f"{key} cannot be read ({type(error).__name__}: {str(error).splitlines()[0]}): save it "
                         f"again with numpy.save or torch.save") from None
    vector = vector.reshape(-1)
    if vector.shape != (d_model,):
        raise ValueError(f"{key} holds {vector.size} values, the site has d_model = {d_model}: save one vector of "
                         f"the site's width")
    if not np.isfinite(vector).all() or not np.any(vector):
        raise ValueError(f"{key} holds a NaN, an infinity or only zeros: a direction needs finite values, not all 0")
    return vector / np.linalg.norm(vector)


def steer(target: np.ndarray, epsilon: float, direction: np.ndarray, positions: list[int]) -> np.ndarray:
    """A target moved by ε × RMS along a unit direction at `positions` (each position by its own
    RMS, ‖h‖/√d: notebook 004's perturbation of size ε · RMS)."""
    x = target.astype(np.float64)
    rows = list(positions) or list(range(len(x)))
    scale = np.sqrt((x[rows] ** 2).mean(axis=-1, keepdims=True))
    x[rows] += epsilon * scale * direction
    return x.astype(np.float32)


def steered(spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> list[np.ndarray]:
    """Steering: Exp 1's target t moved by ε = float(condition[1:]) along the supplied direction,
    or along a random unit direction of its own (the same at every ε, so ε nests)."""
    epsilon, d = float(condition[1:]), residuals.shape[-1]
    supplied = steering_direction(spec["direction"], d) if spec["direction"] else None
    out = []
    for t in ids:
        u = supplied if supplied is not None else numpy_rng("steering", t).standard_normal(d)
        out.append(steer(residuals[t], epsilon, u / np.linalg.norm(u), spec["positions"]))
    return out


def replaced_principal(spec: dict, condition: str, ids: list[int], residuals: np.ndarray,
                       stats: dict) -> list[np.ndarray]:
    """Exp 4p (the research log's Exp 5): target t with its projections on the top f of the
    pool's principal directions replaced (PCA of every position of every pool sequence)."""
    if "principal" not in stats:  # once per job: every f of the pack shares the pool's PCA
        stats["principal"] = principal_statistics(residuals)
    return [replace_principal(residuals[t], float(condition[1:]), stats["principal"], t) for t in ids]


def prefix_layout(spec: dict, seq_len: int) -> tuple[int, list[int]]:
    """Prefix steering's prompt length P and the positions it is scored on: the text's (P..S-1),
    or the chosen ones."""
    prefix = spec["prefix_length"]
    return prefix, list(spec["positions"]) or list(range(prefix, seq_len))


def check_prefix(spec: dict, config: dict) -> None:
    """Prefix steering's settings against the study's: a text left after the prefix, scored
    positions inside it, methods that score whole runs (ValueError naming the key and the fix)."""
    prefix, seq_len = spec["prefix_length"], config["seq_len"]
    if prefix >= seq_len:
        raise ValueError(f"prefix_length = {prefix} leaves no text of seq_len = {seq_len} after the prompt: lower it")
    early = [p for p in spec["positions"] if p < prefix]
    if early:
        raise ValueError(f"positions holds {early[0]}, inside the prompt (0..{prefix - 1}): the text that follows it "
                         f"is at {prefix}..{seq_len - 1}")
    per_candidate = sorted(set(spec["methods"]) & {"gcg", "inversion"})
    if per_candidate:
        raise ValueError(f"methods holds {per_candidate}: these score candidate tokens run by run, which a text after "
                         f"the prompt does not support yet; use soft, norm_ball, mixture or pez")


def composed_texts(tokens: np.ndarray, ids: list[int], prefix: int) -> np.ndarray:
    """Prefix steering's source texts [n, S]: the first `prefix` tokens of pool sequence t + 1
    (another real prefix; the pool wraps around) before the rest of sequence t."""
    ids = np.asarray(ids)
    return np.concatenate([tokens[(ids + 1) % len(tokens), :prefix], tokens[ids, prefix:]], axis=1)


def prefixed(spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> list[np.ndarray]:
    """Prefix steering: target t is the residual of pool sequence t's text after another real
    prefix (`composed_texts`; `stats["residuals_of"]` runs the model on token ids), and at
    ε = float(condition[1:]) > 0 that moved by ε × RMS along a random unit direction of its own
    (the same at every ε) at the scored positions. Every position is kept; the prompt is scored
    on the text's (prefix_layout)."""
    epsilon, d = float(condition[1:]), residuals.shape[-1]
    prefix, scored = prefix_layout(spec, residuals.shape[1])
    real = stats["residuals_of"](composed_texts(stats["tokens"], ids, prefix))
    out = []
    for t, target in zip(ids, real):
        u = numpy_rng("prefix", t).standard_normal(d)
        out.append(steer(target, epsilon, u / np.linalg.norm(u), scored))
    return out
