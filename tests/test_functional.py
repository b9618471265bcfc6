import pytest
import torch

from reachability.functional import kl_divergence, logits_from_site
from reachability.forward import residuals_of_tokens
from reachability.sites import Site


def test_continuing_from_any_site_gives_the_models_own_logits(tiny_lm):
    tokens = torch.randint(0, 97, (3, 8), generator=torch.Generator().manual_seed(0))
    expected = tiny_lm.model(input_ids=tokens).logits
    sites = [Site("hidden_states", L) for L in range(1, tiny_lm.n_layers + 1)]
    sites += [Site("block_output", L) for L in range(1, tiny_lm.n_layers + 1)]
    for site in sites:
        got = logits_from_site(tiny_lm, site, residuals_of_tokens(tiny_lm, site, tokens), batch_size=2)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4, msg=str(site))


def test_a_changed_residual_changes_the_logits_and_hooks_are_gone(neox_lm):
    tokens = torch.randint(0, 97, (2, 8))
    site = Site("hidden_states", 2)
    residual = residuals_of_tokens(neox_lm, site, tokens)
    moved = logits_from_site(neox_lm, site, residual + 0.5 * torch.randn_like(residual))
    assert kl_divergence(neox_lm.model(input_ids=tokens).logits, moved).mean() > 1e-4
    torch.testing.assert_close(neox_lm.model(input_ids=tokens).logits, logits_from_site(neox_lm, site, residual),
                               rtol=1e-4, atol=1e-4)


def test_kl_is_zero_on_itself_and_matches_the_definition():
    p, q = torch.randn(4, 11), torch.randn(4, 11)
    assert kl_divergence(p, p).abs().max() < 1e-6
    expected = (p.softmax(-1) * (p.log_softmax(-1) - q.log_softmax(-1))).sum(-1)
    torch.testing.assert_close(kl_divergence(p, q), expected)


def test_the_input_embedding_is_refused(neox_lm):
    with pytest.raises(ValueError, match="layer >= 1"):
        logits_from_site(neox_lm, Site("hidden_states", 0), torch.zeros(1, 4, 32))
