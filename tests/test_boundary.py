"""The boundary analysis on cases whose answer is known: a step in distance is found where it
is, a label that alone decides is not mistaken for distance, the whitened distance of a draw
from the pool's Gaussian has the chi-square mean, a pool member is not at distance 0 from
itself, and energy outside the pool's span is reported, not hidden or made infinite."""

import numpy as np
import pytest

from reachability import boundary
from reachability import findings as F
from reachability import guide

SETTINGS = dict(confidence=0.95, alpha=0.05, bootstrap_resamples=300, seed=0, boundary_auc=0.9)


def targets(distance: np.ndarray, reached: np.ndarray, experiments: list[str]) -> list[dict]:
    """targets.csv rows with both distances equal (what the analysis reads)."""
    return [{"site": "hs4", "experiment": e, "reached": bool(r), "relative_mse": 1e-4 if r else 0.5,
             "whitened": float(d), "nearest": float(d), "outside": 0.0} for d, r, e in zip(distance, reached, experiments)]


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
    row = guide.manifold_boundary(result, SETTINGS)
    assert row.verdict == F.HOLDS, row


def test_the_boundary_interval_covers_the_true_step_at_about_its_level():
    """Over 20 replicate studies the 95 % interval holds the true boundary (3) in about 19."""
    covered = 0
    for seed in range(20):
        d, reached, _ = shared_step(seed)
        low, high = boundary.separation(d, reached, d, SETTINGS)["boundary_interval"]
        covered += low <= 3.0 <= high
    assert covered >= 16


def test_distance_and_experiment_confounded_is_inconclusive():
    """Exp 1 all reached near the pool, Exp 2b all unreached far from it: distance separates
    perfectly, but so does the experiment; no experiment has a boundary of its own."""
    rng = np.random.default_rng(5)
    d = np.r_[rng.uniform(0.5, 1.5, 40), rng.uniform(5, 15, 40)]
    result = boundary.analyse(targets(d, np.arange(80) < 40, ["experiment1"] * 40 + ["experiment2b"] * 40), SETTINGS)
    assert result["whitened"]["pooled"]["auc"] == 1.0
    row = guide.manifold_boundary(result, SETTINGS)
    assert row.verdict == F.OPEN and "confounded" in row.note


def test_experiments_whose_boundaries_differ_are_not_one_boundary():
    """Each experiment has a sharp step, but at 1 and at 10: distance separates well within each,
    yet no one distance sets reachability across them."""
    (d1, r1), (d2, r2) = stepped(150, 1.0, 0, width=0.05), stepped(150, 10.0, 1, width=0.05)
    names = ["experiment1"] * 150 + ["experiment2b"] * 150
    result = boundary.analyse(targets(np.concatenate([d1, d2]), np.concatenate([r1, r2]), names), SETTINGS)
    assert boundary.agree(result["whitened"]["by_experiment"]) is False
    assert result["whitened"]["experiment_beyond_p"] < 1e-6  # the experiment moves the boundary
    assert guide.manifold_boundary(result, SETTINGS).verdict == F.FAILS


def test_reached_set_by_the_experiment_alone_at_equal_distances_does_not_hold():
    rng = np.random.default_rng(3)
    d = np.exp(rng.uniform(np.log(0.3), np.log(30), 160))
    names = ["experiment1"] * 80 + ["experiment2b"] * 80
    result = boundary.analyse(targets(d, np.arange(160) < 80, names), SETTINGS)
    assert result["whitened"]["experiment_beyond_p"] < 1e-6
    assert result["whitened"]["pooled"]["auc_interval"][1] < 0.9
    row = guide.manifold_boundary(result, SETTINGS)
    assert row.verdict == F.FAILS, row
    assert F.adjust([row])[0].verdict == F.FAILS  # judged again on its Holm-adjusted p


def test_every_target_reached_has_no_boundary_to_find():
    d = np.linspace(0.5, 5, 20)
    result = boundary.analyse(targets(d, np.ones(20, bool), ["experiment1"] * 20), SETTINGS)
    assert result["whitened"]["pooled"]["boundary"] is None
    assert guide.manifold_boundary(result, SETTINGS).verdict == F.OPEN


def test_the_whitened_distance_of_a_draw_from_the_pools_gaussian_has_the_chi_square_mean():
    """d² of a draw from N(μ, Σ) is χ² with d degrees of freedom: d²/d has mean 1."""
    rng = np.random.default_rng(0)
    d, s = 6, 3
    mean, root = rng.normal(size=(s, d)) * 3, rng.normal(size=(s, d, d))

    def draw(n):
        return mean + np.einsum("sij,nsj->nsi", root, rng.standard_normal((n, s, d)))

    out = boundary.whitened(draw(4000), draw(3000))
    assert (out["rank"] == d).all()
    assert np.mean(out["whitened_by_position"] ** 2) == pytest.approx(1.0, abs=0.03)
    assert np.abs(out["outside"]).max() < 1e-9
    far = boundary.whitened(draw(4000), mean[None] + 5 * np.einsum("sij,nsj->nsi", root, rng.standard_normal((500, s, d))))
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
    out = boundary.whitened(pool, points)
    assert (out["rank"] == d - 1).all()
    assert out["outside"][0] == pytest.approx(1.0) and out["whitened"][0] == pytest.approx(0.0, abs=1e-6)
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
