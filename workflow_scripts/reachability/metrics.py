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


def best_of_restarts(final_mse: np.ndarray, restarts: int | None = None) -> np.ndarray:
    """Each target's lowest finite final MSE ([T, R] -> [T]; NaN where all diverged), over its
    first `restarts` restarts (all by default): two sides of a comparison take the same
    restart indices, so neither gets more tries at its best."""
    final_mse = np.asarray(final_mse, dtype=float)[:, :restarts]
    best = take_best(final_mse, best_restart(final_mse))
    return np.where(np.isfinite(best), best, np.nan)


def best_over(final_mse: np.ndarray, cosine: np.ndarray, restarts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(best restart, its final MSE or NaN, its mean cosine over positions) of each target, over
    the first `restarts` restarts ([T, R] and [T, R, S] -> [T] each)."""
    index = best_restart(final_mse[:, :restarts])
    rows = np.arange(len(final_mse))
    mse, cos = final_mse[rows, index], np.nanmean(cosine[rows, index], axis=-1)
    diverged = ~np.isfinite(mse)
    return index, np.where(diverged, np.nan, mse), np.where(diverged, np.nan, cos)


def best_per_target(final_mse: np.ndarray, target_id: np.ndarray) -> dict[int, int]:
    """Target id -> the index of its run with the lowest finite final MSE (targets whose runs
    all diverged are left out)."""
    best: dict[int, int] = {}
    for i in np.flatnonzero(np.isfinite(final_mse)):
        t = int(target_id[i])
        if t not in best or final_mse[i] < final_mse[best[t]]:
            best[t] = int(i)
    return dict(sorted(best.items()))


def restart_spread(final_mse: np.ndarray) -> np.ndarray:
    """The agenda's restart variance, on the scale MSEs live on: the sample standard deviation
    (ddof 1) of log10 final MSE over each target's finite, positive restarts ([T, R] -> [T];
    NaN with fewer than two)."""
    logs = np.full(np.shape(final_mse), np.nan)
    positive = np.isfinite(final_mse) & (np.asarray(final_mse) > 0)
    logs[positive] = np.log10(np.asarray(final_mse)[positive])
    out = np.full(len(logs), np.nan)
    ok = positive.sum(axis=1) >= 2
    out[ok] = np.nanstd(logs[ok], axis=1, ddof=1)
    return out


def reached(best_final: np.ndarray, mean_square: np.ndarray, threshold: float) -> np.ndarray:
    """A target is reached when its best-of-restarts final MSE is below `threshold` × the
    target's own mean square (its relative MSE below the threshold). A property of the target,
    not of one run's start: another restart can only make it more reached, and the label does
    not drift with the initial MSE (which grows with the target's distance from what random
    prompts produce). Run by run (the plateau split), each run's final MSE against its target's."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(best_final) & (best_final < threshold * mean_square)


def plateau_improvement(loss: np.ndarray, tail: float = 0.2) -> np.ndarray:
    """Relative drop of the loss over the last `tail` of the steps ([..., steps] -> [...]).

    The loss is read as the median of each half of the tail, so a burst of high-loss steps
    (Adam spikes) shorter than a quarter of the tail, at either end, moves neither reading; the
    drop between the halves' centres is carried over the whole tail at the same log rate (on a
    steadily falling curve, exactly its fall over the tail). 0.0 means flat; 0.1 means the loss
    fell by 10 % over the tail, so more steps would still help.
    """
    steps = loss.shape[-1]
    start = min(steps - 1, int(round(steps * (1 - tail))))
    window = max(1, (steps - start) // 2)
    span, between = steps - 1 - start, steps - 1 - start - (window - 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        begin = np.median(loss[..., start:start + window], axis=-1)
        end = np.median(loss[..., steps - window:], axis=-1)
        return 1 - (end / begin) ** (span / between) if between > 0 else np.zeros_like(begin)


def plateau_verdict(loss: np.ndarray, tail: float = 0.2, tolerance: float = 0.05, fraction: float = 0.5) -> dict:
    """Have the loss curves flattened? The agenda's question, asked of every run ([runs, steps]).

    A run is still improving when its loss fell by more than `tolerance` (relative) over the
    last `tail` of the steps, reached or not; more steps are needed when more than `fraction`
    of the runs are still improving. (Only the plateau settings decide it: the step budget
    depends on nothing else.)"""
    improvement = plateau_improvement(loss, tail)
    finite = np.isfinite(improvement)
    share = float((improvement[finite] > tolerance).mean()) if finite.any() else float("nan")
    return {
        "tail_fraction": tail,
        "tolerance": tolerance,
        "fraction_threshold": fraction,
        "median_relative_improvement": float(np.median(improvement[finite])) if finite.any() else float("nan"),
        "fraction_still_improving": share,
        "needs_more_steps": bool(finite.any() and share > fraction),
    }


def plateau_check(loss: np.ndarray, reached_runs: np.ndarray, tail: float = 0.2, tolerance: float = 0.05,
                  fraction: float = 0.5) -> dict:
    """The plateau verdict, and the same share among runs not yet reached beside it
    (`fraction_still_improving_unreached`), since a reached run falling toward float
    precision is a different thing from an unreached one still on its way."""
    improvement = plateau_improvement(loss, tail)
    open_ = np.isfinite(improvement) & ~reached_runs
    return {**plateau_verdict(loss, tail, tolerance, fraction),
            "fraction_still_improving_unreached": float((improvement[open_] > tolerance).mean()) if open_.any() else None}


def final_mse(summary: dict, relative: bool = False) -> np.ndarray:
    """Every restart's final MSE [T, R] (NaN: diverged) of one condition's metrics.json entry;
    `relative`: divided by each target's mean square."""
    final = np.array(summary["per_target"]["final_mse"], dtype=float)
    if relative:
        final = final / np.array(summary["per_target"]["target_mean_square"], dtype=float)[:, None]
    return final
