"""Reachability errors on the perturbation curve, both sides on the same footing (torch-free).

A reachability error is placed per position: at position p of target t the error is
ε_tp = ‖a − t‖ / RMS(t_p), and the measured KL(target ‖ achieved) is that of position p.
The curve it is placed on (`perturbation.placement_curve`) is made the same way an error is —
every position moved at once, each by ε × its RMS, KL at each position — and summarised by
the same statistic, the median (over sequences, directions and positions; the errors' side
over targets and positions). It is measured on a log-spaced ε grid that spans the errors
(derived from them unless `perturbation.placement_epsilons` sets it) and interpolated in
log-log (the KL grows like ε² for small ε); an error outside the measured range, below or
above, is flagged as outside and not placed. Both KLs are computed in float32, which resolves
none below its spacing `RESOLUTION` (≈ 1.2e-7: a KL is a p-weighted sum of differences of
log-probabilities, each rounded at that share of its own magnitude, and most tokens' are of
magnitude one or more; on the demo model a reached target's error, ε ≈ 0.01, gives KLs of
~1e-8, 45 % of them exactly 0): a measured KL below it is flagged "below resolution" and not
placed, and the curve's own points below it are not part of the curve. What still differs,
and the table says: the error's direction is not random.
"""

from __future__ import annotations

import numpy as np

RESOLUTION = float(np.finfo(np.float32).eps)  # the smallest KL a float32 computation resolves


def epsilon_of_error(achieved: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ε a reachability error corresponds to, per position: ‖a − t‖ / RMS(t)."""
    error = np.linalg.norm(achieved - target, axis=-1)
    return error / np.sqrt((target.astype(np.float64) ** 2).mean(-1))


def grid_for(errors: list, points: int, margin: float = 1.25) -> list[float]:
    """A log-spaced ε grid spanning every finite, positive error ε (with a margin), `points` long."""
    eps = np.concatenate([np.ravel(np.asarray(e, dtype=float)) for e in errors]) if errors else np.array([])
    eps = eps[np.isfinite(eps) & (eps > 0)]
    low, high = (eps.min() / margin, eps.max() * margin) if eps.size else (1e-3, 4.0)
    return np.geomspace(low, high, points).tolist()


def predicted_kl(epsilons, curve, eps) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The KL the curve predicts at each ε (log-log interpolation), and masks of the ε below
    and above the range the curve measured, above float32's resolution (their prediction is
    NaN: not placed)."""
    grid, kl, eps = np.asarray(epsilons, dtype=float), np.asarray(curve, dtype=float), np.asarray(eps, dtype=float)
    keep = (grid > 0) & (kl >= RESOLUTION)
    grid, kl = grid[keep], kl[keep]
    order = np.argsort(grid)
    grid, kl = grid[order], kl[order]
    below, above = eps < grid[0], eps > grid[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        predicted = np.exp(np.interp(np.log(eps), np.log(grid), np.log(kl)))
    predicted[below | above] = np.nan
    return predicted, below, above


def place(epsilons, curve, eps, measured) -> dict:
    """Over the (target, position) points inside the curve's range whose measured KL float32
    resolves: the median ε, the median KL the curve predicts there and the median KL measured at
    the same points (their ratio); and the shares of points below and above the range and below
    resolution (flagged, not placed)."""
    eps, measured = np.ravel(np.asarray(eps, dtype=float)), np.ravel(np.asarray(measured, dtype=float))
    keep = np.isfinite(eps) & np.isfinite(measured) & (eps > 0)
    eps, measured = eps[keep], measured[keep]
    predicted, below, above = predicted_kl(epsilons, curve, eps)
    unresolved = measured < RESOLUTION
    inside = ~(below | above | unresolved)
    shares = {"below_range": float(below.mean()) if eps.size else None,
              "above_range": float(above.mean()) if eps.size else None,
              "below_resolution": float(unresolved.mean()) if eps.size else None,
              "resolution": RESOLUTION, "n_points": int(eps.size), "n_placed": int(inside.sum())}
    if not inside.any():
        return {"median_epsilon": float(np.median(eps)) if eps.size else None, "median_predicted_kl": None,
                "median_measured_kl": None, "ratio": None, **shares}
    p, m = float(np.median(predicted[inside])), float(np.median(measured[inside]))
    return {"median_epsilon": float(np.median(eps[inside])), "median_predicted_kl": p, "median_measured_kl": m,
            "ratio": p / m, **shares}
