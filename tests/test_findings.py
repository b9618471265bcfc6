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
    f = np.linspace(0, 1, 41)  # spacing 0.025: finer than `sharp_width`
    rng = np.random.default_rng(3)
    sharp = np.stack([10 ** (-3 + 2 / (1 + np.exp(-(fi - 0.35) / 0.015)) + rng.normal(0, 0.05, 30)) for fi in f])
    rows, fit = F.transition(f, sharp, SETTINGS)
    assert [r.verdict for r in rows] == [F.HOLDS, F.FAILS]
    assert fit["f0_iqr"][0] <= fit["f0_median"] <= fit["f0_iqr"][1] and abs(fit["f0_median"] - 0.35) < 0.05
    assert rows[0].observation == f"Exp 4 sharp transition at f ≈ {fit['f0_median']:.2f}"


def test_a_width_below_the_grids_spacing_is_an_upper_bound_not_an_estimate():
    """The same step (width 0.015) on the agenda's grid (spacing 0.1): no measured fraction lies
    on the step, so its fitted width is not a measurement. It is reported as at most the
    spacing — sharper than the grid resolves — and, that bound being above `sharp_width`, the
    verdict is open, naming the fractions that would tell."""
    f = np.linspace(0, 1, 11)
    rng = np.random.default_rng(3)
    step = np.stack([10 ** (-3 + 2 / (1 + np.exp(-(fi - 0.35) / 0.015)) + rng.normal(0, 0.05, 30)) for fi in f])
    rows, fit = F.transition(f, step, SETTINGS)
    assert [r.verdict for r in rows] == [F.OPEN, F.OPEN]
    assert fit["width_upper_bound"] == pytest.approx(0.1) and rows[0].estimate == pytest.approx(0.1)
    assert rows[0].high == pytest.approx(0.1) and "sharper than the grid resolves" in rows[0].effect
    assert "between 0.3 and 0.4" in rows[0].note and rows[0].observation == "Exp 4 sharp transition"
    finer = np.linspace(0, 1, 41)
    _, fine = F.transition(finer, 10 ** (-3 + 2 / (1 + np.exp(-(finer[:, None] - 0.35) / 0.06))
                                      + rng.normal(0, 0.02, (41, 30))), SETTINGS)
    assert fine["width_upper_bound"] is None and fine["median_width"] == pytest.approx(0.06, rel=0.2)


def test_a_steady_rise_in_f_is_gradual():
    f = np.linspace(0, 1, 11)
    rng = np.random.default_rng(4)
    steady = np.stack([10 ** (-3 + 2 * fi + rng.normal(0, 0.05, 30)) for fi in f])
    rows, _ = F.transition(f, steady, SETTINGS)
    assert [r.verdict for r in rows] == [F.FAILS, F.HOLDS]
    assert rows[0].observation == "Exp 4 sharp transition"  # a sharp transition that does not hold names no f


def test_too_little_data_is_not_measured_rather_than_an_error():
    rows, fit = F.transition([0.0, 1.0], np.ones((2, 5)), SETTINGS)
    assert fit is None and all(r.verdict == F.OPEN and "not measured" in r.note for r in rows)
    with pytest.raises(ValueError, match="at least two targets"):
        F.similar("x", [1.0], [1.0, 2.0], ("a", "b"), False, SETTINGS)


def test_zeros_are_kept_and_diverged_targets_count_as_the_worst():
    value, _, _ = F.median_interval([0.0] * 30 + [0.01] * 20, SETTINGS)
    assert value == 0.0  # exact recovery is the median, not dropped
    x = lognormal(-3, n=40)
    y = lognormal(-3, n=40, seed=1)
    y[:25] = np.nan  # 25 of 40 targets diverged on one side: that side is worse, not "similar" on 15 survivors
    row = F.similar("2b ≈ 2a", x, y, ("2a", "2b"), False, SETTINGS)
    assert row.verdict != F.HOLDS and row.estimate == np.inf
    assert row.counts == {"targets": [40, 40], "zero": [0, 0], "diverged": [0, 25]} and "25 targets" in row.note
    assert F.much_worse("much worse", x, y, ("2a", "2b"), False, SETTINGS).p < 1e-3


def test_paired_ties_zeros_and_divergence_rank_as_they_should():
    d = F.log_differences([1.0, 0.0, 2.0, np.nan, 1.0], [1.0, 0.0, 4.0, 1.0, np.nan])
    assert d[0] == d[1] == 0 and d[2] == pytest.approx(np.log(2))
    assert d[3] < -abs(d[2]) and d[4] > abs(d[2])  # beyond every finite difference
    np.testing.assert_array_equal(F.ratio([0.0, 0.0, 2.0, np.inf], [0.0, 1.0, 1.0, np.inf]), [1.0, np.inf, 0.5, 1.0])


def test_holm_adjusts_the_tested_rows_together_and_the_verdicts_use_it():
    assert F.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert F.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])
    x, y = lognormal(-3, n=20), lognormal(-1, n=20, seed=1)  # 100x worse
    row = F.much_worse("much worse", x, y, ("x", "y"), False, {**SETTINGS, "much_ratio": 2.0})
    assert row.verdict == F.HOLDS and row.low > 2
    row.p = 0.01  # as if its test were just significant alone; nine other tested rows beside it
    others = [F.similar(f"row {i}", x, x, ("x", "x"), False, SETTINGS) for i in range(9)]
    F.adjust([row, *others])
    assert row.p_adjusted == pytest.approx(0.1) and all(o.p_adjusted is not None for o in others)
    assert row.verdict == F.OPEN  # the interval lies above 2, but the adjusted test is not significant


def steps_in_f(elbows, width=0.01, rise=3.0, seed=5, points=11):
    """[F, T] best MSEs: each target a sharp step of `width` at its own elbow, on `points` fractions."""
    f = np.linspace(0, 1, points)
    rng = np.random.default_rng(seed)
    return f, np.stack([10 ** (-4 + rise / (1 + np.exp(-(fi - elbows) / width)) + rng.normal(0, 0.02, len(elbows)))
                        for fi in f])


def test_elbows_spread_over_targets_are_sharp_steps_not_a_gradual_transition():
    """20 targets, each a step of width 0.01, elbows spread over 0.2-0.8, on fractions 0.025 apart:
    pooled, one logistic would call it gradual; per target, every step is sharp, and the spread
    is reported."""
    elbows = np.linspace(0.22, 0.78, 20)
    f, best = steps_in_f(elbows, points=41)
    rows, fit = F.transition(f, best, SETTINGS)
    assert [r.verdict for r in rows] == [F.HOLDS, F.FAILS]
    assert fit["n_resolved"] == 20 and fit["width_interval"][1] < 0.05
    assert fit["f0_range"][0] < 0.3 and fit["f0_range"][1] > 0.7 and fit["f0_iqr"][1] - fit["f0_iqr"][0] > 0.2
    assert "IQR" in rows[0].note and len(fit["per_target"]) == 20


def test_a_step_between_the_first_two_fractions_is_not_resolved():
    """A step between f = 0 and 0.1: its width and elbow cannot be told from the grid. The verdict
    is inconclusive and says which fractions to add; the rise is the observed one."""
    f, best = steps_in_f(np.full(20, 0.05), rise=4.0)
    rows, fit = F.transition(f, best, SETTINGS)
    assert [r.verdict for r in rows] == [F.OPEN, F.OPEN]
    assert "between 0 and 0.1" in rows[0].note and rows[0].observation == "Exp 4 sharp transition"
    observed = np.log10(best).max(axis=0) - np.log10(best).min(axis=0)
    assert all(t["rise"] <= o + 1e-9 for t, o in zip(fit["per_target"], observed)) and fit["n_resolved"] < 10


def test_correlations_cover_a_known_r_and_zero_when_independent():
    """Bivariate normal with r = 0.6: Pearson's 99 % interval covers 0.6 and is the Fisher-z
    interval; Spearman's covers the normal's own rank correlation (6/π) asin(r/2), below r;
    independent: both cover 0."""
    settings = dict(SETTINGS, confidence=0.99)
    rng = np.random.default_rng(8)
    n, r = 1500, 0.6
    x, noise = rng.standard_normal((2, n))
    y = r * x + np.sqrt(1 - r * r) * noise
    found = F.difficulty_correlation(x, np.append(y[:-1], np.nan), settings)  # one target left out
    assert found["targets"] == n - 1 and found["left_out"] == 1
    pearson, spearman = found["pearson"], found["spearman"]
    assert pearson["low"] < r < pearson["high"] and pearson["p"] < 1e-12
    z, half = np.arctanh(pearson["r"]), stats.norm.ppf(0.995) / np.sqrt(n - 1 - 3)
    assert (pearson["low"], pearson["high"]) == pytest.approx((np.tanh(z - half), np.tanh(z + half)))
    assert spearman["low"] < 6 / np.pi * np.arcsin(r / 2) < spearman["high"] < r
    apart = F.difficulty_correlation(x, noise, settings)
    for kind in ("pearson", "spearman"):
        assert apart[kind]["low"] < 0 < apart[kind]["high"]
    assert apart["spearman"]["p"] > 0.05 and apart["pearson"]["p"] > 0.05


def test_cosine_spread_over_targets_and_over_restarts():
    """Per condition: each target's best restart (lowest MSE) has cosine 0.99 + s_c z_t with z of
    sd exactly 1, and its restarts fall by d_c w_t each: spreads s_c over targets (of the best
    restarts, not their mean) and d_c median(w) over restarts."""
    z = np.random.default_rng(9).standard_normal(12)
    z = (z - z.mean()) / z.std(ddof=1)
    w = np.linspace(0.5, 2.0, 12)
    s, d = np.array([3e-4, 3.4e-3]), np.array([1e-3, 2e-4])
    steps = np.arange(3)  # restart 0 best, then worse by one step each
    cosine = 0.99 + s[:, None, None] * z[None, :, None] - d[:, None, None] * w[None, :, None] * steps
    mse = np.broadcast_to(10.0 ** (steps - 3.0), cosine.shape).copy()
    spread = F.cosine_spread(cosine[:, :, ::-1], mse[:, :, ::-1])  # restart order does not matter
    np.testing.assert_allclose(spread["across_targets"], s)
    np.testing.assert_allclose(spread["within_targets"], d * np.median(w))
    mse[0, 0, 0] = np.nan  # a diverged best restart: its cosine ignored, the next restart is the best
    cosine[0, 0, 0] = 2.0
    best = cosine[0, :, 0].copy()
    best[0] = cosine[0, 0, 1]
    spread = F.cosine_spread(cosine, mse)
    assert spread["across_targets"][0] == pytest.approx(np.std(best, ddof=1))
    np.testing.assert_allclose(spread["within_targets"], d * np.median(w))  # the least spread target shrank
