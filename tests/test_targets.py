import numpy as np
import pytest

from reachability.experiments import get
from reachability.targets import (
    distribution_matched, interpolate, isotropic, pair_of, position_statistics, principal_statistics,
    replace_dimensions, replace_principal, steer, steering_direction,
)

S, D = 5, 6


MIX = np.random.default_rng(0).standard_normal((S, D, D))  # the pool's true Σᵢ = MIXᵢ MIXᵢᵀ


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(1)
    return (np.einsum("sij,nsj->nsi", MIX, rng.standard_normal((4000, S, D))) + 3.0).astype(np.float32)


@pytest.fixture(scope="module")
def stats(pool):
    return position_statistics(pool)


def test_statistics_recover_the_pools_true_distribution(pool, stats):
    """The pool was drawn from N(3, MIXᵢ MIXᵢᵀ): the statistics converge to those parameters."""
    np.testing.assert_allclose(stats["mean"], 3.0, atol=0.15)
    for i in range(S):
        a = stats["sqrt_cov"][i].astype(np.float64)
        true = MIX[i] @ MIX[i].T
        np.testing.assert_allclose(a @ a.T, true, atol=0.1 * np.abs(true).max())
    assert stats["typical_norm"].shape == (S,) and stats["dim_std"].shape == (D,)
    mean_square_norm = (np.einsum("sii->s", MIX @ MIX.transpose(0, 2, 1)) + D * 9.0)
    assert np.all(stats["typical_norm"] ** 2 < mean_square_norm) and np.all(stats["typical_norm"] ** 2 > 0.8 * mean_square_norm)


def test_statistics_of_layernorm_outputs_are_rank_deficient_but_fine():
    x = np.random.default_rng(1).standard_normal((500, S, D))
    x = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)  # each vector in a hyperplane
    st = position_statistics(x)
    sample = distribution_matched(st["mean"], st["sqrt_cov"], 0)
    assert np.isfinite(sample).all() and abs(sample.sum(-1)).max() < 1e-4  # stays in the hyperplane


def test_distribution_matched_targets_follow_the_pool_distribution(stats):
    samples = np.stack([distribution_matched(stats["mean"], stats["sqrt_cov"], t) for t in range(3000)])
    np.testing.assert_allclose(samples.mean(0), stats["mean"], atol=0.25)
    a = stats["sqrt_cov"][2].astype(np.float64)
    np.testing.assert_allclose(np.cov(samples[:, 2, :], rowvar=False), a @ a.T, rtol=0.15, atol=0.3)
    assert np.array_equal(samples[7], distribution_matched(stats["mean"], stats["sqrt_cov"], 7))


def test_isotropic_targets_have_the_typical_norm_and_no_preferred_direction(stats):
    t = isotropic(stats["typical_norm"], D, 3)
    np.testing.assert_allclose(np.linalg.norm(t, axis=-1), stats["typical_norm"], rtol=1e-5)
    many = np.stack([isotropic(np.full(S, 2.0), D, i) for i in range(4000)])  # norm 2 at every position
    second_moment = np.einsum("nsi,nsj->sij", many, many) / len(many)  # E[x xᵀ] per position
    for i in range(S):
        np.testing.assert_allclose(second_moment[i], 4.0 / D * np.eye(D), atol=0.06)
    assert not np.array_equal(t, isotropic(stats["typical_norm"], D, 4))


def test_interpolation_and_pairs():
    a, b = np.ones((S, D)), np.zeros((S, D))
    assert interpolate(a, b, 1.0).tolist() == a.tolist() and interpolate(a, b, -0.5)[0, 0] == -0.5
    assert pair_of(0) == (0, 1) and pair_of(3) == (6, 7)


def test_dimension_replacement_uses_the_same_nested_dimensions_at_every_position(stats):
    target = np.full((S, D), 100.0, dtype=np.float32)
    assert np.array_equal(replace_dimensions(target, 0.0, stats["dim_std"], 1), target)
    assert not np.isclose(replace_dimensions(target, 1.0, stats["dim_std"], 1), 100.0).any()
    changed = [set(np.flatnonzero(replace_dimensions(target, f, stats["dim_std"], 1)[0] != 100.0)) for f in (0.34, 0.67)]
    assert len(changed[0]) == 2 and len(changed[1]) == 4 and changed[0] < changed[1]
    out = replace_dimensions(target, 0.5, stats["dim_std"], 1)
    assert all(set(np.flatnonzero(row != 100.0)) == set(np.flatnonzero(out[0] != 100.0)) for row in out)


def test_dimension_replacement_noise_has_the_dimension_std():
    big_d = 400
    std = np.linspace(0.5, 3.0, big_d).astype(np.float32)
    values = np.stack([replace_dimensions(np.zeros((S, big_d), np.float32), 1.0, std, t) for t in range(300)])
    np.testing.assert_allclose(values.reshape(-1, big_d).std(0), std, rtol=0.15)
    assert abs(values.mean()) < 0.05


def build_targets(experiment: str, condition: str, ids, real, stats):
    """An experiment's targets by its record's builder, with the demo's settings."""
    return get(experiment).make({"fractions": [0.0], "alphas": [0.25]}, condition, list(ids), real, stats)


def test_build_targets_dispatches_each_experiment(pool, stats):
    real = pool[:10]
    np.testing.assert_array_equal(build_targets("experiment1", "real", range(2, 4), real, stats), real[2:4])
    exp3 = build_targets("experiment3", "a0.25", range(1, 2), real, stats)
    np.testing.assert_allclose(exp3[0], 0.25 * real[2] + 0.75 * real[3], rtol=1e-5)
    exp4 = build_targets("experiment4", "f0", range(0, 3), real, stats)
    np.testing.assert_array_equal(exp4, real[:3])
    np.testing.assert_array_equal(build_targets("experiment4p", "f0", range(0, 3), real, stats), real[:3])
    top = build_targets("experiment4p", "f1", range(0, 3), real, stats)  # the pool's principal directions, all
    np.testing.assert_allclose(top, [replace_principal(real[t], 1.0, principal_statistics(real), t) for t in range(3)],
                               rtol=1e-5, atol=1e-5)
    assert build_targets("experiment2b", "isotropic", range(5), real, stats).shape == (5, S, D)
    with pytest.raises(ValueError, match="unknown experiment"):
        build_targets("experiment9", "x", range(1), real, stats)


EIGEN = np.array([9.0, 4.0, 2.0, 1.0, 0.25, 0.04])  # a pool with known, distinct principal variances
AXES = np.linalg.qr(np.random.default_rng(5).standard_normal((D, D)))[0]  # and known directions (columns)
CENTER = np.linspace(-1.0, 2.0, D)


@pytest.fixture(scope="module")
def principal():
    """Every position of the pool drawn from N(CENTER, AXES diag(EIGEN) AXESᵀ); pooled over positions."""
    z = np.random.default_rng(6).standard_normal((2000, S, D)) * np.sqrt(EIGEN)
    return principal_statistics((CENTER + z @ AXES.T).astype(np.float32))


def test_principal_statistics_recover_the_pools_directions_and_variances(principal):
    np.testing.assert_allclose(np.abs(np.sum(principal["directions"] * AXES.T, axis=1)), 1.0, atol=0.01)
    np.testing.assert_allclose(principal["projection_std"] ** 2, EIGEN, rtol=0.06)
    np.testing.assert_allclose(principal["projection_mean"], principal["directions"] @ CENTER, atol=0.05)


def test_principal_replacement_keeps_the_target_at_f0_and_nests_its_directions(principal):
    target = np.random.default_rng(7).standard_normal((S, D)).astype(np.float32) * 5
    assert np.array_equal(replace_principal(target, 0.0, principal, 3), target)
    u = principal["directions"]
    third, two_thirds = (replace_principal(target, f, principal, 3) @ u.T for f in (1 / 3, 2 / 3))
    kept = target.astype(np.float64) @ u.T
    np.testing.assert_allclose(third[:, 2:], kept[:, 2:], atol=1e-4)  # directions 3.. untouched at f = 1/3
    np.testing.assert_allclose(two_thirds[:, 4:], kept[:, 4:], atol=1e-4)
    np.testing.assert_allclose(third[:, :2], two_thirds[:, :2], atol=1e-5)  # the top two: the same draws
    assert not np.allclose(third[:, :2], kept[:, :2], atol=0.1)
    assert not np.allclose(replace_principal(target, 0.5, principal, 4), replace_principal(target, 0.5, principal, 3))


def test_principal_replacement_at_f1_draws_from_the_pools_distribution(principal):
    """At f = 1 nothing of the target is left: over many targets the replaced vectors have the
    pool's mean and covariance; at f = 1/2 the top half has the pool's variances, the rest is the target's."""
    target = np.full((S, D), 50.0, dtype=np.float32)
    full = np.stack([replace_principal(target, 1.0, principal, t) for t in range(1500)]).reshape(-1, D)
    truth = AXES @ np.diag(EIGEN) @ AXES.T
    np.testing.assert_allclose(np.cov(full, rowvar=False), truth, atol=0.08 * EIGEN.max())
    np.testing.assert_allclose(full.mean(0), CENTER, atol=0.1)
    half = np.stack([replace_principal(target, 0.5, principal, t) for t in range(1500)]).reshape(-1, D)
    projections = half @ principal["directions"].T
    np.testing.assert_allclose(projections[:, :3].var(0), EIGEN[:3], rtol=0.08)
    kept = principal["directions"][3:] @ target[0]
    np.testing.assert_allclose(projections[:, 3:], np.broadcast_to(kept, (len(half), 3)), atol=1e-3)


def test_a_steered_target_moves_by_epsilon_rms_along_the_direction_at_its_positions(tmp_path):
    """Notebook 004's perturbation as a target: each chosen position moves by exactly ε × its own
    RMS (‖h‖/√d) along the unit direction, the others stay; ε = 0 is the real target."""
    import torch

    target = np.random.default_rng(3).standard_normal((S, D)).astype(np.float32) * 4
    u = np.zeros(D)
    u[2] = 1.0
    assert np.array_equal(steer(target, 0.0, u, [1, 3]), target)
    moved = steer(target, 2.0, u, [1, 3])
    rms = np.sqrt((target.astype(np.float64) ** 2).mean(-1))
    np.testing.assert_allclose((moved - target)[[1, 3], 2], 2.0 * rms[[1, 3]], rtol=1e-5)
    assert np.array_equal(np.delete(moved, [1, 3], axis=0), np.delete(target, [1, 3], axis=0))
    assert np.array_equal(np.delete(moved, 2, axis=1), np.delete(target, 2, axis=1))
    everywhere = steer(target, 1.0, u, [])  # no positions named: every position
    np.testing.assert_allclose((everywhere - target)[:, 2], rms, rtol=1e-5)
    vector = np.arange(1.0, D + 1)
    np.save(tmp_path / "v.npy", vector)
    torch.save(torch.tensor(vector), tmp_path / "v.pt")
    torch.save(torch.nn.Parameter(torch.tensor(vector)), tmp_path / "p.pt")  # a trained vector, grad and all
    torch.save({"steering": torch.tensor(vector)}, tmp_path / "d.pt")  # a state dict of one tensor
    for name in ("v.npy", "v.pt", "p.pt", "d.pt"):
        np.testing.assert_allclose(steering_direction(str(tmp_path / name), D), vector / np.linalg.norm(vector))
    torch.save({"a": torch.tensor(vector), "b": torch.tensor(vector)}, tmp_path / "two.pt")
    with pytest.raises(ValueError, match="holds a dict, not a tensor"):
        steering_direction(str(tmp_path / "two.pt"), D)
    with pytest.raises(ValueError, match=r"experiments.steering.direction = .*v.npy holds 6 values, .* d_model = 7"):
        steering_direction(str(tmp_path / "v.npy"), D + 1)


def test_the_steering_record_builds_from_a_random_or_a_supplied_direction(pool, stats, tmp_path):
    real = pool[:4]
    spec = {"epsilons": [0, 1.0], "positions": [], "direction": None}
    np.testing.assert_array_equal(get("steering").make(spec, "e0", [0, 1], real, stats), real[:2])
    random = get("steering").make(spec, "e1", [0, 1], real, stats)
    step = (random - real[:2]) / np.sqrt((real[:2].astype(np.float64) ** 2).mean(-1, keepdims=True))
    np.testing.assert_allclose(np.linalg.norm(step, axis=-1), 1.0, rtol=1e-4)  # a unit direction, scaled by RMS
    assert not np.allclose(step[0, 0], step[1, 0], atol=1e-3)  # each target its own random direction
    np.save(tmp_path / "v.npy", np.ones(real.shape[-1]))
    supplied = get("steering").make({**spec, "direction": str(tmp_path / "v.npy")}, "e1", [0, 1], real, stats)
    shift = (supplied - real[:2]) / np.sqrt((real[:2].astype(np.float64) ** 2).mean(-1, keepdims=True))
    np.testing.assert_allclose(shift, 1 / np.sqrt(real.shape[-1]), rtol=1e-4)  # the same direction everywhere
