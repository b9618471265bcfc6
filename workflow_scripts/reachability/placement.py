"""Reachability errors on the perturbation curve, both sides on the same footing (torch-free).

The curve (perturbation.py) gives, per ε, the mean KL(unperturbed ‖ perturbed) of the
next-token distribution *at one token* whose residual was moved by ε × RMS. A reachability
error is placed per position: at position p of target t the error is ε_tp = ‖a − t‖ / RMS(t)
and the measured KL(target ‖ achieved) is that of position p. So both sides are one position's
KL, in the same direction, at the same ε. They still differ in two ways the table states: the
achieved residual is wrong at every position (earlier positions can move position p's
prediction through the blocks after the site; at the last layer they cannot), and its error
is not a random direction.
"""

from __future__ import annotations

import numpy as np


def epsilon_of_error(achieved: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The ε a reachability error corresponds to, per position: ‖a − t‖ / RMS(t)."""
    error = np.linalg.norm(achieved - target, axis=-1)
    return error / np.sqrt((target.astype(np.float64) ** 2).mean(-1))


def predicted_kl(epsilons: list[float], kl: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """KL the curve predicts at `eps` (linear interpolation, clamped at the ends)."""
    order = np.argsort(epsilons)
    return np.interp(eps, np.asarray(epsilons)[order], np.asarray(kl)[order])


def place(epsilons: list[float], curve: np.ndarray, eps: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    """Medians over (target, position) of ε, of the KL the curve predicts at each ε, and of the
    measured KL; the share of ε beyond the curve's range (there the prediction is clamped)."""
    eps, measured = np.asarray(eps, dtype=float), np.asarray(measured, dtype=float)
    keep = np.isfinite(eps) & np.isfinite(measured)
    predicted = predicted_kl(epsilons, curve, eps[keep])
    return {
        "median_epsilon": float(np.median(eps[keep])),
        "median_predicted_kl": float(np.median(predicted)),
        "median_measured_kl": float(np.median(measured[keep])),
        "beyond_curve": float(np.mean(eps[keep] > max(epsilons))),
    }
