"""Prefix steering: a soft prefix before a real text, scored on the text's residuals."""

import numpy as np
import pytest
import torch

from reachability import targets as T
from reachability.forward import residual_function, residuals_of_tokens
from reachability.methods import Soft, initial_prompt
from reachability.optimize import optimize_batch
from reachability.runs import RunId
from reachability.sites import Site

SEQ, PREFIX = 10, 4
STEPS = 300


def composed(lm, site, n=3):
    tokens = torch.randint(0, 97, (8, SEQ), generator=torch.Generator().manual_seed(11)).numpy()
    spec = {"prefix_length": PREFIX, "positions": [], "epsilons": [0, 1.0], "methods": ["soft"]}
    stats = {"tokens": tokens, "residuals_of": lambda t: residuals_of_tokens(lm, site, torch.from_numpy(t)).numpy()}
    return tokens, spec, stats


def test_a_target_is_the_text_after_another_real_prefix_and_that_prefix_reaches_it_exactly(neox_lm):
    """ε = 0: target t is the residual of sequence t + 1's first P tokens before sequence t's
    text; the prompt that is that prefix's embeddings reaches it (MSE 0 on the scored positions),
    any other does not; ε > 0 moves only the scored positions."""
    site = Site("hidden_states", 2)
    tokens, spec, stats = composed(neox_lm, site)
    ids = [0, 3, 7]
    real = np.stack(T.prefixed(spec, "e0", ids, np.zeros((8, SEQ, neox_lm.d_model)), stats))
    source = np.concatenate([tokens[[1, 4, 0], :PREFIX], tokens[ids, PREFIX:]], axis=1)  # the pool wraps: 7 + 1 -> 0
    np.testing.assert_array_equal(T.composed_texts(tokens, ids, PREFIX), source)
    np.testing.assert_allclose(real, residuals_of_tokens(neox_lm, site, torch.from_numpy(source)).numpy(), rtol=1e-6)
    moved = np.stack(T.prefixed(spec, "e1", ids, np.zeros((8, SEQ, neox_lm.d_model)), stats))
    np.testing.assert_array_equal(moved[:, :PREFIX], real[:, :PREFIX])
    assert (np.abs(moved[:, PREFIX:] - real[:, PREFIX:]).max(axis=-1) > 0).all()

    prefix, scored = T.prefix_layout(spec, SEQ)
    assert prefix == PREFIX and scored == list(range(PREFIX, SEQ))
    text = neox_lm.embed(torch.from_numpy(tokens[ids, PREFIX:])).detach()
    target = torch.from_numpy(real[:, scored])
    exact = neox_lm.embed(torch.from_numpy(source[:, :PREFIX])).detach()
    result = optimize_batch(residual_function(neox_lm, site), target, {"prompt": exact}, Soft(lr=0.0), 1,
                            text=text, scored=scored)
    assert result.final_mse.max() < 1e-12 * target.pow(2).mean().item() and result.achieved.shape == target.shape
    other = neox_lm.embed(torch.from_numpy(tokens[[5, 5, 5], :PREFIX])).detach()
    elsewhere = optimize_batch(residual_function(neox_lm, site), target, {"prompt": other}, Soft(lr=0.0), 1, text=text,
                               scored=scored)
    assert (elsewhere.final_mse > 1e-2 * target.pow(2).mean(dim=(1, 2)).numpy()).all()  # another prefix: far from it


def test_a_target_made_by_a_real_prefix_is_reached_from_a_random_start(neox_lm):
    """The soft prefix from N(0, 1), Adam as in the study: every ε = 0 target is reached (best MSE
    below 10⁻³ of its mean square), scored on the text only."""
    site = Site("hidden_states", 2)
    tokens, spec, stats = composed(neox_lm, site)
    ids = [0, 3, 7]
    prefix, scored = T.prefix_layout(spec, SEQ)
    target = torch.from_numpy(np.stack(T.prefixed(spec, "e0", ids, np.zeros((8, SEQ, neox_lm.d_model)), stats))[:, scored])
    text = neox_lm.embed(torch.from_numpy(tokens[ids, PREFIX:])).detach()
    start = torch.stack([initial_prompt(RunId("prefix_steering", "e0", t, 0), PREFIX, neox_lm.d_model) for t in ids])
    result = optimize_batch(residual_function(neox_lm, site), target, {"prompt": start}, Soft(lr=0.05), STEPS,
                            text=text, scored=scored)
    relative = result.final_mse / target.pow(2).mean(dim=(1, 2)).numpy()
    assert (relative < 1e-3).all(), relative


@pytest.mark.parametrize("change,message", [
    ({"prefix_length": SEQ}, "leaves no text"), ({"positions": [PREFIX - 1]}, "inside the prompt"),
    ({"methods": ["soft", "gcg"]}, r"\['gcg'\]")])
def test_prefix_settings_the_study_cannot_run_are_named(change, message):
    spec = {"prefix_length": PREFIX, "positions": [], "methods": ["soft"], **change}
    with pytest.raises(ValueError, match=message):
        T.check_prefix(spec, {"seq_len": SEQ})
