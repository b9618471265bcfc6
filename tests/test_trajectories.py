"""Per-layer trajectories against the site's own residual, and the choice of targets to draw."""

import numpy as np
import torch

from reachability.forward import residual_function, residuals_of_tokens
from reachability.sites import Site
from reachability.trajectories import best_median_worst, layer_cosines

SEQ = 7


def test_the_trajectory_at_each_layer_is_the_cosine_that_layers_residual_gives(tiny_lm):
    """For a soft prompt, every layer's value equals the cosine of the truncated forward's
    residual at hidden_states[L] (the final norm's output at the last); for the text that made
    the target, it is 1 at the target's own layer."""
    tokens = torch.randint(0, 97, (2, SEQ), generator=torch.Generator().manual_seed(0))
    site = Site("hidden_states", 2)
    targets = residuals_of_tokens(tiny_lm, site, tokens)
    prompt = torch.randn(2, SEQ, tiny_lm.d_model, generator=torch.Generator().manual_seed(1))
    soft = layer_cosines(tiny_lm, prompt, targets)
    assert soft.shape == (2, tiny_lm.n_layers + 1)
    with torch.no_grad():
        for layer in range(tiny_lm.n_layers + 1):
            reached = residual_function(tiny_lm, Site("hidden_states", layer))(prompt)
            expected = torch.nn.functional.cosine_similarity(reached, targets, dim=-1).mean(-1)
            torch.testing.assert_close(soft[:, layer], expected, rtol=1e-5, atol=1e-5)
        real = layer_cosines(tiny_lm, tiny_lm.embed(tokens), targets)
    torch.testing.assert_close(real[:, site.layer], torch.ones(2), rtol=0, atol=1e-5)
    assert (real[:, 0] < 0.99).all() and (soft[:, site.layer] < 0.99).all()  # elsewhere they differ


def test_best_median_and_worst_targets():
    cosine = [0.3, 0.9, 0.1, 0.5, np.nan]  # a diverged target is the worst
    assert best_median_worst(cosine) == {"best": 1, "median": 0, "worst": 4}
    assert best_median_worst([1e-3, 1e-6, 1e-1, 1e-2], higher_is_better=False) == {"best": 1, "median": 3, "worst": 2}


def test_a_conditions_trajectories_take_each_targets_best_run_and_its_text(neox_lm):
    """Three targets made by text, two restarts each: the trajectory of each target's best run
    (by final MSE) is its prompt's; the text's reaches 1 at the site; the best, median and worst
    targets are named by id."""
    from reachability.solutions import trajectories

    site = Site("hidden_states", 2)
    texts = torch.randint(0, 97, (3, SEQ), generator=torch.Generator().manual_seed(2))
    target = residuals_of_tokens(neox_lm, site, texts)
    prompts = torch.randn(6, SEQ, neox_lm.d_model, generator=torch.Generator().manual_seed(3))
    runs = {"prompt": prompts.numpy(), "target_id": np.repeat([0, 1, 2], 2),
            "final_mse": np.array([0.5, 0.2, 0.01, 0.03, 0.9, np.nan])}
    found = trajectories(neox_lm, runs, target.repeat_interleave(2, dim=0).numpy(), texts.numpy())
    assert found["target_ids"] == [0, 1, 2] and found["picked"] == {"best": 1, "median": 0, "worst": 2}
    own = layer_cosines(neox_lm, prompts[[1, 2, 4]], target)
    np.testing.assert_allclose(found["prompt"], own.numpy(), rtol=1e-5)
    np.testing.assert_allclose(found["text"][:, site.layer], 1.0, atol=1e-5)
    np.testing.assert_allclose(found["prompt_median"], np.median(own.numpy(), axis=0), rtol=1e-6)
