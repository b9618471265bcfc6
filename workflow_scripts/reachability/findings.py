"""The agenda's interpretation guide, answered with statistics (scipy; torch-free).

Each line of the guide becomes a comparison with an effect size, its bootstrap confidence
interval, a test where one fits, and a verdict word — `holds`, `does not hold` or
`inconclusive` — decided by rules stated here and in the README:

  X ≈ Y          the ratio of median best MSEs, Y / X: holds when its interval lies inside
                 [1/similar, similar], does not hold when it lies outside, else inconclusive
  Y much worse   holds when the interval of Y / X lies above `much` (and the one-sided test
                 is significant), does not hold when it lies below `much`, else inconclusive
  all converge   holds when every target is reached, else it does not (with the
                 Clopper-Pearson interval of the reached share)
  sharp / gradual  a logistic in f fitted to log10 MSE (Exp 4): sharp when the interval of its
                 width lies below `sharp_width`, gradual when above, else inconclusive

Unpaired comparisons (different targets) use Mann-Whitney U; paired ones (the same targets
or pairs: Exp 3's α of one pair, the ablation's targets) the Wilcoxon signed-rank test on log
MSE; intervals come from `scipy.stats.bootstrap` (percentile method), over targets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import optimize, stats

HOLDS, FAILS, OPEN = "holds", "does not hold", "inconclusive"


def opposite(verdict: str) -> str:
    """The verdict of the complementary line ('sharp' vs 'gradual'; 'smooth' vs 'much worse')."""
    return {HOLDS: FAILS, FAILS: HOLDS, OPEN: OPEN}[verdict]


@dataclass
class Finding:
    observation: str  # the guide's line
    comparison: str  # what was compared, and how
    effect: str  # what the estimate is
    estimate: float | None
    low: float | None
    high: float | None
    test: str | None
    p: float | None
    verdict: str
    note: str = ""

    def row(self) -> dict:
        return asdict(self)


def _finite(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[np.isfinite(x) & (x > 0)]


def _interval(data: tuple, statistic, paired: bool, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    result = stats.bootstrap(data, statistic, paired=paired, vectorized=False, method="percentile",
                             confidence_level=settings["confidence"], n_resamples=settings["bootstrap_resamples"],
                             random_state=np.random.default_rng(settings["seed"]))
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def median_ratio(x, y, paired: bool, settings: dict) -> tuple[float, float, float]:
    """median(y) / median(x) for unpaired samples, median(y / x) for paired ones, with its
    bootstrap interval."""
    if paired:
        x, y = np.asarray(x, float), np.asarray(y, float)
        keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        x, y = x[keep], y[keep]

        def statistic(a, b):
            return np.median(b / a)
    else:
        x, y = _finite(x), _finite(y)

        def statistic(a, b):
            return np.median(b) / np.median(a)
    if min(len(x), len(y)) < 2:
        raise ValueError("a comparison needs at least two finite values on each side")
    low, high = _interval((x, y), statistic, paired, settings)
    return float(statistic(x, y)), float(low), float(high)


def median_interval(x, settings: dict) -> tuple[float | None, float | None, float | None]:
    """The median of the finite values of x with its bootstrap interval (None where there
    are too few values for one)."""
    x = _finite(x)
    if len(x) < 2:
        return (float(np.median(x)) if len(x) else None), None, None
    low, high = _interval((x,), np.median, False, settings)
    return float(np.median(x)), float(low), float(high)


def reached_interval(reached) -> tuple[float, float, float]:
    """The reached share with its Clopper-Pearson interval."""
    reached = np.asarray(reached, dtype=bool)
    ci = stats.binomtest(int(reached.sum()), len(reached)).proportion_ci(method="exact")
    return float(reached.mean()), float(ci.low), float(ci.high)


def _test(x, y, paired: bool, alternative: str) -> tuple[str, float]:
    if paired:
        x, y = np.asarray(x, float), np.asarray(y, float)
        keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        d = np.log(y[keep]) - np.log(x[keep])
        return "Wilcoxon signed-rank (log MSE)", float(stats.wilcoxon(d, alternative=alternative).pvalue)
    return "Mann-Whitney U", float(stats.mannwhitneyu(_finite(y), _finite(x), alternative=alternative).pvalue)


def similar(observation: str, x, y, labels: tuple[str, str], paired: bool, settings: dict) -> Finding:
    """'Y ≈ X': the ratio's interval inside [1/similar, similar]."""
    estimate, low, high = median_ratio(x, y, paired, settings)
    test, p = _test(x, y, paired, "two-sided")
    bound = settings["similar_ratio"]
    verdict = HOLDS if 1 / bound <= low and high <= bound else FAILS if high < 1 / bound or low > bound else OPEN
    return Finding(observation, f"{labels[1]} against {labels[0]}", f"ratio of median best MSE ({labels[1]} / {labels[0]})",
                   estimate, low, high, test, p, verdict, f"≈ means within a factor {bound:g}")


def much_worse(observation: str, x, y, labels: tuple[str, str], paired: bool, settings: dict) -> Finding:
    """'Y much worse than X': the ratio's interval above `much` and the one-sided test
    significant."""
    estimate, low, high = median_ratio(x, y, paired, settings)
    test, p = _test(x, y, paired, "greater")
    much = settings["much_ratio"]
    verdict = HOLDS if low > much and p < settings["alpha"] else FAILS if high < much else OPEN
    effect = f"{'median of per-pair ratios' if paired else 'ratio of median best MSE'} ({labels[1]} / {labels[0]})"
    return Finding(observation, f"{labels[1]} against {labels[0]}", effect, estimate, low, high, test, p, verdict,
                   f"much means more than {much:g}×")


def all_reached(observation: str, reached, expect_all: bool) -> Finding:
    """'All converge' (expect_all) or its complement 'some don't converge'."""
    reached = np.asarray(reached, dtype=bool)
    k, n = int(reached.sum()), len(reached)
    share, low, high = reached_interval(reached)
    everything = k == n
    verdict = (HOLDS if everything else FAILS) if expect_all else (FAILS if everything else HOLDS)
    return Finding(observation, f"{k} of {n} targets reached", "reached share (Clopper-Pearson interval)",
                   share, low, high, None, None, verdict)


def logistic(f: np.ndarray, low: float, high: float, f0: float, width: float) -> np.ndarray:
    """log10 MSE against the fraction f: `low` below the elbow f0, `high` above, over `width`."""
    return low + (high - low) / (1.0 + np.exp(-(f - f0) / width))


def fit_transition(fractions, best) -> np.ndarray:
    """(low, high, f0, width) of `logistic` fitted to log10 best MSE ([F] fractions, [F, T])."""
    f = np.repeat(np.asarray(fractions, dtype=float)[:, None], best.shape[1], axis=1)
    y = np.log10(np.asarray(best, dtype=float))
    keep = np.isfinite(y)
    f, y = f[keep], y[keep]
    start = (np.percentile(y, 10), np.percentile(y, 90), float(np.median(f)), 0.1)
    bounds = ([-np.inf, -np.inf, 0.0, 1e-3], [np.inf, np.inf, 1.0, 1.0])
    params, _ = optimize.curve_fit(logistic, f, y, p0=start, bounds=bounds, maxfev=20000)
    return params


def transition(fractions, best, settings: dict) -> tuple[list[Finding], dict | None]:
    """Exp 4's two lines of the guide (sharp transition at some f / gradual degradation) from a
    logistic fit with bootstrap intervals over targets; and the fit, for the figure."""
    best = np.asarray(best, dtype=float)  # [F, T]
    lines = ("Exp 4 sharp transition at f ≈ ?", "Exp 4 gradual degradation")
    if len(set(fractions)) < 4 or best.shape[1] < 2:
        return [not_measured(line, "the fit needs 4 or more fractions and 2 or more targets") for line in lines], None
    try:
        params = fit_transition(fractions, best)
    except (RuntimeError, ValueError) as error:  # no convergence, or no finite values
        return [not_measured(line, f"the logistic fit failed ({error})") for line in lines], None

    def refit(targets):
        try:
            return fit_transition(fractions, best[:, targets.astype(int)])[2:]
        except (RuntimeError, ValueError):
            return np.full(2, np.nan)  # this resample has no fit: the interval is then undefined

    (f0_low, w_low), (f0_high, w_high) = _interval((np.arange(best.shape[1]),), refit, False, settings)
    sharp = settings["sharp_width"]
    rise = params[1] - params[0]
    note = (f"logistic in f on log10 MSE: rise {rise:.2f} decades, elbow f0 = {params[2]:.3f} "
            f"[{f0_low:.3f}, {f0_high:.3f}]; sharp means width < {sharp:g}")
    verdict_sharp = HOLDS if w_high < sharp else FAILS if w_low > sharp else OPEN
    verdict_gradual = opposite(verdict_sharp)
    if rise < settings["min_rise_decades"]:
        verdict_sharp = verdict_gradual = OPEN
        note += f"; the MSE rises less than {settings['min_rise_decades']:g} decades: no transition to judge"
    rows = [Finding(f"Exp 4 sharp transition at f ≈ {params[2]:.2f}", "best MSE against f, all targets",
                    "width of the transition (f units)", float(params[3]), float(w_low), float(w_high),
                    None, None, verdict_sharp, note),
            Finding("Exp 4 gradual degradation", "best MSE against f, all targets", "width of the transition (f units)",
                    float(params[3]), float(w_low), float(w_high), None, None, verdict_gradual, note)]
    fit = {"low": float(params[0]), "high": float(params[1]), "f0": float(params[2]), "width": float(params[3]),
           "f0_interval": [float(f0_low), float(f0_high)], "width_interval": [float(w_low), float(w_high)]}
    return rows, fit


def not_measured(observation: str, why: str) -> Finding:
    return Finding(observation, "-", "-", None, None, None, None, None, OPEN, f"not measured: {why}")
