"""The agenda's interpretation guide, answered with statistics (scipy; torch-free).

Each line of the guide becomes a comparison with an effect size, its bootstrap confidence
interval, a test where one fits, and a verdict word — `holds`, `does not hold` or
`inconclusive` — decided by rules stated here and in docs/protocol.md:

  X ≈ Y          the ratio of median best MSEs, Y / X: holds when its interval lies inside
                 [1/similar, similar], does not hold when it lies outside, else inconclusive
  Y much worse   holds when the interval of Y / X lies above `much` (and the one-sided test
                 is significant), does not hold when it lies below `much`, else inconclusive
  Y as well as X  holds when the interval of Y / X lies below `similar` (Y at most that much
                 worse, or better), does not hold when it lies above, else inconclusive
  all converge   holds when every target is reached, else it does not (with the
                 Clopper-Pearson interval of the reached share)
  sharp / gradual  a logistic in f fitted to each target's log10 MSE (Exp 4): sharp when the
                 interval of the median width lies below `sharp_width`, gradual when above,
                 inconclusive where most elbows are not resolved by the measured fractions; a
                 width below the grid's spacing at its elbow is not measured and counts as at
                 most that spacing (reported as an upper bound: sharper than the grid resolves)

Like for like: both sides of a comparison take each target's best over the same restart
indices (the first min(R₁, R₂)), so neither side gets more tries (rows carry `restarts`).
An exact 0 stays a 0 (exact recovery); a target whose runs all diverged counts as the worst
value, +inf, in medians and rank tests, and rows count both. Unpaired comparisons (different
targets) use Mann-Whitney U; paired ones (the same targets or pairs: Exp 3's α of one pair,
the ablation's targets) the Wilcoxon signed-rank test on log MSE; intervals come from
`scipy.stats.bootstrap` (percentile method), over targets. The tested rows' p-values are
Holm-adjusted together (`p_adjusted`); a verdict that uses a p uses the adjusted one.

Beside the verdicts, two of the research log's descriptive statistics (not yet in the DAG):
difficulty correlations between model variants, and the spread of final cosine per condition.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import optimize, stats

from .metrics import best_restart, take_best

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
    restarts: list[int] | None = None  # restarts used per side
    counts: dict | None = None  # targets, exact zeros and diverged targets per side
    p_adjusted: float | None = None  # Holm, over every tested row
    decide: Callable[[float | None], str] | None = field(default=None, repr=False, compare=False)

    @property
    def uses_p(self) -> bool:
        """Does the verdict read the (Holm-adjusted) p? Otherwise the interval (or, for 'all
        converge', the count) alone decides it, and a p beside it is descriptive."""
        return self.decide is not None and self.p is not None

    def row(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "decide"}, "uses_p": self.uses_p}


def scored(x) -> np.ndarray:
    """Best MSEs as the rules rank them: a diverged target (NaN) is the worst value, +inf;
    an exact 0 stays."""
    x = np.asarray(x, dtype=float)
    return np.where(np.isnan(x), np.inf, x)


def counts(*sides) -> dict:
    """Targets, exact zeros and diverged targets (NaN) of each side's best MSEs."""
    sides = [np.asarray(s, dtype=float) for s in sides]
    return {"targets": [len(s) for s in sides], "zero": [int((s == 0).sum()) for s in sides],
            "diverged": [int(np.isnan(s).sum()) for s in sides]}


def ratio(a, b) -> np.ndarray:
    """b / a with equal values (0 and 0, inf and inf included) at exactly 1."""
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(a == b, 1.0, b / a)


def _interval(data: tuple, statistic, paired: bool, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore", over="ignore"):  # infinite values (diverged targets) are meant
        return _bootstrap(data, statistic, paired, settings)


def _bootstrap(data: tuple, statistic, paired: bool, settings: dict) -> tuple[np.ndarray, np.ndarray]:
    result = stats.bootstrap(data, statistic, paired=paired, vectorized=False, method="percentile",
                             confidence_level=settings["confidence"], n_resamples=settings["bootstrap_resamples"],
                             random_state=np.random.default_rng(settings["seed"]))
    return np.asarray(result.confidence_interval.low), np.asarray(result.confidence_interval.high)


def median_ratio(x, y, paired: bool, settings: dict) -> tuple[float, float, float]:
    """median(y) / median(x) for unpaired samples, median(y / x) for paired ones, with its
    bootstrap interval."""
    x, y = scored(x), scored(y)
    if paired:
        def statistic(a, b):
            return np.median(ratio(a, b))
    else:
        def statistic(a, b):
            return float(ratio(np.median(a), np.median(b)))
    if min(len(x), len(y)) < 2:
        raise ValueError("a comparison needs at least two targets on each side")
    low, high = _interval((x, y), statistic, paired, settings)
    return float(statistic(x, y)), float(low), float(high)


def median_interval(x, settings: dict) -> tuple[float | None, float | None, float | None]:
    """The median of x (diverged: +inf; zeros kept) with its bootstrap interval (None where
    there are too few values for one)."""
    x = scored(x)
    if len(x) < 2:
        return (float(np.median(x)) if len(x) else None), None, None
    low, high = _interval((x,), np.median, False, settings)
    return float(np.median(x)), float(low), float(high)


def reached_interval(reached) -> tuple[float, float, float]:
    """The reached share with its Clopper-Pearson interval."""
    reached = np.asarray(reached, dtype=bool)
    ci = stats.binomtest(int(reached.sum()), len(reached)).proportion_ci(method="exact")
    return float(reached.mean()), float(ci.low), float(ci.high)


def log_differences(x, y) -> np.ndarray:
    """log y - log x per pair, equal values at 0 and an infinite difference (a zero, a
    diverged side) beyond every finite one: what a signed-rank test ranks."""
    x, y = scored(x), scored(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.where(x == y, 0.0, np.log(y) - np.log(x))
    finite = d[np.isfinite(d)]
    beyond = (np.abs(finite).max() if finite.size else 0.0) + 1.0
    return np.where(np.isposinf(d), beyond, np.where(np.isneginf(d), -beyond, d))


def _test(x, y, paired: bool, alternative: str) -> tuple[str, float]:
    if paired:
        d = log_differences(x, y)
        p = 1.0 if not d.any() else float(stats.wilcoxon(d, alternative=alternative).pvalue)
        return "Wilcoxon signed-rank (log MSE)", p
    return "Mann-Whitney U", float(stats.mannwhitneyu(scored(y), scored(x), alternative=alternative).pvalue)


def _note_counts(c: dict, labels: tuple[str, str], base: str) -> str:
    parts = [base]
    for kind, words in (("zero", "an MSE of exactly 0"), ("diverged", "all runs diverged (counted as the worst)")):
        for n, label in zip(c[kind], labels):
            if n:
                parts.append(f"{label}: {n} target{'s' if n > 1 else ''} with {words}")
    return "; ".join(parts)


def similar(observation: str, x, y, labels: tuple[str, str], paired: bool, settings: dict,
            restarts: list[int] | None = None) -> Finding:
    """'Y ≈ X': the ratio's interval inside [1/similar, similar]."""
    estimate, low, high = median_ratio(x, y, paired, settings)
    test, p = _test(x, y, paired, "two-sided")
    bound = settings["similar_ratio"]
    verdict = HOLDS if 1 / bound <= low and high <= bound else FAILS if high < 1 / bound or low > bound else OPEN
    c = counts(x, y)
    return Finding(observation, f"{labels[1]} against {labels[0]}", f"ratio of median best MSE ({labels[1]} / {labels[0]})",
                   estimate, low, high, test, p, verdict, _note_counts(c, labels, f"≈ means within a factor {bound:g}"),
                   restarts, c)


def much_worse(observation: str, x, y, labels: tuple[str, str], paired: bool, settings: dict,
               restarts: list[int] | None = None, note: str = "") -> Finding:
    """'Y much worse than X': the ratio's interval above `much` and the one-sided test
    significant (after the Holm adjustment)."""
    estimate, low, high = median_ratio(x, y, paired, settings)
    test, p = _test(x, y, paired, "greater")
    much = settings["much_ratio"]

    def decide(p_used):
        return HOLDS if low > much and p_used < settings["alpha"] else FAILS if high < much else OPEN

    effect = f"{'median of per-pair ratios' if paired else 'ratio of median best MSE'} ({labels[1]} / {labels[0]})"
    c = counts(x, y)
    return Finding(observation, f"{labels[1]} against {labels[0]}", effect, estimate, low, high, test, p, decide(p),
                   _note_counts(c, labels, note or f"much means more than {much:g}×"), restarts, c, decide=decide)


def as_well(observation: str, x, y, labels: tuple[str, str], paired: bool, settings: dict,
            restarts: list[int] | None = None, note: str = "") -> Finding:
    """'Y reaches as well as X': Y / X at most `similar` — holds when the ratio's interval lies
    below it (Y may well be better), does not hold when above, else inconclusive."""
    estimate, low, high = median_ratio(x, y, paired, settings)
    test, p = _test(x, y, paired, "greater")
    bound = settings["similar_ratio"]
    verdict = HOLDS if high <= bound else FAILS if low > bound else OPEN
    c = counts(x, y)
    effect = f"{'median of per-target ratios' if paired else 'ratio of median best MSE'} ({labels[1]} / {labels[0]})"
    return Finding(observation, f"{labels[1]} against {labels[0]}", effect, estimate, low, high, test, p, verdict,
                   _note_counts(c, labels, note or f"as well means at most {bound:g}× worse"), restarts, c)


def all_reached(observation: str, reached, expect_all: bool) -> Finding:
    """'All converge' (expect_all) or its complement 'some don't converge'."""
    reached = np.asarray(reached, dtype=bool)
    k, n = int(reached.sum()), len(reached)
    share, low, high = reached_interval(reached)
    everything = k == n
    verdict = (HOLDS if everything else FAILS) if expect_all else (FAILS if everything else HOLDS)
    return Finding(observation, f"{k} of {n} targets reached", "reached share (Clopper-Pearson interval)",
                   share, low, high, None, None, verdict)


def mostly_reached(observation: str, reached, note: str = "") -> Finding:
    """'Most targets are reached': holds when the reached share's Clopper-Pearson interval lies
    above ½, does not hold when it lies below, else inconclusive."""
    reached = np.asarray(reached, dtype=bool)
    share, low, high = reached_interval(reached)
    verdict = HOLDS if low > 0.5 else FAILS if high < 0.5 else OPEN
    return Finding(observation, f"{int(reached.sum())} of {len(reached)} targets reached",
                   "reached share (Clopper-Pearson interval)", share, low, high, None, None, verdict, note)


def not_measured(observation: str, why: str) -> Finding:
    return Finding(observation, "-", "-", None, None, None, None, None, OPEN, f"not measured: {why}")


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values (each is at most 1; the order is kept)."""
    order = np.argsort(ps)
    m, adjusted, running = len(ps), np.empty(len(ps)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted.tolist()


def adjust(rows: list[Finding]) -> list[Finding]:
    """Holm over every row with a test; rows whose verdict uses a p are judged again with it."""
    tested = [r for r in rows if r.p is not None]
    for row, q in zip(tested, holm([r.p for r in tested])):
        row.p_adjusted = q
        if row.decide is not None:
            row.verdict = row.decide(q)
    return rows


def logistic(f: np.ndarray, low: float, high: float, f0: float, width: float) -> np.ndarray:
    """log10 MSE against the fraction f: `low` below the elbow f0, `high` above, over `width`."""
    with np.errstate(over="ignore"):  # far from the elbow the exponential overflows to the plateau
        return low + (high - low) / (1.0 + np.exp(-(f - f0) / width))


def fit_target(fractions, best) -> dict | None:
    """The logistic of one target's log10 best MSE against f ([F] each), its plateaus held to
    the values measured (so its rise is the observed one, never extrapolated), and whether its
    elbow is resolved: at least two measured fractions on each side. None where it cannot be
    fitted (fewer than four finite, positive values; no convergence)."""
    f, y = np.asarray(fractions, dtype=float), np.log10(np.asarray(best, dtype=float))
    keep = np.isfinite(y)
    f, y = f[keep], y[keep]
    if len(f) < 4 or y.max() - y.min() < 1e-12:
        return None if len(f) < 4 else {"low": float(y.min()), "high": float(y.max()), "f0": float("nan"),
                                        "width": float("nan"), "rise": 0.0, "resolved": False}
    low, high = y.min(), y.max()
    start = (np.percentile(y, 10), np.percentile(y, 90), float(np.median(f)), 0.1)
    bounds = ([low, low, f.min(), 1e-3], [high + 1e-9, high + 1e-9, f.max(), 1.0])
    try:
        params, _ = optimize.curve_fit(logistic, f, y, p0=np.clip(start, bounds[0], bounds[1]), bounds=bounds,
                                       maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    a, b, f0, width = map(float, params)
    resolved = (f < f0).sum() >= 2 and (f > f0).sum() >= 2
    return {"low": a, "high": b, "f0": f0, "width": width, "rise": b - a, "resolved": bool(resolved)}


def _elbow_note(fits: list[dict], fractions: list[float]) -> str:
    early = sum(1 for t in fits if not t["resolved"] and t["f0"] <= np.median(fractions))
    late = sum(1 for t in fits if not t["resolved"]) - early
    add = []
    if early:
        add.append(f"fractions between {fractions[0]:g} and {fractions[1]:g}")
    if late:
        add.append(f"fractions between {fractions[-2]:g} and {fractions[-1]:g}")
    return f"the elbow is not resolved by the measured fractions for {early + late} of {len(fits)} targets: add " + \
        " and ".join(add)


def transition(fractions, best, settings: dict, label: str = "Exp 4") -> tuple[list[Finding], dict | None]:
    """Exp 4's two lines of the guide (sharp transition at some f / gradual degradation) from a
    logistic fitted to each target, judged on the targets' own widths (a spread of elbows
    between targets is not a gradual transition within them); and the fits, for the figure."""
    lines = (f"{label} sharp transition", f"{label} gradual degradation")
    best = np.asarray(best, dtype=float)  # [F, T]
    order = np.argsort(fractions)
    fractions, best = [float(fractions[i]) for i in order], best[order]
    if len(set(fractions)) < 4 or best.shape[1] < 2:
        return [not_measured(line, "the fit needs 4 or more fractions and 2 or more targets") for line in lines], None
    fits = [fit_target(fractions, best[:, t]) for t in range(best.shape[1])]
    fitted = [dict(t, target=i) for i, t in enumerate(fits) if t is not None]
    rising = [t for t in fitted if t["rise"] >= settings["min_rise_decades"]]
    resolved = [t for t in rising if t["resolved"]]
    fit = {"per_target": fitted, "n_targets": best.shape[1], "n_rising": len(rising), "n_resolved": len(resolved)}
    if len(rising) * 2 < max(len(fitted), 1):
        why = f"the MSE rises less than {settings['min_rise_decades']:g} decades for most targets: no transition to judge"
        return [Finding(line, "each target's best MSE against f", "-", None, None, None, None, None, OPEN, why)
                for line in lines], fit
    if len(resolved) * 2 < len(rising) or len(resolved) < 2:
        why = _elbow_note(rising, fractions)
        return [Finding(line, "each target's best MSE against f", "-", None, None, None, None, None, OPEN, why)
                for line in lines], fit
    widths, elbows = np.array([t["width"] for t in resolved]), np.array([t["f0"] for t in resolved])
    grid = np.asarray(fractions)
    spacing = np.diff(grid)[np.searchsorted(grid, elbows) - 1]  # the measured step that holds each elbow
    bounded = np.maximum(widths, spacing)  # a width below the grid's spacing is not measured: at most that
    censored = int((widths < spacing).sum())
    upper = 2 * censored > len(widths)
    w_low = float(_interval((widths,), np.median, False, settings)[0])
    w_high = float(_interval((bounded,), np.median, False, settings)[1])
    sharp = settings["sharp_width"]
    verdict = HOLDS if w_high < sharp else FAILS if w_low > sharp else OPEN
    q1, q3 = np.percentile(elbows, [25, 75])
    fit.update(median_width=float(np.median(widths)), width_interval=[w_low, w_high],
               width_upper_bound=float(np.median(bounded)) if upper else None,
               f0_median=float(np.median(elbows)), f0_iqr=[float(q1), float(q3)],
               f0_range=[float(elbows.min()), float(elbows.max())],
               rise_median=float(np.median([t["rise"] for t in resolved])))
    at = np.searchsorted(grid, fit["f0_median"])
    width = (f"median width at most {fit['width_upper_bound']:.3g}, sharper than the grid resolves ({censored} of "
             f"{len(widths)} fitted widths lie below the grid's spacing at their elbow"
             + (f"; fractions between {grid[at - 1]:g} and {grid[at]:g} would tell whether it is below {sharp:g})"
                if verdict == OPEN else ")") if upper else f"median width {fit['median_width']:.3g}")
    note = (f"per target: {width} over {len(resolved)} of {best.shape[1]} targets (resolved elbows); elbows f0 "
            f"median {fit['f0_median']:.2f}, IQR [{q1:.2f}, {q3:.2f}], range [{elbows.min():.2f}, "
            f"{elbows.max():.2f}]; median rise {fit['rise_median']:.2f} decades (within the measured f); sharp means "
            f"width < {sharp:g}")
    effect = ("upper bound on the median width (f units): sharper than the grid resolves" if upper
              else "median width of the transition over targets (f units)")
    title = f"{lines[0]} at f ≈ {fit['f0_median']:.2f}" if verdict == HOLDS else lines[0]
    rows = [Finding(name, "each target's best MSE against f, a logistic per target", effect,
                    fit["width_upper_bound"] if upper else fit["median_width"], w_low, w_high, None, None, v, note)
            for name, v in ((title, verdict), (lines[1], opposite(verdict)))]
    return rows, fit


def difficulty_correlation(x, y, settings: dict) -> dict:
    """How alike two model variants find the same targets (the research log's full vs no-FFN r):
    Pearson's r with its Fisher-z interval and Spearman's ρ with its bootstrap interval over
    targets (paired, percentile), each with scipy's two-sided p, of per-target difficulties
    x and y [T] (e.g. log10 best MSE). Targets non-finite on either side (a diverged best, an
    exact 0's log) are left out and counted."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 4:
        raise ValueError(f"a correlation needs at least 4 targets finite on both sides, got {len(x)}")
    pearson = stats.pearsonr(x, y)
    ci = pearson.confidence_interval(confidence_level=settings["confidence"])
    spearman = stats.spearmanr(x, y)
    low, high = _interval((x, y), lambda a, b: stats.spearmanr(a, b).statistic, True, settings)
    return {"targets": int(len(x)), "left_out": int((~keep).sum()),
            "pearson": {"r": float(pearson.statistic), "low": float(ci.low), "high": float(ci.high),
                        "p": float(pearson.pvalue)},
            "spearman": {"r": float(spearman.statistic), "low": float(low), "high": float(high),
                         "p": float(spearman.pvalue)}}


def cosine_spread(cosine, final_mse) -> dict[str, np.ndarray]:
    """The spread of final cosine per condition (the research log's per-α spread of Exp 3),
    from each run's final cosine (mean over positions) and final MSE, [C, T, R] each; diverged
    runs (non-finite MSE) left out. The log does not define its spread; two readings:
    `across_targets` [C], the standard deviation (ddof 1) over targets of each target's best
    restart's cosine (best by final MSE, as the metrics choose) — the log's "± sd" over targets
    (its Exp 1: ± 0.0004, near the 0.0003 quoted for α = 0, a real target); `within_targets`
    [C], the median over targets of the standard deviation (ddof 1) of cosine over restarts."""
    final_mse = np.asarray(final_mse, dtype=float)
    cosine = np.where(np.isfinite(final_mse), np.asarray(cosine, dtype=float), np.nan)
    conditions, targets, restarts = final_mse.shape
    best = take_best(cosine.reshape(-1, restarts), best_restart(final_mse.reshape(-1, restarts)))
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):  # fewer than two values: NaN
        return {"across_targets": np.nanstd(best.reshape(conditions, targets), axis=1, ddof=1),
                "within_targets": np.nanmedian(np.nanstd(cosine, axis=2, ddof=1), axis=1)}
