"""The interpretation guide's statistics, against scipy on inputs whose answer is known."""

import numpy as np
import pytest
from scipy import stats

from reachability import findings as F

SETTINGS = dict(confidence=0.95, alpha=0.05, much_ratio=10.0, similar_ratio=2.0, sharp_width=0.05,
                bootstrap_resamples=400, seed=0, min_rise_decades=0.5)


def lognormal(center, n=60, seed=0):
    return 10 ** np.random.default_rng(seed).normal(center, 0.2, n)


def test_a_hundredfold_gap_is_much_worse_and_not_similar():
    x, y = lognormal(-3), lognormal(-1, seed=1)  # medians 1e-3 and 1e-1
    worse = F.much_worse("2b much worse than 2a", x, y, ("2a", "2b"), False, SETTINGS)
    assert worse.verdict == F.HOLDS and worse.low < 100 < worse.high
    assert worse.p == pytest.approx(stats.mannwhitneyu(y, x, alternative="greater").pvalue)
    assert worse.estimate == pytest.approx(np.median(y) / np.median(x))
    assert F.similar("2b ≈ 2a", x, y, ("2a", "2b"), False, SETTINGS).verdict == F.FAILS


def test_the_same_distribution_is_similar_and_not_much_worse():
    x, y = lognormal(-3), lognormal(-3, seed=1)
    same = F.similar("2a ≈ 1", x, y, ("1", "2a"), False, SETTINGS)
    assert same.verdict == F.HOLDS and 0.5 < same.low <= same.estimate <= same.high < 2
    assert same.p == pytest.approx(stats.mannwhitneyu(y, x, alternative="two-sided").pvalue)
    assert F.much_worse("much worse", x, y, ("1", "2a"), False, SETTINGS).verdict == F.FAILS


def test_a_gap_near_the_threshold_is_inconclusive():
    x, y = lognormal(-3, n=12), lognormal(-2, n=12, seed=1)  # 10x: the interval straddles 10
    assert F.much_worse("much worse", x, y, ("x", "y"), False, SETTINGS).verdict == F.OPEN


def test_paired_comparisons_use_the_wilcoxon_test_on_log_mse():
    x = lognormal(-3, n=30)
    y = x * 10 ** np.random.default_rng(2).normal(1.5, 0.1, 30)  # each pair ~30x worse
    row = F.much_worse("Exp 3 sharp degradation at α > 1", x, y, ("α = 1", "α = 2"), True, SETTINGS)
    assert row.test.startswith("Wilcoxon") and row.verdict == F.HOLDS
    assert row.p == pytest.approx(stats.wilcoxon(np.log(y) - np.log(x), alternative="greater").pvalue)
    assert row.estimate == pytest.approx(np.median(y / x))


def test_all_converge_and_its_complement_with_the_exact_binomial_interval():
    all_in = F.all_reached("Exp 1 all converge", [True] * 20, True)
    assert all_in.verdict == F.HOLDS and all_in.high == 1.0
    assert all_in.low == pytest.approx(stats.binomtest(20, 20).proportion_ci(method="exact").low)
    one_out = [True] * 19 + [False]
    assert F.all_reached("all", one_out, True).verdict == F.FAILS
    assert F.all_reached("some don't", one_out, False).verdict == F.HOLDS


def test_a_step_in_f_is_a_sharp_transition_at_its_elbow():
    f = np.linspace(0, 1, 11)
    rng = np.random.default_rng(3)
    sharp = np.stack([10 ** (-3 + 2 / (1 + np.exp(-(fi - 0.35) / 0.015)) + rng.normal(0, 0.05, 30)) for fi in f])
    rows, fit = F.transition(f, sharp, SETTINGS)
    assert [r.verdict for r in rows] == [F.HOLDS, F.FAILS]
    assert fit["f0_interval"][0] <= fit["f0"] <= fit["f0_interval"][1] and abs(fit["f0"] - 0.35) < 0.05


def test_a_steady_rise_in_f_is_gradual():
    f = np.linspace(0, 1, 11)
    rng = np.random.default_rng(4)
    steady = np.stack([10 ** (-3 + 2 * fi + rng.normal(0, 0.05, 30)) for fi in f])
    rows, _ = F.transition(f, steady, SETTINGS)
    assert [r.verdict for r in rows] == [F.FAILS, F.HOLDS]


def test_too_little_data_is_not_measured_rather_than_an_error():
    rows, fit = F.transition([0.0, 1.0], np.ones((2, 5)), SETTINGS)
    assert fit is None and all(r.verdict == F.OPEN and "not measured" in r.note for r in rows)
    with pytest.raises(ValueError, match="at least two finite values"):
        F.similar("x", [1.0], [1.0, 2.0], ("a", "b"), False, SETTINGS)
