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


def assert_same_losses(actual, desired, scale, rtol: float = 1e-4) -> None:
    """Losses (MSE) of the same runs equal up to float rounding; `scale` is the targets' mean
    square (an array, a tensor or a number)."""
    floor = ROUNDING * float(np.mean(np.asarray(scale, dtype=np.float64)))
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=floor)


def mean_square(targets) -> float:
    """The mean square of target tensors (torch or NumPy)."""
    return float(np.mean(np.square(np.asarray(targets, dtype=np.float64))))
