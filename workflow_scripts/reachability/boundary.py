"""Where the reachable set ends: every target on one axis of distance from the data manifold.

The agenda asks where the boundary of the reachable set lies relative to the natural data
manifold; each experiment answers along its own path (Exp 2 by kind, Exp 3 by α, Exp 4 by f).
Here every target of every analysed experiment is placed by two distances from the residuals
that real text produces at the site (the pool's), and reachability is read against them:

  whitened   the Mahalanobis distance under each position's covariance, measured against a
             Ledoit-Wolf (shrunk) covariance that the target did not help estimate: the pool is
             cut into folds, the sequences a target is made of held out with their fold, and a
             target made of none averaged over folds. Squared, over the pool's own held-out mean
             at that position, and averaged over positions: 1 on average for a pool member and
             for a fresh draw from the pool's distribution alike (in-sample, a pool member sits
             nearer and a fresh draw farther: n/(n-d-1) for an unshrunk inverse). Measured in
             the span of the pool's covariance (after the final LayerNorm the pool lies in a
             hyperplane; a pool under d + 1 sequences spans fewer dimensions): the share of the
             deviation's energy outside it is reported beside (`outside`), never hidden by a
             pseudo-inverse and never an infinite distance.
  nearest    the distance to the nearest pool residual at each position, over the pool's own
             nearest-neighbour distance there (the median among its distinct residuals: shared
             prefixes give identical ones), averaged over positions; a target made from pool
             sequences (Exp 1, 3, 4) leaves those sequences out, so an Exp 1 target is not at
             distance 0 from itself (it may still be at 0 where another sequence shares its
             prefix: that part of it is exactly on the data).

Targets made of a common pool sequence (Exp 3's eight α of a pair, Exp 4's eleven f of a
target, the Exp 1 targets they come from) are not independent: they form a group, resampled
together and treated as one cluster in every test. Then, pooled and within each experiment:
how well each distance separates reached from unreached targets (AUC, group bootstrap
interval), and within strata of the target's norm (which may rise with distance and set
reachability itself); the rank correlation with relative MSE; the boundary — the distance at
which half the targets are reached, from a logistic in log distance, its bootstrap interval
spanning at least the gap that separates them perfectly where one does; and, pooled, whether
the experiment explains who is reached beyond what the distance does (a cluster-robust score
test of a logistic GEE).
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from sklearn.covariance import LedoitWolf

from . import experiments

DISTANCES = ("whitened", "nearest")
FOLDS = 5  # each covariance from four fifths of the pool
NORM_STRATA = 5  # quintiles of the target's mean square


def groups(sources: list[list[int]], n_pool: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets linked by a common pool sequence, directly or through another target, are one
    group: (each target's group [M], each pool sequence's [n_pool]). A target made of no pool
    sequence, and a sequence no target is made of, is a group of its own."""
    m = len(sources)
    links = np.array([(t, m + s) for t, made in enumerate(sources) for s in made], dtype=int).reshape(-1, 2)
    graph = coo_array((np.ones(len(links)), (links[:, 0], links[:, 1])), shape=(m + n_pool, m + n_pool))
    labels = connected_components(graph, directed=False)[1]
    return labels[:m], labels[m:]


def whitened(pool: np.ndarray, points: np.ndarray, sources: list[list[int]],
             tolerance: float = 1e-9) -> dict[str, np.ndarray]:
    """Per point [M] and position [M, S]: the held-out, shrunk whitened distance (1 on average
    for a draw from the pool's distribution, a pool member included), and the share of the
    deviation's energy outside the span of the pool's covariance at that position.
    `sources[m]`: the pool sequences point m is made of, held out of its covariance."""
    pool, points = pool.astype(np.float64), points.astype(np.float64)
    _, of_pool = groups(sources, len(pool))
    ids = np.unique(of_pool, return_inverse=True)[1]
    if ids.max() < 1:
        raise ValueError("the targets' pool sequences link the whole pool into one group: no covariance is left that "
                         "a target did not help estimate (use a larger pool_size)")
    fold = ids % min(FOLDS, ids.max() + 1)  # a group in one fold: a target's sequences held out together
    home = np.array([fold[made[0]] if made else -1 for made in sources])  # -1: made of none, every fold
    squared, outside, rank = np.zeros(points.shape[:2]), np.zeros(points.shape[:2]), np.zeros(points.shape[1])
    for i in range(points.shape[1]):
        mean = pool[:, i].mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov(pool[:, i], rowvar=False))
        span = vectors[:, values > tolerance * max(values.max(), 0.0)]
        deviation = points[:, i] - mean
        inside, total = deviation @ span, (deviation**2).sum(axis=1)
        beyond = deviation - inside @ span.T  # the part no pool deviation spans, measured directly
        outside[:, i] = (beyond**2).sum(axis=1) / np.where(total > 0, total, 1)
        rank[i] = span.shape[1]
        if not rank[i]:  # a pool of one repeated residual spans nothing: all is outside
            continue
        members, held = (pool[:, i] - mean) @ span, np.zeros(len(pool))
        summed, counted = np.zeros(len(points)), np.zeros(len(points))
        for k in range(fold.max() + 1):
            fit = LedoitWolf().fit(members[fold != k])
            held[fold == k] = fit.mahalanobis(members[fold == k])
            mine = (home == k) | (home < 0)
            if mine.any():
                summed[mine] += fit.mahalanobis(inside[mine])
            counted += mine
        squared[:, i] = summed / counted / held.mean()
    return {"whitened": np.sqrt(squared.mean(axis=1)), "whitened_by_position": np.sqrt(squared),
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


def _bootstrap(statistic, clusters: np.ndarray, settings: dict) -> tuple[float | None, float | None]:
    """A percentile interval of `statistic(indices)` over groups of targets (`clusters`, one
    label per target) resampled with replacement: targets made of common pool sequences move
    together, so the interval is as wide as their shared fate makes it."""
    members = [np.flatnonzero(clusters == c) for c in np.unique(clusters)]
    rng = np.random.default_rng(settings["seed"])
    values = [statistic(np.concatenate([members[j] for j in rng.integers(0, len(members), len(members))]))
              for _ in range(settings["bootstrap_resamples"])]
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


def strata_of(norm: np.ndarray) -> np.ndarray:
    """Each target's stratum of `NORM_STRATA` quantiles of its norm."""
    return np.searchsorted(np.quantile(norm, np.linspace(0, 1, NORM_STRATA + 1)[1:-1]), norm, side="right")


def auc_within(distance: np.ndarray, reached: np.ndarray, strata: np.ndarray) -> float | None:
    """The AUC among targets of one stratum: P(an unreached target lies farther than a reached
    one of the same stratum), over every such pair (None without one)."""
    wins, pairs = 0.0, 0
    for s in np.unique(strata):
        here = strata == s
        a = auc(distance[here], reached[here])
        if a is not None:
            n = int(reached[here].sum() * (~reached[here]).sum())
            wins, pairs = wins + a * n, pairs + n
    return wins / pairs if pairs else None


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


def gap(distance: np.ndarray, reached: np.ndarray) -> tuple[float, float] | None:
    """(the farthest reached target, the nearest unreached one) when every reached target lies
    nearer than every unreached one — any boundary in between fits them all; else None."""
    if reached.all() or not reached.any() or distance[reached].max() >= distance[~reached].min():
        return None
    return float(distance[reached].max()), float(distance[~reached].min())


def experiment_beyond_distance(distance: np.ndarray, reached: np.ndarray, labels: np.ndarray,
                               clusters: np.ndarray) -> float | None:
    """Does the experiment explain who is reached beyond what distance does? The cluster-robust
    score test of the experiment in a logistic in log distance — a logistic GEE's with
    independence (Guo and Pan 2002; statsmodels' `GEE.compare_score_test` gives the same, a test
    checks, at ~50x the time a null calibration can afford): the experiment's score at the fit
    under the null (distance alone), what the distance explains projected out, its variance from
    sums over the groups of targets (`clusters`: targets of one group share their fate, so they
    count as one). Fitted under the null alone, an experiment all reached or all unreached needs
    no infinite coefficient. χ², a degree per experiment beyond the first; 1 when the distance
    alone separates every target; None with fewer than two experiments or without both kinds."""
    names = list(dict.fromkeys(labels))
    if len(names) < 2 or reached.all() or not reached.any():
        return None
    if auc(distance, reached) in (0.0, 1.0):
        return 1.0
    z, _, _ = _standardised_log(distance)
    alone, y = np.stack([np.ones_like(z), z], axis=1), reached.astype(float)
    extra = np.stack([labels == n for n in names[1:]], axis=1).astype(float)
    p = 1 / (1 + np.exp(-alone @ _logistic(alone, y, 0.0)[0]))  # the null's own maximum likelihood
    weighted = alone * (p * (1 - p))[:, None]
    projected = extra - alone @ np.linalg.solve(alone.T @ weighted, weighted.T @ extra)
    by_group = np.zeros((len(np.unique(clusters)), extra.shape[1]))
    np.add.at(by_group, np.unique(clusters, return_inverse=True)[1], projected * (y - p)[:, None])
    score = by_group.sum(axis=0)
    solved, _, rank, _ = np.linalg.lstsq(by_group.T @ by_group, score, rcond=None)
    return float(stats.chi2.sf(score @ solved, df=rank))


def separation(distance: np.ndarray, reached: np.ndarray, relative: np.ndarray, clusters: np.ndarray,
               settings: dict) -> dict:
    """For one distance over a set of targets: AUC and boundary with their group-bootstrap
    intervals (the boundary's spanning at least the gap that separates them perfectly, where
    one does) and the rank correlation with relative MSE."""
    out = {"n_targets": int(len(distance)), "n_groups": int(len(np.unique(clusters))), "n_reached": int(reached.sum())}
    out["auc"] = auc(distance, reached)
    out["auc_interval"] = list(_bootstrap(lambda i: auc(distance[i], reached[i]), clusters, settings))
    out["boundary"], out["gap"] = fit_boundary(distance, reached), gap(distance, reached)
    low, high = _bootstrap(lambda i: fit_boundary(distance[i], reached[i]), clusters, settings) \
        if out["boundary"] is not None else (None, None)
    if out["gap"] is not None:  # perfectly separated: the data place the boundary anywhere in the gap
        low, high = min(low or np.inf, out["gap"][0]), max(high or 0.0, out["gap"][1])
    out["boundary_interval"] = [low, high]
    finite = np.isfinite(relative)
    varied = finite.sum() > 2 and np.ptp(relative[finite]) > 0 and np.ptp(distance[finite]) > 0
    out["spearman"] = float(stats.spearmanr(distance[finite], relative[finite]).statistic) if varied else None
    return out


def analyse(rows: list[dict], settings: dict) -> dict:
    """Every distance's separation, pooled over the targets of `rows` (targets.csv's rows) and
    within each experiment, targets grouped by the pool sequences they are made of; pooled, the
    same within strata of the target's norm, and the experiment beyond the distance."""
    experiments = list(dict.fromkeys(r["experiment"] for r in rows))
    reached = np.array([bool(r["reached"]) for r in rows])
    relative = np.array([np.nan if r["relative_mse"] is None else r["relative_mse"] for r in rows], dtype=float)
    label = np.array([r["experiment"] for r in rows])
    sources = [r["sources"] for r in rows]
    clusters = groups(sources, 1 + max((s for made in sources for s in made), default=-1))[0]
    strata = strata_of(np.array([r["target_mean_square"] for r in rows], dtype=float))
    out = {}
    for name in DISTANCES:
        distance = np.array([r[name] for r in rows], dtype=float)
        pooled = separation(distance, reached, relative, clusters, settings)
        pooled["auc_within_norm"] = auc_within(distance, reached, strata)
        pooled["auc_within_norm_interval"] = list(_bootstrap(
            lambda i: auc_within(distance[i], reached[i], strata[i]), clusters, settings))
        out[name] = {"pooled": pooled,
                     "by_experiment": {e: separation(distance[label == e], reached[label == e], relative[label == e],
                                                     clusters[label == e], settings) for e in experiments},
                     "experiment_beyond_p": experiment_beyond_distance(distance, reached, label, clusters)}
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


def _interval(value, interval) -> str:
    return f"{_number(value)} [{_number(interval[0])}, {_number(interval[1])}]"


def markdown(result: dict, site: str, level: float) -> str:
    lines = [f"# Where the reachable set ends, at {site}", "",
             "Each target's distance from the pool's residuals: whitened (each position's Ledoit-Wolf covariance, "
             "estimated without the pool sequences the target is made of; over the pool's own held-out value, so 1 "
             "for a pool member and for a draw from the pool's distribution alike; in the span of the pool's "
             "covariance) and nearest (to the nearest pool residual, the target's own sequences left out, over the "
             "pool's nearest-neighbour distance). Targets made of common pool sequences form a group, resampled "
             "together. AUC: P(an unreached target lies farther than a reached one), with its group-bootstrap "
             f"interval; the verdict's level is {level:g}; within norm strata: among targets of one of "
             f"{NORM_STRATA} quantiles of the target's mean square. Boundary: the distance at which half the targets "
             "are reached (a logistic in log distance); its interval spans at least the gap between the farthest "
             "reached and the nearest unreached target where that separates them all.", "",
             "| distance | targets (groups) | AUC [interval] | AUC within norm strata [interval] | boundary [interval] "
             "| Spearman (distance, relative MSE) | experiments' boundaries agree |", "|---|---|---|---|---|---|---|"]
    for name in DISTANCES:
        for group, s in [("all", result[name]["pooled"]), *result[name]["by_experiment"].items()]:
            agreed = agree(result[name]["by_experiment"]) if group == "all" else None
            within = _interval(s["auc_within_norm"], s["auc_within_norm_interval"]) if group == "all" else "–"
            group = group if group == "all" else experiments.get(group).label
            lines.append(f"| {name} ({group}) | {s['n_targets']} ({s['n_groups']}; {s['n_reached']} reached) | "
                         f"{_interval(s['auc'], s['auc_interval'])} | {within} | "
                         f"{_interval(s['boundary'], s['boundary_interval'])} | {_number(s['spearman'])} | "
                         f"{'–' if agreed is None else 'yes' if agreed else 'no'} |")
    lines += ["", "Share of each target's deviation from the pool mean outside the span of the pool's covariance "
              "(median; the whitened distance measures only the rest): " + ", ".join(
                  f"{experiments.get(e).label} {v:.2g}" for e, v in result["outside_median_by_experiment"].items()),
              "", "The experiment beyond the distance (cluster-robust score test of a logistic GEE, p): " + ", ".join(
                  f"{name} {_number(result[name]['experiment_beyond_p'], '.2g')}" for name in DISTANCES)]
    return "\n".join(lines) + "\n"
