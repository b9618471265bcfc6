"""Sequential exact inversion against full forwards of the whole text (no cache) on every family."""

import pytest
import torch

from conftest import VOCAB
from reachability.forward import residuals_of_tokens
from reachability.inversion import invert
from reachability.sites import Site

SEQ = 8  # longer than the sliding windows of the tiny Mistral (4) and Qwen2 (3)


def text(n: int, seed: int) -> torch.Tensor:
    return torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(seed))


def test_a_target_made_by_text_gives_back_that_text_at_every_kind_of_site(tiny_lm):
    """At the embedding (no block: the lookup itself, GPT-2's positions added), inside the model,
    after the last block and after the final norm; each token costs V candidates and one
    forward that grows the cached prefix."""
    n = tiny_lm.n_layers
    tokens = text(2, seed=1)
    for site in (Site("hidden_states", 0), Site("hidden_states", 1), Site("block_output", 2),
                 Site("block_output", n), Site("hidden_states", n)):
        targets = residuals_of_tokens(tiny_lm, site, tokens)
        found = invert(tiny_lm, site, targets, chunk=64)  # two chunks per position
        torch.testing.assert_close(found.tokens, tokens, rtol=0, atol=0, msg=str(site))
        assert found.mse.max() < 1e-9 * targets.pow(2).mean(), site
        assert found.forwards == SEQ * (VOCAB + 1) and found.backwards == 0


def test_each_chosen_token_is_the_best_one_after_its_prefix(tiny_lm):
    """A random target: at every position the chosen token's MSE there is the least of all V
    single-token continuations of the chosen prefix, each measured by a full forward of the
    whole text (at the last position: no single-token change lowers the text's MSE)."""
    site = Site("block_output", 2)
    scale = residuals_of_tokens(tiny_lm, site, text(8, seed=2)).std()
    targets = scale * torch.randn(2, SEQ, tiny_lm.d_model, generator=torch.Generator().manual_seed(3))
    found = invert(tiny_lm, site, targets)
    for i in range(SEQ):
        texts = found.tokens[:, None, : i + 1].repeat(1, VOCAB, 1)  # [B, V, i + 1]
        texts[:, :, i] = torch.arange(VOCAB)
        every = residuals_of_tokens(tiny_lm, site, texts.reshape(-1, i + 1))[:, i].reshape(2, VOCAB, -1)
        mse = (every - targets[:, None, i]).pow(2).mean(-1)  # [B, V]
        torch.testing.assert_close(found.mse[:, i], mse.min(dim=1).values, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(found.tokens[:, i], mse.argmin(dim=1), rtol=0, atol=0)
    whole = (residuals_of_tokens(tiny_lm, site, found.tokens) - targets).pow(2).mean(dim=(1, 2))
    torch.testing.assert_close(found.mse.mean(1), whole, rtol=1e-4, atol=1e-7)  # positions add up to the text's MSE
    assert (found.mse > 1e-3 * targets.pow(2).mean()).all()  # no text reaches a random target


@pytest.mark.parametrize("family_site", [Site("hidden_states", 0), Site("hidden_states", 3)])
def test_gradient_ordered_candidates_verified_exactly(neox_lm, family_site):
    """With k = V the gradient-ordered variant tries every entry and agrees with the exhaustive
    one; with fewer, its text is still measured exactly and costs k (+ one gradient) per token."""
    scale = residuals_of_tokens(neox_lm, family_site, text(4, seed=4)).std()
    targets = scale * torch.randn(3, SEQ, neox_lm.d_model, generator=torch.Generator().manual_seed(5))
    exhaustive = invert(neox_lm, family_site, targets)
    ranked = invert(neox_lm, family_site, targets, top_k=VOCAB, chunk=40)
    torch.testing.assert_close(ranked.tokens, exhaustive.tokens, rtol=0, atol=0)
    torch.testing.assert_close(ranked.mse, exhaustive.mse, rtol=1e-4, atol=1e-7)
    few = invert(neox_lm, family_site, targets, top_k=5)
    whole = (residuals_of_tokens(neox_lm, family_site, few.tokens) - targets).pow(2).mean(dim=(1, 2))
    torch.testing.assert_close(few.mse.mean(1), whole, rtol=1e-4, atol=1e-7)
    assert few.forwards == SEQ * (5 + 1 + 1) and few.backwards == SEQ
    assert (few.mse[:, 0] >= exhaustive.mse[:, 0]).all()  # the same (empty) prefix: never better than all V


def test_targets_of_the_wrong_shape_are_refused(neox_lm):
    with pytest.raises(ValueError, match="targets must be"):
        invert(neox_lm, Site("hidden_states", 1), torch.zeros(2, SEQ, 16))


@pytest.mark.gpu
def test_the_inversion_on_the_gpu_equals_the_cpus(gpu_lm, neox_lm):
    site = Site("hidden_states", 2)
    targets = residuals_of_tokens(neox_lm, site, text(4, seed=6))
    cpu, gpu = invert(neox_lm, site, targets), invert(gpu_lm, site, targets.cuda(), chunk=100)
    torch.testing.assert_close(gpu.tokens, cpu.tokens, rtol=0, atol=0)
    torch.testing.assert_close(gpu.mse, cpu.mse, rtol=1e-3, atol=1e-9 * targets.pow(2).mean().item())
