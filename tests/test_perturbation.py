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


def test_epsilon_of_an_error_and_the_curves_prediction():
    target = np.full((2, 4), 2.0)  # RMS 2 at each position
    achieved = target + np.array([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    assert epsilon_of_error(achieved, target).tolist() == [0.5, 0.0]
    assert rms(torch.full((3,), 2.0)) == 2.0
    assert predicted_kl([0, 1, 2], np.array([0.0, 0.1, 0.4]), np.array([0.5, 1.5, 9.0])).tolist() == [0.05, 0.25, 0.4]


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


def test_both_sides_of_the_placement_are_the_same_quantity(neox_lm):
    """A known answer: residuals moved at one token by ε × RMS along the curve's own
    directions, taken as 'achieved' against the unmoved 'target', have exactly the curve's
    per-position KL at that token; at the last layer (after the final norm) nothing after the
    token changes, so the notebook's average over token..S-1 is the token's KL / (S - token)."""
    site, token_index, epsilons = Site("hidden_states", neox_lm.n_layers), 5, [0.0, 0.5, 1.0, 2.0]
    tokens = torch.randint(0, 97, (3, 8), generator=torch.Generator().manual_seed(4))
    h = residuals_of_tokens(neox_lm, site, tokens)
    v = unit_directions(h[:, token_index], "isotropic", 2, torch.Generator().manual_seed(1))
    kl = perturbation_kl(neox_lm, site, h, token_index, epsilons, v)
    achieved = h.clone()
    achieved[:, token_index] += 1.0 * rms(h[:, token_index])[:, None] * v[:, 0]
    measured = kl_from_site(neox_lm, site, h, achieved)  # KL(target ‖ achieved) per position
    torch.testing.assert_close(measured[:, token_index], kl["base_perturbed"][2, :, 0, 0], rtol=1e-4, atol=1e-8)
    assert (measured[:, token_index + 1:] == 0).all() and (measured[:, token_index] > 0).all()
    eps = epsilon_of_error(achieved.numpy(), h.numpy())
    np.testing.assert_allclose(eps[:, token_index], 1.0, rtol=1e-5)
    after = kl["perturbed_base"][2, :, 0]  # the notebook's direction, positions token..S-1
    torch.testing.assert_close(after.mean(-1) * (8 - token_index), after[:, 0])
    curve = kl["base_perturbed"][..., 0].mean(dim=(1, 2)).numpy()
    placed = place(epsilons, curve, eps[:, token_index], measured[:, token_index].numpy())
    assert placed["median_epsilon"] == pytest.approx(1.0, rel=1e-5) and placed["beyond_curve"] == 0
    assert placed["median_predicted_kl"] == pytest.approx(curve[2], rel=1e-6)
    assert placed["median_measured_kl"] == pytest.approx(float(np.median(kl["base_perturbed"][2, :, 0, 0])), rel=1e-4)
