"""What "the same run" promises, stated once for every test that compares two runs.

A run alone and the same run inside a batch (or captured, continued, split by an OOM, on
another job) choose the same tokens exactly and reach the same losses up to float rounding:
relatively (`rtol`) where a loss is measurable, and absolutely below `ROUNDING` × the target's
mean square, so that a loss the kernels of one batch size round to exactly 0 and another's to
1e-14 are equal. A relative tolerance alone cannot compare anything with an exact zero.
"""

from __future__ import annotations

import numpy as np

ROUNDING = 1e-9  # a loss this small against the target's mean square is float rounding of zero


def host(values) -> np.ndarray:
    """float64 values on the host, from NumPy, a number or a torch tensor on any device."""
    return np.asarray(values.detach().double().cpu() if hasattr(values, "detach") else values, dtype=np.float64)


def assert_same_losses(actual, desired, scale, rtol: float = 1e-4) -> None:
    """Losses (MSE) of the same runs equal up to float rounding; `scale` is the targets' mean
    square (an array, a tensor or a number)."""
    floor = ROUNDING * float(np.mean(host(scale)))
    np.testing.assert_allclose(host(actual), host(desired), rtol=rtol, atol=floor)


def mean_square(targets) -> float:
    """The mean square of target tensors (torch on any device, or NumPy)."""
    return float(np.mean(np.square(host(targets))))
