import numpy as np
import pytest
import torch

from reachability.forward import residuals_of_tokens
from reachability.functional import kl_from_site
from reachability.perturbation import kl_vs_epsilon, perturbation_kl, rms, unit_directions
from reachability.placement import epsilon_of_error, place, predicted_kl
from reachability.sites import Site


def test_kl_grows_with_epsilon(tiny_lm):
    tokens = torch.randint(0, 97, (6, 10), generator=torch.Generator().manual_seed(1))
    for kind in ("isotropic", "toward_real"):
        curves = kl_vs_epsilon(tiny_lm, Site("block_output", 2), tokens, 4, [0.0, 0.5, 2.0, 8.0], 3, kind, seed=0)
        for kl in curves.values():
            assert kl[1] < kl[2] < kl[3] and kl[3] > 1e-5, kl


def test_directions_are_unit_and_toward_other_sequences():
    h = torch.randn(5, 8)
    g = torch.Generator().manual_seed(0)
    for kind in ("isotropic", "toward_real"):
        v = unit_directions(h, kind, 7, g)
        assert v.shape == (5, 7, 8) and torch.allclose(v.norm(dim=-1), torch.ones(5, 7), atol=1e-5)
    v = unit_directions(h, "toward_real", 7, g)
    for i in range(5):  # every direction points from h_i to some other h_j
        candidates = torch.nn.functional.normalize(h - h[i], dim=-1)
        sims = v[i] @ candidates.T
        assert (sims.max(dim=-1).values > 0.9999).all() and (sims[:, i].abs() < 1e-6).all()
    with pytest.raises(ValueError):
        unit_directions(h, "sideways", 1, g)


def test_epsilon_of_an_error_and_the_curves_prediction_in_log_log():
    target = np.full((2, 4), 2.0)  # RMS 2 at each position
    achieved = target + np.array([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    assert epsilon_of_error(achieved, target).tolist() == [0.5, 0.0]
    assert rms(torch.full((3,), 2.0)) == 2.0
    grid, curve = [0.5, 1.0, 2.0], np.array([0.025, 0.1, 0.4])  # KL ∝ ε²: exact in log-log
    predicted, below, above = predicted_kl(grid, curve, np.array([0.7, 1.0, 0.1, 9.0]))
    np.testing.assert_allclose(predicted[:2], [0.1 * 0.49, 0.1])
    assert np.isnan(predicted[2:]).all() and below.tolist() == [False, False, True, False]
    assert above.tolist() == [False, False, False, True]


def notebook_loop(lm, site, tokens, token_index, epsilons, directions):
    """Notebook 004's way: one full-model forward per (sequence, ε, direction), the residual
    moved by a hook on the module that produces the site, logits and KL on the CPU."""
    from reachability.functional import kl_divergence

    module = lm.blocks[site.layer - 1]
    base = lm.model(input_ids=tokens).logits[:, token_index:].cpu()
    h = residuals_of_tokens(lm, site, tokens)[:, token_index]
    out = torch.zeros(len(epsilons), len(tokens), directions.shape[1])
    for e, eps in enumerate(epsilons):
        for i in range(len(tokens)):
            for k in range(directions.shape[1]):
                delta = eps * rms(h[i]) * directions[i, k]

                def move(mod, args, output, delta=delta):
                    hidden = output[0] if isinstance(output, tuple) else output
                    hidden = hidden.clone()
                    hidden[:, token_index] += delta
                    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

                handle = module.register_forward_hook(move)
                try:
                    logits = lm.model(input_ids=tokens[i:i + 1]).logits[0, token_index:].cpu()
                finally:
                    handle.remove()
                out[e, i, k] = kl_divergence(logits, base[i]).mean()
    return out


def test_batched_perturbations_equal_one_forward_per_perturbation(tiny_lm):
    site, token_index, epsilons = Site("block_output", 2), 3, [0.0, 0.5, 2.0]
    tokens = torch.randint(0, 97, (4, 8), generator=torch.Generator().manual_seed(5))
    h = residuals_of_tokens(tiny_lm, site, tokens)
    v = unit_directions(h[:, token_index], "isotropic", 3, torch.Generator().manual_seed(0))
    batched = perturbation_kl(tiny_lm, site, h, token_index, epsilons, v, batch_size=5)["perturbed_base"]
    assert batched.shape == (3, 4, 3, 5)
    expected = notebook_loop(tiny_lm, site, tokens, token_index, epsilons, v)
    torch.testing.assert_close(batched.mean(-1), expected, rtol=1e-3, atol=1e-7)
    assert (batched[1:, ..., 0] > 0).all() and (batched[0] == 0).all()  # the moved token always changes


def test_toward_real_never_pairs_a_sequence_with_an_identical_residual():
    h = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # 0 and 1 share their residual
    v = unit_directions(h, "toward_real", 50, torch.Generator().manual_seed(0))
    assert torch.isfinite(v).all() and torch.allclose(v.norm(dim=-1), torch.ones(4, 50))
    with pytest.raises(ValueError, match="no direction toward real data"):
        unit_directions(torch.ones(3, 2), "toward_real", 2, torch.Generator())


def moved(h, eps, generator):
    """h [N, S, d] with every position moved by eps × its RMS along a random unit direction."""
    v = torch.nn.functional.normalize(torch.randn(h.shape, generator=generator), dim=-1)
    return h + eps * rms(h)[..., None] * v


def test_both_sides_of_the_placement_are_the_same_quantity(neox_lm):
    """A known answer: residuals moved at every position by ε × RMS along the curve's own
    directions, taken as 'achieved' against the unmoved 'target', give exactly the curve's median."""
    from reachability.perturbation import placement_curve

    site, epsilons = Site("block_output", 2), [0.25, 0.5, 1.0]
    tokens = torch.randint(0, 97, (6, 8), generator=torch.Generator().manual_seed(4))
    h = residuals_of_tokens(neox_lm, site, tokens)
    curve = placement_curve(neox_lm, site, tokens, epsilons, 1, "isotropic", seed=1)
    generator = torch.Generator().manual_seed(1)  # the curve's directions, drawn as it draws them
    v = torch.stack([unit_directions(h[:, p], "isotropic", 1, generator) for p in range(8)], dim=2)[:, 0]
    achieved = h + 0.5 * rms(h)[..., None] * v
    measured = kl_from_site(neox_lm, site, h, achieved).numpy()  # KL(target ‖ achieved) per position
    eps = epsilon_of_error(achieved.numpy(), h.numpy())
    np.testing.assert_allclose(eps, 0.5, rtol=1e-5)
    placed = place(epsilons, curve, eps, measured)
    assert placed["median_measured_kl"] == pytest.approx(float(curve[1]), rel=1e-4)
    assert placed["median_predicted_kl"] == pytest.approx(float(curve[1]), rel=1e-4)
    assert placed["n_placed"] == placed["n_points"] == 6 * 8


@pytest.mark.parametrize("site", [Site("hidden_states", 3), Site("block_output", 1)])
def test_random_errors_of_known_size_are_placed_at_their_kl_or_flagged(neox_lm, site):
    """'Achieved' residuals that are random perturbations of known ε (on a grid point, between
    grid points, below the smallest): the KL the curve predicts is within 1.25x of the KL
    measured, or the point is flagged as outside the curve and not placed."""
    from reachability.perturbation import placement_curve

    grid = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
    curve = placement_curve(neox_lm, site, torch.randint(0, 97, (24, 10), generator=torch.Generator().manual_seed(7)),
                            grid, 8, "isotropic", seed=3)
    targets = residuals_of_tokens(neox_lm, site, torch.randint(0, 97, (24, 10), generator=torch.Generator().manual_seed(8)))
    generator = torch.Generator().manual_seed(9)
    for eps in (0.5, 0.35, 0.02):  # on the grid, between two points, below the smallest
        achieved = moved(targets, eps, generator)
        measured = kl_from_site(neox_lm, site, targets, achieved).numpy()
        placed = place(grid, curve, epsilon_of_error(achieved.numpy(), targets.numpy()), measured)
        if eps < grid[0]:
            assert placed["n_placed"] == 0 and placed["below_range"] == 1.0 and placed["median_predicted_kl"] is None
        else:
            assert 1 / 1.25 < placed["ratio"] < 1.25, (eps, placed)
            assert placed["below_range"] == placed["above_range"] == 0


def test_a_derived_grid_spans_every_error():
    from reachability.placement import grid_for

    grid = grid_for([[0.01, 0.3, np.nan], [[2.0, 0.0]]], points=8)
    assert len(grid) == 8 and grid[0] < 0.01 and grid[-1] > 2.0
    assert np.allclose(np.diff(np.log(grid)), np.log(grid[1] / grid[0]))  # log-spaced


def test_kls_below_float32_resolution_are_flagged_not_placed():
    """A curve KL = 0.1 ε² measured from ε = 1e-4 (KL 1e-9) to 1: its points below float32's
    resolution (ε ≤ 1e-3) are not part of it. Errors at ε = 0.3 whose KL is measured on the
    curve are placed at ratio 1; errors at ε = 5e-3, inside the curve, whose KL is rounding (0,
    or 2e-8) are flagged below resolution; an error at ε = 5e-4 with a resolved KL lies below
    the resolved curve and is flagged below its range."""
    grid = np.geomspace(1e-4, 1.0, 13)
    eps = np.r_[np.full(6, 0.3), np.full(4, 5e-3), 5e-4]
    measured = np.r_[np.full(6, 0.1 * 0.09), [0.0, 0.0, 2e-8, 2e-8], 1e-6]
    placed = place(grid, 0.1 * grid**2, eps, measured)
    assert placed["n_points"] == 11 and placed["n_placed"] == 6
    assert placed["ratio"] == pytest.approx(1.0, rel=1e-6) and placed["median_epsilon"] == pytest.approx(0.3)
    assert placed["below_resolution"] == pytest.approx(4 / 11) and placed["below_range"] == pytest.approx(1 / 11)
    assert placed["resolution"] == pytest.approx(1.19e-7, rel=0.01)
