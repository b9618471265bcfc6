"""The promise of "the same run" (equality.py): exact zeros and rounding agree, real differences do not."""

import numpy as np
import pytest

from equality import assert_same_losses, mean_square


def test_an_exact_zero_equals_the_rounding_of_zero_at_the_targets_scale():
    # the failure seen on another CPU: alone 0.0, inside a batch 1.6e-14, targets of mean square ~1
    assert_same_losses([0.0, 0.5], [1.6e-14, 0.5], scale=1.0)
    assert_same_losses([0.0], [1.6e-10], scale=1e3)  # the floor follows the target's scale


def test_real_differences_are_not_rounding():
    with pytest.raises(AssertionError):
        assert_same_losses([1e-3], [2e-3], scale=1.0)  # a loss twice another's
    with pytest.raises(AssertionError):
        assert_same_losses([0.0], [1e-6], scale=1.0)  # far above rounding of zero
    with pytest.raises(AssertionError):
        assert_same_losses([0.0], [1.6e-14], scale=1e-6)  # tiny targets: tiny floor


def test_mean_square_of_targets():
    assert mean_square(np.full((2, 3), 2.0)) == 4.0


def test_the_tests_import_this_checkouts_library():
    """A clone tests itself, whatever `reachability` is installed (pytest's `pythonpath`)."""
    from pathlib import Path

    import reachability

    here = Path(__file__).resolve().parents[1] / "workflow_scripts" / "reachability"
    assert Path(reachability.__file__).resolve().parent == here
