import numpy as np

from reachability.metrics import (
    best_of_restarts, best_restart, plateau_check, plateau_improvement, reached, restart_variance, take_best,
)


def test_best_of_restarts_skips_diverged_runs():
    final = np.array([[3.0, 1.0, 2.0], [np.nan, 5.0, 4.0], [np.nan, np.nan, np.nan]])
    assert best_restart(final).tolist()[:2] == [1, 2]
    np.testing.assert_array_equal(best_of_restarts(final), [1.0, 4.0, np.nan])
    np.testing.assert_allclose(restart_variance(final), [np.var([3, 1, 2]), 0.25, np.nan])
    curves = np.arange(3 * 3 * 2).reshape(3, 3, 2)
    assert take_best(curves, best_restart(final))[0].tolist() == curves[0, 1].tolist()


def test_reached_is_below_one_percent_of_the_initial_mse():
    assert reached(np.array([0.009, 0.011, np.nan]), np.array([1.0, 1.0, 1.0])).tolist() == [True, False, False]
    assert reached(np.array([0.5]), np.array([100.0]), threshold=0.001).tolist() == [False]


def test_plateau_tells_flat_from_still_falling():
    steps = np.arange(100)
    flat = 1.0 / (1 + steps) + 0.5
    falling = np.exp(-steps / 20)
    improvement = plateau_improvement(np.stack([flat, falling]))
    assert improvement[0] < 0.01 and improvement[1] > 0.5
    none = np.zeros(3, dtype=bool)
    assert plateau_check(np.stack([flat, flat]), none[:2])["needs_more_steps"] is False
    summary = plateau_check(np.stack([falling, falling, flat]), none)
    assert summary["needs_more_steps"] is True and abs(summary["fraction_still_improving"] - 2 / 3) < 1e-9


def test_reached_targets_falling_toward_zero_need_no_more_steps():
    falling = np.exp(-np.arange(100) / 20)
    summary = plateau_check(np.stack([falling, falling]), np.array([True, True]))
    assert summary["fraction_still_improving"] == 1.0 and summary["needs_more_steps"] is False
