"""The boundary analysis on cases whose answer is known: a step in distance is found where it
is, one clean threshold shared by every experiment holds, a label that alone decides is not
mistaken for distance, nor is the norm; a pool member and a fresh draw of the pool's Gaussian
are both at whitened distance 1; targets made of common pool sequences are resampled and
tested as the groups they are (the random-effect null holds its level); a pool member is not
at distance 0 from itself; energy outside the pool's span is reported, not hidden or made
infinite."""

import numpy as np
import pytest

from reachability import boundary
from reachability import findings as F
from reachability import guide

SETTINGS = dict(confidence=0.95, alpha=0.05, bootstrap_resamples=300, seed=0, boundary_auc=0.9)


def targets(distance: np.ndarray, reached: np.ndarray, experiments: list[str], sources=None, norm=None) -> list[dict]:
    """targets.csv rows with both distances equal (what the analysis reads); by default each made
    of no pool sequence (a group of its own) and of unit mean square."""
    sources = [[]] * len(distance) if sources is None else sources
    norm = np.ones(len(distance)) if norm is None else norm
    return [{"site": "hs4", "experiment": e, "reached": bool(r), "relative_mse": 1e-4 if r else 0.5,
             "whitened": float(d), "nearest": float(d), "outside": 0.0, "sources": made, "target_mean_square": float(n)}
            for d, r, e, made, n in zip(distance, reached, experiments, sources, norm)]


def stepped(n: int, edge: float, seed: int, width: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Distances log-uniform over [0.3, 30]; reached with a logistic probability falling through
    `edge` (in log distance, of `width`)."""
    rng = np.random.default_rng(seed)
    d = np.exp(rng.uniform(np.log(0.3), np.log(30), n))
    p = 1 / (1 + np.exp((np.log(d) - np.log(edge)) / width))
    return d, rng.random(n) < p


def shared_step(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    parts = [stepped(80, 3.0, 10 * seed + k) for k in range(3)]
    names = [e for e in ("experiment1", "experiment3", "experiment4") for _ in range(80)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), names


def test_a_step_in_distance_shared_by_every_experiment_holds_with_its_boundary_recovered():
    result = boundary.analyse(targets(*shared_step(0)), SETTINGS)
    pooled = result["whitened"]["pooled"]
    low, high = pooled["boundary_interval"]
    assert low < pooled["boundary"] < high and high / low < 1.5
    assert pooled["auc_interval"][0] > 0.9 and pooled["spearman"] > 0.5
    assert boundary.agree(result["whitened"]["by_experiment"]) is True
    assert result["whitened"]["experiment_beyond_p"] > 0.01  # the distance explains it all
    row, _ = guide.manifold_boundary(result, SETTINGS)
    assert row.verdict == F.HOLDS, row


def test_the_boundary_interval_covers_the_true_step_at_about_its_level():
    """Over 20 replicate studies the 95 % interval holds the true boundary (3) in about 19."""
    covered = 0
    for seed in range(20):
        d, reached, _ = shared_step(seed)
        low, high = boundary.separation(d, reached, d, np.arange(len(d)), SETTINGS)["boundary_interval"]
        covered += low <= 3.0 <= high
    assert covered >= 16


def test_distance_and_experiment_confounded_is_inconclusive():
    """Exp 1 all reached near the pool, Exp 2b all unreached far from it: distance separates
    perfectly, but so does the experiment; no experiment has a boundary of its own."""
    rng = np.random.default_rng(5)
    d = np.r_[rng.uniform(0.5, 1.5, 40), rng.uniform(5, 15, 40)]
    result = boundary.analyse(targets(d, np.arange(80) < 40, ["experiment1"] * 40 + ["experiment2b"] * 40), SETTINGS)
    assert result["whitened"]["pooled"]["auc"] == 1.0
    row, _ = guide.manifold_boundary(result, SETTINGS)
    assert row.verdict == F.OPEN and "confounded" in row.note


def test_experiments_whose_boundaries_differ_are_not_one_boundary():
    """Each experiment has a sharp step, but at 1 and at 10: distance separates well within each,
    yet no one distance sets reachability across them."""
    (d1, r1), (d2, r2) = stepped(150, 1.0, 0, width=0.05), stepped(150, 10.0, 1, width=0.05)
    names = ["experiment1"] * 150 + ["experiment2b"] * 150
    result = boundary.analyse(targets(np.concatenate([d1, d2]), np.concatenate([r1, r2]), names), SETTINGS)
    assert boundary.agree(result["whitened"]["by_experiment"]) is False
    assert result["whitened"]["experiment_beyond_p"] < 1e-6  # the experiment moves the boundary
    assert guide.manifold_boundary(result, SETTINGS)[0].verdict == F.FAILS


def test_reached_set_by_the_experiment_alone_at_equal_distances_does_not_hold():
    rng = np.random.default_rng(3)
    d = np.exp(rng.uniform(np.log(0.3), np.log(30), 160))
    names = ["experiment1"] * 80 + ["experiment2b"] * 80
    result = boundary.analyse(targets(d, np.arange(160) < 80, names), SETTINGS)
    assert result["whitened"]["experiment_beyond_p"] < 1e-6
    assert result["whitened"]["pooled"]["auc_interval"][1] < 0.9
    row, _ = guide.manifold_boundary(result, SETTINGS)
    assert row.verdict == F.FAILS, row
    assert F.adjust([row])[0].verdict == F.FAILS  # judged again on its Holm-adjusted p


def test_every_target_reached_has_no_boundary_to_find():
    d = np.linspace(0.5, 5, 20)
    result = boundary.analyse(targets(d, np.ones(20, bool), ["experiment1"] * 20), SETTINGS)
    assert result["whitened"]["pooled"]["boundary"] is None
    assert [r.verdict for r in guide.manifold_boundary(result, SETTINGS)] == [F.OPEN, F.OPEN]


def test_the_whitened_distance_of_a_draw_from_the_pools_gaussian_has_the_chi_square_mean():
    """d² of a draw from N(μ, Σ) is χ² with d degrees of freedom: d²/d has mean 1."""
    rng = np.random.default_rng(0)
    d, s = 6, 3
    mean, root = rng.normal(size=(s, d)) * 3, rng.normal(size=(s, d, d))

    def draw(n):
        return mean + np.einsum("sij,nsj->nsi", root, rng.standard_normal((n, s, d)))

    out = boundary.whitened(draw(4000), draw(3000), [[]] * 3000)
    assert (out["rank"] == d).all()
    assert np.mean(out["whitened_by_position"] ** 2) == pytest.approx(1.0, abs=0.03)
    assert np.abs(out["outside"]).max() < 1e-9
    far = boundary.whitened(draw(4000), mean[None] + 5 * np.einsum("sij,nsj->nsi", root, rng.standard_normal((500, s, d))),
                            [[]] * 500)
    assert np.mean(far["whitened_by_position"] ** 2) == pytest.approx(25.0, rel=0.1)


def test_a_pool_member_left_out_is_at_its_leave_one_out_distance_not_zero():
    rng = np.random.default_rng(1)
    pool = rng.normal(size=(200, 4, 5))
    kept = boundary.nearest(pool, pool[:10], [[]] * 10)
    left_out = boundary.nearest(pool, pool[:10], [[t] for t in range(10)])
    assert np.allclose(kept["nearest"], 0, atol=1e-6)
    assert (left_out["nearest"] > 0.3).all() and 0.6 < np.median(left_out["nearest"]) < 1.6
    # the whole pool against itself, each left out: the median ratio at each position is 1
    everyone = boundary.nearest(pool, pool, [[t] for t in range(200)])
    assert np.median(everyone["nearest_by_position"], axis=0) == pytest.approx(np.ones(4), rel=1e-4)


def test_shared_prefixes_do_not_collapse_the_nearest_neighbour_scale():
    """A causal model's residual at position 0 depends only on the first token: sequences that
    start alike share it exactly. The scale comes from the distinct residuals, so it stays
    positive and every distance finite; a target on a shared residual is at 0 there."""
    rng = np.random.default_rng(6)
    pool = rng.normal(size=(100, 3, 4))
    pool[:, 0] = rng.normal(size=(3, 4))[rng.integers(0, 3, 100)]  # three first tokens
    out = boundary.nearest(pool, pool[:5], [[t] for t in range(5)])
    assert np.isfinite(out["nearest_by_position"]).all() and (out["nearest_by_position"][:, 1:] > 0).all()
    assert np.allclose(out["nearest_by_position"][:, 0], 0, atol=1e-6)
    same = boundary.nearest(np.repeat(pool[:1], 10, axis=0), pool[:2], [[], []])  # one residual per position
    assert np.isnan(same["nearest"]).all()


def test_energy_outside_a_hyperplane_pool_is_reported_beside_a_finite_in_span_distance():
    """A pool after a LayerNorm lies in the hyperplane of zero mean over dimensions: a target
    along its normal is entirely outside the span (share 1), not at an infinite distance and not
    silently at distance 0; the in-span part of a mixed target is measured as if alone."""
    rng = np.random.default_rng(2)
    d = 8
    pool = rng.normal(size=(500, 2, d))
    pool -= pool.mean(axis=-1, keepdims=True)
    mean, normal = pool.mean(axis=0), np.ones(d) / np.sqrt(d)
    inside = pool[:1] - pool[:1].mean(axis=-1, keepdims=True) * 0  # a pool-like point, in the plane
    points = np.concatenate([mean[None] + 3 * normal, inside, inside + 2 * normal])
    out = boundary.whitened(pool, points, [[]] * 3)
    assert (out["rank"] == d - 1).all()
    assert out["outside"][0] == pytest.approx(1.0) and out["whitened"][0] < 0.1  # only the folds' means differ
    assert np.isfinite(out["whitened"]).all()
    assert out["whitened"][2] == pytest.approx(out["whitened"][1])
    deviation = inside - mean
    share = 4 / (4 + (deviation**2).sum(axis=-1))  # per position: |2n|² over the total
    assert out["outside"][2] == pytest.approx(share.mean())


def test_the_table_names_experiments_by_their_labels():
    parts = [stepped(40, 3.0, k) for k in range(2)]
    rows = targets(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                   ["experiment1"] * 40 + ["experiment3"] * 40)
    text = boundary.markdown(boundary.analyse(rows, SETTINGS), "hs4", 0.9)
    assert "whitened (Exp 3)" in text and "nearest (all)" in text and "Exp 1 0" in text


def test_auc_is_one_for_perfect_separation_and_about_a_half_for_none():
    far = np.array([5.0, 6, 7, 8])
    assert boundary.auc(np.r_[far, far / 10], np.r_[np.zeros(4, bool), np.ones(4, bool)]) == 1.0
    rng = np.random.default_rng(4)
    d = rng.random(2000)
    assert boundary.auc(d, rng.random(2000) < 0.5) == pytest.approx(0.5, abs=0.04)
    assert boundary.auc(d[:5], np.ones(5, bool)) is None


@pytest.mark.parametrize("spread", [0.0, 3.0])  # the covariance's eigenvalues: equal, or over three decades
def test_pool_members_and_fresh_draws_of_the_pools_gaussian_are_both_at_one(spread):
    """A pool of n = 300 from N(0, Σ) in d = 192 (the agenda's 1200 in 768, scaled down): a pool
    member measured against a covariance it helped estimate sat at 1.00 and a fresh draw at
    1.67 (n/(n-d-1) in the square). Each held out of its covariance, both are at 1."""
    rng = np.random.default_rng(7)
    n, d, s = 300, 192, 2
    scale = 10 ** (spread * rng.random((s, d)) / 2)

    def draw(m):
        return rng.standard_normal((m, s, d)) * scale

    pool, fresh = draw(n), draw(200)
    members = boundary.whitened(pool, pool[:60], [[t] for t in range(60)])["whitened"]
    drawn = boundary.whitened(pool, fresh, [[]] * 200)["whitened"]
    assert np.mean(members**2) == pytest.approx(1.0, abs=0.08)
    assert np.mean(drawn**2) == pytest.approx(1.0, abs=0.08)
    assert np.median(drawn) / np.median(members) == pytest.approx(1.0, abs=0.06)


def clustered_study(rng: np.random.Generator, sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A study of the agenda's shape: 100 Exp 1 targets; Exp 3's eight α of each of 20 pairs and
    Exp 4's eleven f of each of 50 targets, made of Exp 1's sequences; 100 Exp 2a and 100 Exp 2b
    targets made of none. Each group of targets made of common sequences shares a random effect
    of `sd` on the log-odds of being reached, which otherwise follows the distance alone.
    (distance, reached, experiment, group) of each target."""
    sources = [[t] for t in range(100)] + [[2 * p, 2 * p + 1] for p in range(20) for _ in range(8)] + \
        [[t] for t in range(50) for _ in range(11)] + [[]] * 200
    names = np.repeat(["experiment1", "experiment3", "experiment4", "experiment2a", "experiment2b"],
                      [100, 160, 550, 100, 100])
    group = boundary.groups(sources, 100)[0]
    z = rng.standard_normal(len(sources))
    reached = rng.random(len(z)) < 1 / (1 + np.exp(1.5 * z - rng.normal(0, sd, group.max() + 1)[group]))
    return np.exp(z), reached, names, group


@pytest.mark.parametrize("sd", [1.0, 2.0])
def test_a_shared_random_effect_is_not_an_experiment_effect(sd):
    """Under the null — reachability follows the distance, plus an effect shared by each group of
    targets made of common pool sequences — the test of the experiment beyond the distance
    rejects at about its level, where the likelihood-ratio test that took the 1010 targets as
    independent rejected 7 % (sd 1) and 14 % (sd 2) of the time (400 replicates each)."""
    rng = np.random.default_rng(11)
    p = [boundary.experiment_beyond_distance(*clustered_study(rng, sd)) for _ in range(400)]
    assert np.mean(np.array(p) < 0.05) <= 0.06


def test_the_score_test_is_statsmodels_gee_score_test():
    """The same statistic as statsmodels' logistic GEE (independence) score test of the
    experiment against the fit in log distance alone, grouped the same way."""
    from statsmodels.genmod.cov_struct import Independence
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_estimating_equations import GEE

    distance, reached, names, group = clustered_study(np.random.default_rng(2), 1.0)
    z = (np.log(distance) - np.log(distance).mean()) / np.log(distance).std()
    alone = np.stack([np.ones_like(z), z], axis=1)
    both = np.concatenate([alone, np.stack([names == n for n in dict.fromkeys(names)], axis=1)[:, 1:]], axis=1)
    null = GEE(reached.astype(float), alone, groups=group, family=Binomial(), cov_struct=Independence()).fit()
    gee = GEE(reached.astype(float), both.astype(float), groups=group, family=Binomial(),
              cov_struct=Independence()).compare_score_test(null)
    assert boundary.experiment_beyond_distance(distance, reached, names, group) == pytest.approx(gee["p-value"], rel=1e-6)


def test_targets_made_of_common_sequences_are_resampled_together():
    """Five copies of every target, each copy made of the same pool sequence: one group per
    target, so the intervals are those of one copy each, not five times more certain."""
    d, reached = stepped(80, 3.0, 12)
    once = boundary.separation(d, reached, d, boundary.groups([[t] for t in range(80)], 80)[0], SETTINGS)
    made = [[t] for t in range(80) for _ in range(5)]
    fivefold = boundary.separation(np.repeat(d, 5), np.repeat(reached, 5), np.repeat(d, 5),
                                   boundary.groups(made, 80)[0], SETTINGS)
    assert fivefold["n_groups"] == 80 and fivefold["n_targets"] == 400
    for key in ("auc_interval", "boundary_interval"):
        assert fivefold[key] == pytest.approx(once[key], rel=0.02), key


def test_one_clean_threshold_shared_by_every_experiment_holds():
    """The true distance given, every target reached exactly below 3, the distances of each
    experiment's conditions apart as the experiments make them: Exp 3's α at 1 (α = 0, 1) to 7
    (α = 2), Exp 4's f at 1 (f = 0) and 6 to 15 (f ≥ 0.1). Each experiment is perfectly
    separated in a gap of its own — Exp 3's between α = 0.5 (2) and α = 1.5 (4.5), Exp 4's
    between 1 and 6 — where a boundary bootstrap sits in the middle with a narrow interval, so
    the two disagreed. Spanning their gaps, they overlap, and the row holds."""
    rng = np.random.default_rng(8)
    at_alpha = {-0.5: 4.5, 0.0: 1.0, 0.25: 1.6, 0.5: 2.0, 0.75: 1.6, 1.0: 1.0, 1.5: 4.5, 2.0: 7.0}
    d = np.r_[np.ones(20), np.tile(list(at_alpha.values()), 10), np.tile(np.r_[1.0, 5 + 10 * np.arange(1, 11) / 10], 10)]
    d = d * np.exp(rng.normal(0, 0.05, len(d)))
    names = ["experiment1"] * 20 + ["experiment3"] * 80 + ["experiment4"] * 110
    sources = [[t] for t in range(20)] + [[2 * p, 2 * p + 1] for p in range(10) for _ in at_alpha] + \
        [[t] for t in range(10) for _ in range(11)]
    result = boundary.analyse(targets(d, d < 3, names, sources), SETTINGS)
    for e in ("experiment3", "experiment4"):
        s = result["whitened"]["by_experiment"][e]
        low, high = s["boundary_interval"]
        assert low <= s["gap"][0] < 3 < s["gap"][1] <= high, e
    assert boundary.agree(result["whitened"]["by_experiment"]) is True
    assert result["whitened"]["experiment_beyond_p"] == 1.0  # distance alone decides every target
    assert [r.verdict for r in guide.manifold_boundary(result, SETTINGS)] == [F.HOLDS, F.HOLDS]


def test_a_separation_the_norm_makes_is_named_as_such():
    """Reachability follows the target's norm, and the norm rises with the distance: reached and
    unreached targets separate by distance (the first row holds, and says only that), but not
    among targets of like norm (the control does not hold). Where the distance decides and the
    norm merely rises with it, both hold."""
    rng = np.random.default_rng(9)
    log_norm = rng.uniform(-4, 4, 300)
    d = np.exp(log_norm + rng.normal(0, 1.0, 300))
    names = [e for e in ("experiment1", "experiment3", "experiment4") for _ in range(100)]
    by_norm = boundary.analyse(targets(d, log_norm < 0, names, norm=np.exp(log_norm)), SETTINGS)
    rows = guide.manifold_boundary(by_norm, SETTINGS)
    assert rows[0].observation == "Reached and unreached targets separate by distance from the data manifold"
    assert [r.verdict for r in rows] == [F.HOLDS, F.FAILS], rows
    assert rows[1].high < 0.9 and rows[1].test is None and not rows[1].uses_p
    by_distance = boundary.analyse(targets(d, d < 1, names, norm=np.exp(log_norm)), SETTINGS)
    assert [r.verdict for r in guide.manifold_boundary(by_distance, SETTINGS)] == [F.HOLDS, F.HOLDS]
