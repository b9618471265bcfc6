"""Where the reachable set ends: every target on one axis of distance from the data manifold.

The agenda asks where the boundary of the reachable set lies relative to the natural data
manifold; each experiment answers along its own path (Exp 2 by kind, Exp 3 by α, Exp 4 by f).
Here every target of every analysed experiment is placed by two distances from the residuals
that real text produces at the site (the pool's), and reachability is read against them:

  whitened   under the per-position Gaussian N(μᵢ, Σᵢ) of the pool (Exp 2a's), in the span of
             the pool's covariance: sqrt(mean over positions of d²ᵢ / rankᵢ), 1 for a point
             drawn from that Gaussian (d²ᵢ is χ² with rankᵢ degrees of freedom). The pool may not
             span residual space (after the final LayerNorm it lies in a hyperplane; a pool
             under d + 1 sequences spans fewer dimensions): the share of the deviation's
             energy outside the span is reported beside it (`outside`), never hidden by a
             pseudo-inverse and never an infinite distance.
  nearest    the distance to the nearest pool residual at each position, over the pool's own
             nearest-neighbour distance there (the median among its distinct residuals: shared
             prefixes give identical ones), averaged over positions; a target made from pool
             sequences (Exp 1, 3, 4) leaves those sequences out, so an Exp 1 target is not at
             distance 0 from itself (it may still be at 0 where another sequence shares its
             prefix: that part of it is exactly on the data).

Then, pooled and within each experiment: how well each distance separates reached from
unreached targets (AUC, bootstrap interval over targets), the rank correlation with relative
MSE, and the boundary — the distance at which half the targets are reached, from a logistic
fit of reached against log distance, with a bootstrap interval; and, pooled, whether the
experiment explains who is reached beyond what the distance does (a likelihood-ratio test).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from . import experiments

DISTANCES = ("whitened", "nearest")


def whitened(pool: np.ndarray, points: np.ndarray, tolerance: float = 1e-9) -> dict[str, np.ndarray]:
    """Per point [M] and position [M, S]: the in-span whitened distance, and the share of the
    deviation's energy outside the span of the pool's covariance at that position."""
    pool, points = pool.astype(np.float64), points.astype(np.float64)
    d2, outside, rank = np.zeros(points.shape[:2]), np.zeros(points.shape[:2]), np.zeros(points.shape[1])
    for i in range(points.shape[1]):
        mean = pool[:, i].mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov(pool[:, i], rowvar=False))
        keep = values > tolerance * max(values.max(), 0.0)
        deviation = points[:, i] - mean
        inside = deviation @ vectors[:, keep]
        d2[:, i] = (inside**2 / values[keep]).sum(axis=1)
        total = (deviation**2).sum(axis=1)
        beyond = deviation - inside @ vectors[:, keep].T  # the part no pool deviation spans, measured directly
        outside[:, i] = (beyond**2).sum(axis=1) / np.where(total > 0, total, 1)
        rank[i] = keep.sum()
    per_dimension = d2 / np.maximum(rank, 1)  # a pool of one repeated residual spans nothing: all is outside
    return {"whitened": np.sqrt(per_dimension.mean(axis=1)), "whitened_by_position": np.sqrt(per_dimension),
            "outside": outside.mean(axis=1), "rank": rank}


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0, None)


def nearest(pool: np.ndarray, points: np.ndarray, exclude: list[list[int]]) -> dict[str, np.ndarray]:
    """Per point [M] and position [M, S]: the distance to the nearest pool residual at that
    position (pool sequences in `exclude[m]` left out) over the pool's own scale there, the
    median nearest-neighbour distance among its distinct residuals. Distinct: a causal model's
    residual at position i depends only on the first i + 1 tokens, so sequences that share a
    prefix share residuals exactly (at position 0, every sequence that starts with the same
    token), and the median over all of them would be 0. A position with fewer than two distinct
    residuals has no scale and is left out of the average."""
    pool, points = pool.astype(np.float64), points.astype(np.float64)
    center = pool.mean(axis=0)  # distances from centred points: no cancellation of large norms
    pool, points = pool - center, points - center
    relative = np.full(points.shape[:2], np.nan)
    for i in range(points.shape[1]):
        distinct = np.unique(pool[:, i], axis=0)
        if len(distinct) < 2:
            continue
        own = _squared_distances(distinct, distinct)
        np.fill_diagonal(own, np.inf)
        scale = np.sqrt(np.median(own.min(axis=1)))
        d = _squared_distances(points[:, i], pool[:, i])
        for m, left_out in enumerate(exclude):
            d[m, left_out] = np.inf
        relative[:, i] = np.sqrt(d.min(axis=1)) / scale
    measured = np.isfinite(relative).sum(axis=1)
    average = np.where(measured > 0, np.nansum(relative, axis=1) / np.maximum(measured, 1), np.nan)
    return {"nearest": average, "nearest_by_position": relative}


def _bootstrap(statistic, n: int, settings: dict) -> tuple[float | None, float | None]:
    """A percentile interval of `statistic(indices)` over targets resampled with replacement."""
    rng = np.random.default_rng(settings["seed"])
    values = [statistic(rng.integers(0, n, n)) for _ in range(settings["bootstrap_resamples"])]
    values = np.array([v for v in values if v is not None and np.isfinite(v)])
    if len(values) < 0.5 * settings["bootstrap_resamples"]:
        return None, None
    alpha = (1 - settings["confidence"]) / 2
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1 - alpha))


def auc(distance: np.ndarray, reached: np.ndarray) -> float | None:
    """P(an unreached target lies farther than a reached one, ties half): 1 when distance
    separates them perfectly, 0.5 when it says nothing (None without both kinds). The
    Mann-Whitney U over its maximum, from ranks."""
    n_far, n_near = int((~reached).sum()), int(reached.sum())
    if not n_far or not n_near:
        return None
    ranks = stats.rankdata(distance)
    return float((ranks[~reached].sum() - n_far * (n_far + 1) / 2) / (n_far * n_near))


def _logistic(design: np.ndarray, y: np.ndarray, ridge: float) -> tuple[np.ndarray, float]:
    """P(y) = σ(design · w) by Newton's method on the likelihood, every coefficient but the
    first (the intercept) under a `ridge` (so perfectly separated data, whose maximum-likelihood
    coefficients are infinite, still give finite ones): (w, the log-likelihood)."""
    penalty = ridge * len(y) * np.diag([0.0] + [1.0] * (design.shape[1] - 1))
    w = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-np.clip(design @ w, -50, 50)))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian + 1e-12 * np.eye(len(w)), design.T @ (y - p) - penalty @ w)
        w += step
        if np.abs(step).max() < 1e-10:
            break
    p = np.clip(1 / (1 + np.exp(-np.clip(design @ w, -50, 50))), 1e-300, 1 - 1e-16)
    return w, float((y * np.log(p) + (1 - y) * np.log1p(-p)).sum())


def _standardised_log(distance: np.ndarray) -> tuple[np.ndarray, float, float]:
    x = np.log(distance)
    center, scale = x.mean(), max(x.std(), 1e-12)
    return (x - center) / scale, center, scale


def fit_boundary(distance: np.ndarray, reached: np.ndarray, ridge: float = 1e-3) -> float | None:
    """The distance at which half the targets are reached: P(reached) = σ(a + b·z) over the
    standardised log distance z, with a small `ridge` on b so that perfectly separated targets
    give a boundary in their gap. None without both kinds, when reached no less often farther
    out, or beyond the distances measured."""
    if reached.all() or not reached.any():
        return None
    z, center, scale = _standardised_log(distance)
    (a, b), _ = _logistic(np.stack([np.ones_like(z), z], axis=1), reached.astype(float), ridge)
    if b >= 0:
        return None
    at = center - scale * a / b
    return float(np.exp(at)) if np.log(distance).min() <= at <= np.log(distance).max() else None


def experiment_beyond_distance(distance: np.ndarray, reached: np.ndarray, labels: np.ndarray,
                               ridge: float = 1e-3) -> float | None:
    """Does the experiment explain who is reached beyond what distance does? The likelihood
    ratio test of a logistic in log distance and the experiment against one in log distance
    alone (p; None with fewer than two experiments or without both kinds)."""
    names = list(dict.fromkeys(labels))
    if len(names) < 2 or reached.all() or not reached.any():
        return None
    z, _, _ = _standardised_log(distance)
    alone = np.stack([np.ones_like(z), z], axis=1)
    both = np.concatenate([alone, np.stack([labels == n for n in names[1:]], axis=1).astype(float)], axis=1)
    y = reached.astype(float)
    statistic = 2 * (_logistic(both, y, ridge)[1] - _logistic(alone, y, ridge)[1])
    return float(stats.chi2.sf(max(statistic, 0.0), df=len(names) - 1))


def separation(distance: np.ndarray, reached: np.ndarray, relative: np.ndarray, settings: dict) -> dict:
    """For one distance over a set of targets: AUC and boundary with their intervals, the rank
    correlation with relative MSE, and the test that reached targets lie nearer."""
    n, out = len(distance), {"n_targets": int(len(distance)), "n_reached": int(reached.sum())}
    out["auc"] = auc(distance, reached)
    out["auc_interval"] = list(_bootstrap(lambda i: auc(distance[i], reached[i]), n, settings))
    out["boundary"] = fit_boundary(distance, reached)
    out["boundary_interval"] = list(_bootstrap(lambda i: fit_boundary(distance[i], reached[i]), n, settings)) \
        if out["boundary"] is not None else [None, None]
    finite = np.isfinite(relative)
    varied = finite.sum() > 2 and np.ptp(relative[finite]) > 0 and np.ptp(distance[finite]) > 0
    rho = stats.spearmanr(distance[finite], relative[finite]) if varied else None
    out["spearman"] = None if rho is None else float(rho.statistic)
    out["p"] = float(stats.mannwhitneyu(distance[~reached], distance[reached], alternative="greater").pvalue) \
        if out["auc"] is not None else None
    return out


def analyse(rows: list[dict], settings: dict) -> dict:
    """Every distance's separation, pooled over the targets of `rows` (targets.csv's rows) and
    within each experiment."""
    experiments = list(dict.fromkeys(r["experiment"] for r in rows))
    reached = np.array([bool(r["reached"]) for r in rows])
    relative = np.array([np.nan if r["relative_mse"] is None else r["relative_mse"] for r in rows], dtype=float)
    label = np.array([r["experiment"] for r in rows])
    out = {}
    for name in DISTANCES:
        distance = np.array([r[name] for r in rows], dtype=float)
        out[name] = {"pooled": separation(distance, reached, relative, settings),
                     "by_experiment": {e: separation(distance[label == e], reached[label == e], relative[label == e],
                                                     settings) for e in experiments}}
        out[name]["experiment_beyond_p"] = experiment_beyond_distance(distance, reached, label)
    out["reached_by_experiment"] = {e: float(reached[label == e].mean()) for e in experiments}
    outside = np.array([r["outside"] for r in rows], dtype=float)
    out["outside_median_by_experiment"] = {e: float(np.median(outside[label == e])) for e in experiments}
    return out


def agree(by_experiment: dict) -> bool | None:
    """Do the experiments' own boundaries agree (every interval shares a point)? None with
    fewer than two experiments that have one."""
    intervals = [v["boundary_interval"] for v in by_experiment.values() if None not in v["boundary_interval"]]
    if len(intervals) < 2:
        return None
    return max(low for low, _ in intervals) <= min(high for _, high in intervals)


def _number(x, spec=".3g") -> str:
    return "–" if x is None else format(x, spec)


def markdown(result: dict, site: str, level: float) -> str:
    lines = [f"# Where the reachable set ends, at {site}", "",
             "Each target's distance from the pool's residuals: whitened (in the span of each position's covariance; "
             "1 for a draw from the pool's Gaussian) and nearest (to the nearest pool residual, over the pool's own "
             "leave-one-out nearest-neighbour distance). AUC: P(an unreached target lies farther than a reached one), "
             f"with its bootstrap interval; the verdict's level is {level:g}. Boundary: the distance at which half "
             "the targets are reached (a logistic in log distance).", "",
             "| distance | targets | AUC [interval] | boundary [interval] | Spearman (distance, relative MSE) | "
             "experiments' boundaries agree |", "|---|---|---|---|---|---|"]
    for name in DISTANCES:
        for group, s in [("all", result[name]["pooled"]), *result[name]["by_experiment"].items()]:
            agreed = agree(result[name]["by_experiment"]) if group == "all" else None
            group = group if group == "all" else experiments.get(group).label
            lines.append(f"| {name} ({group}) | {s['n_targets']} ({s['n_reached']} reached) | {_number(s['auc'])} "
                         f"[{_number(s['auc_interval'][0])}, {_number(s['auc_interval'][1])}] | "
                         f"{_number(s['boundary'])} [{_number(s['boundary_interval'][0])}, "
                         f"{_number(s['boundary_interval'][1])}] | {_number(s['spearman'])} | "
                         f"{'–' if agreed is None else 'yes' if agreed else 'no'} |")
    lines += ["", "Share of each target's deviation from the pool mean outside the span of the pool's covariance "
              "(median; the whitened distance measures only the rest): " + ", ".join(
                  f"{experiments.get(e).label} {v:.2g}" for e, v in result["outside_median_by_experiment"].items()),
              "", "The experiment beyond the distance (likelihood-ratio p): " + ", ".join(
                  f"{name} {_number(result[name]['experiment_beyond_p'], '.2g')}" for name in DISTANCES)]
    return "\n".join(lines) + "\n"
