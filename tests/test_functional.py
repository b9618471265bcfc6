import torch

from reachability.forward import logits_function, residuals_of_tokens
from reachability.functional import kl_divergence, kl_from_site
from reachability.sites import Site


def test_continuing_from_any_site_gives_the_models_own_logits(tiny_lm):
    """Only the blocks after the site run, yet the logits equal the full model's: at every
    site of every family, the input embedding included (GPT-2 adds its positions only once)."""
    tokens = torch.randint(0, 97, (3, 8), generator=torch.Generator().manual_seed(0))
    expected = tiny_lm.model(input_ids=tokens).logits
    sites = [Site("hidden_states", L) for L in range(0, tiny_lm.n_layers + 1)]
    sites += [Site("block_output", L) for L in range(1, tiny_lm.n_layers + 1)]
    for site in sites:
        logits, residual = logits_function(tiny_lm, site), residuals_of_tokens(tiny_lm, site, tokens)
        with torch.no_grad():
            torch.testing.assert_close(logits(residual), expected, rtol=1e-4, atol=1e-4, msg=str(site))
            torch.testing.assert_close(logits(residual, 5), expected[:, 5:], rtol=1e-4, atol=1e-4, msg=str(site))


def test_a_changed_residual_changes_the_logits_and_the_model_stays_whole(neox_lm):
    tokens = torch.randint(0, 97, (2, 8))
    site = Site("hidden_states", 2)
    residual = residuals_of_tokens(neox_lm, site, tokens)
    with torch.no_grad():
        moved = logits_function(neox_lm, site)(residual + 0.5 * torch.randn_like(residual))
    assert kl_divergence(neox_lm.model(input_ids=tokens).logits, moved).mean() > 1e-4
    assert len(neox_lm.blocks) == neox_lm.n_layers == 3  # the views left the model alone


def test_kl_is_zero_on_itself_and_matches_the_definition():
    p, q = torch.randn(4, 11), torch.randn(4, 11)
    assert kl_divergence(p, p).abs().max() < 1e-6
    expected = (p.softmax(-1) * (p.log_softmax(-1) - q.log_softmax(-1))).sum(-1)
    torch.testing.assert_close(kl_divergence(p, q), expected)


def test_kl_from_site_equals_the_kl_of_the_full_models_logits(neox_lm):
    site = Site("block_output", 1)
    tokens = torch.randint(0, 97, (5, 8), generator=torch.Generator().manual_seed(2))
    p = residuals_of_tokens(neox_lm, site, tokens)
    q = p + 0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3))
    logits = logits_function(neox_lm, site)
    with torch.no_grad():
        expected = kl_divergence(logits(p), logits(q))
    got = kl_from_site(neox_lm, site, p, q, first=2, batch_size=2)
    assert got.shape == (5, 6) and (got > 0).all()
    torch.testing.assert_close(got, expected[:, 2:], rtol=1e-4, atol=1e-6)
