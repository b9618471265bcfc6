"""How close the runs got: best of restarts, spread, reached fraction, plateau verdict.

Arrays are [targets, restarts] (or [targets, restarts, steps] for loss curves). A diverged
run carries NaN: it never counts as a best, and a target all of whose restarts diverged has a
NaN best and counts as not reached.
"""

from __future__ import annotations

import numpy as np


def best_restart(final_mse: np.ndarray) -> np.ndarray:
    """Index of each target's best finite restart ([T, R] -> [T]; 0 where all diverged)."""
    filled = np.where(np.isfinite(final_mse), final_mse, np.inf)
    return filled.argmin(axis=1)


def take_best(values: np.ndarray, best: np.ndarray) -> np.ndarray:
    """values[t, best[t], ...] for every target t."""
    return values[np.arange(len(best)), best]


def best_of_restarts(final_mse: np.ndarray) -> np.ndarray:
    """Each target's lowest finite final MSE ([T, R] -> [T]; NaN where all diverged)."""
    best = take_best(final_mse, best_restart(final_mse))
    return np.where(np.isfinite(best), best, np.nan)


def best_per_target(final_mse: np.ndarray, target_id: np.ndarray) -> dict[int, int]:
    """Target id -> the index of its run with the lowest finite final MSE (targets whose runs
    all diverged are left out)."""
    best: dict[int, int] = {}
    for i in np.flatnonzero(np.isfinite(final_mse)):
        t = int(target_id[i])
        if t not in best or final_mse[i] < final_mse[best[t]]:
            best[t] = int(i)
    return dict(sorted(best.items()))


def restart_variance(final_mse: np.ndarray) -> np.ndarray:
    """Variance of the final MSE over each target's finite restarts ([T, R] -> [T])."""
    finite = np.where(np.isfinite(final_mse), final_mse, np.nan)
    counts = np.isfinite(finite).sum(axis=1)
    out = np.full(len(final_mse), np.nan)
    ok = counts > 0
    out[ok] = np.nanvar(finite[ok], axis=1)
    return out


def reached(best_final: np.ndarray, best_initial: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    """A target is reached when its best run's final MSE is below `threshold` × that run's
    initial MSE (the agenda's suggestion: 1 %)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(best_final) & (best_final < threshold * best_initial)


def plateau_improvement(loss: np.ndarray, tail: float = 0.2) -> np.ndarray:
    """Relative drop of the loss over the last `tail` of the steps ([..., steps] -> [...]).

    0.0 means flat; 0.1 means the loss fell by 10 % in that stretch, so more steps would
    still help.
    """
    steps = loss.shape[-1]
    start = min(steps - 1, int(round(steps * (1 - tail))))
    begin, end = loss[..., start], loss[..., -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (begin - end) / begin


def plateau_check(loss: np.ndarray, reached_runs: np.ndarray, tail: float = 0.2, tolerance: float = 0.05,
                  fraction: float = 0.5) -> dict:
    """Have the loss curves flattened? The agenda's question, asked of every run ([runs, steps]).

    A run is still improving when its loss fell by more than `tolerance` (relative) over the
    last `tail` of the steps, reached or not; more steps are needed when more than `fraction`
    of the runs are still improving. The same share among runs not yet reached is reported
    beside it (`fraction_still_improving_unreached`), since a reached run falling toward float
    precision is a different thing from an unreached one still on its way."""
    improvement = plateau_improvement(loss, tail)
    finite = np.isfinite(improvement)
    still = improvement[finite] > tolerance
    open_ = finite & ~reached_runs
    share = float(still.mean()) if finite.any() else float("nan")
    return {
        "tail_fraction": tail,
        "tolerance": tolerance,
        "fraction_threshold": fraction,
        "median_relative_improvement": float(np.median(improvement[finite])) if finite.any() else float("nan"),
        "fraction_still_improving": share,
        "fraction_still_improving_unreached": float((improvement[open_] > tolerance).mean()) if open_.any() else None,
        "needs_more_steps": bool(finite.any() and share > fraction),
    }
