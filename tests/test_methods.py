"""The method registry: each method is a class with its own settings, read by the study without
torch; the Adam-prompt methods are one loop with two hooks, and a new one is a few lines."""

import dataclasses

import numpy as np
import pytest
import torch

from equality import assert_same_losses, mean_square
from reachability.forward import residual_function, residuals_of_tokens
from reachability.methods import METHODS, Mixture, NormBall, Soft, build, densest_tokens, initial_prompt
from reachability.optimize import optimize_batch
from reachability.runs import RunId, method_records
from reachability.sites import Site

SEQ = 6


def test_the_registry_read_without_torch_is_the_classes():
    records = method_records()
    assert list(records) == list(METHODS) == ["soft", "pez", "norm_ball", "mixture", "gcg", "inversion"]
    for name, cls in METHODS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert records[name]["label"] == getattr(cls, "label", name)
        assert records[name]["begins"] == getattr(cls, "begins", "normal")
        assert set(records[name]["settings"]) - {"steps"} <= fields  # its settings arrive as its fields
    assert [n for n, r in records.items() if not r["resumes"]] == ["pez", "mixture", "gcg", "inversion"]
    assert [n for n, r in records.items() if r["per_position"]] == ["inversion"]


def batch(lm, n=3):
    site = Site("hidden_states", lm.n_layers)
    tokens = torch.randint(0, 97, (n, SEQ), generator=torch.Generator().manual_seed(7))
    init = torch.stack([initial_prompt(RunId("experiment1", "real", t, 0), SEQ, lm.d_model) for t in range(n)])
    return residual_function(lm, site), residuals_of_tokens(lm, site, tokens), init


def test_a_norm_ball_prompt_stays_within_the_largest_token_norm_at_every_step(neox_lm):
    residual, targets, init = batch(neox_lm)
    vocabulary = neox_lm.embedding.weight.detach()
    radius = float(vocabulary.norm(dim=-1).max())
    seen = []

    def recording(x):
        seen.append(x.detach().norm(dim=-1).max().item())
        return residual(x)

    method = build("norm_ball", 0.05, {"radius": None}, lambda: vocabulary)
    result = optimize_batch(recording, targets, {"prompt": init}, method, steps=20)
    assert init.norm(dim=-1).min() > radius  # N(0, 1) starts far outside the ball
    assert max(seen) <= radius * (1 + 1e-6) and len(seen) == 21  # every forward, the final evaluation too
    assert np.linalg.norm(result.prompt, axis=-1).max() <= radius * (1 + 1e-6)
    assert result.loss[0, -1] < result.loss[0, 0]  # it still optimises inside the ball


def test_a_norm_ball_wider_than_any_prompt_is_the_soft_prompt(neox_lm):
    """The hook does nothing when nothing is outside: the same loop, the same numbers."""
    residual, targets, init = batch(neox_lm)
    wide = optimize_batch(residual, targets, {"prompt": init}, NormBall(lr=0.01, radius=1e9), steps=30)
    soft = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=30)
    assert_same_losses(wide.loss, soft.loss, mean_square(targets), rtol=1e-6)
    np.testing.assert_array_equal(wide.prompt, soft.prompt)


def test_a_method_continues_from_its_saved_state_exactly(neox_lm):
    """What the step budget relies on, for any method that resumes: 10 + 15 steps are 25."""
    residual, targets, init = batch(neox_lm)
    method = NormBall(lr=0.05, radius=5.0)
    fresh = optimize_batch(residual, targets, {"prompt": init}, method, steps=25)
    first = optimize_batch(residual, targets, {"prompt": init}, method, steps=10)
    saved = {k: torch.from_numpy(getattr(first, k)) for k in ("prompt", "exp_avg", "exp_avg_sq")}
    rest = optimize_batch(residual, targets, saved, dataclasses.replace(method, resume_step=10), steps=15)
    assert_same_losses(np.concatenate([first.loss, rest.loss], axis=1), fresh.loss, mean_square(targets), rtol=1e-5)


def test_unknown_method_names_are_the_registrys_to_refuse():
    with pytest.raises(KeyError):
        build("simplex", 0.01, {}, lambda: None)


def mixture_runs(lm, n=3):
    residual, targets, _ = batch(lm, n)
    runs = [RunId("experiment1", "real/mixture", t, 0) for t in range(n)]
    return residual, targets, runs, lm.embedding.weight.detach()


def test_a_mixture_of_one_allowed_token_is_that_tokens_embedding(neox_lm):
    """Softmax over a single token is 1 at any temperature: every position is that token, and the
    text it reads as is itself (the same MSE)."""
    residual, targets, runs, vocabulary = mixture_runs(neox_lm)
    method = build("mixture", 0.01, {"densest": 1, "temperature": 0.5, "lr": 0.05, "init_std": 0.01}, lambda: vocabulary)
    assert method.lr == 0.05  # its own lr, not the study's
    result = optimize_batch(residual, targets, method.start(runs, SEQ, neox_lm.d_model), method, steps=5)
    only = int(densest_tokens(vocabulary, 1))
    assert (result.tokens == only).all()
    np.testing.assert_allclose(result.prompt, np.broadcast_to(vocabulary[only].numpy(), result.prompt.shape), rtol=1e-6)
    np.testing.assert_allclose(result.text_mse, result.final_mse, rtol=1e-6)


def test_a_mixture_near_zero_temperature_is_its_argmax_tokens_and_their_mse_is_measured(neox_lm):
    """τ → 0: each position is its heaviest token's embedding, so the mixture's MSE is its text's;
    at τ = 0.5 they differ, and `text_mse` is the MSE a full forward of those tokens gives."""
    residual, targets, runs, vocabulary = mixture_runs(neox_lm)
    cold = Mixture(lr=0.05, temperature=1e-4, init_std=1.0, vocabulary=vocabulary)
    result = optimize_batch(residual, targets, cold.start(runs, SEQ, neox_lm.d_model), cold, steps=3)
    np.testing.assert_allclose(result.prompt, vocabulary[result.tokens].numpy(), atol=1e-6)
    np.testing.assert_allclose(result.text_mse, result.final_mse, rtol=1e-5)
    warm = Mixture(lr=0.05, temperature=0.5, init_std=0.01, vocabulary=vocabulary)
    result = optimize_batch(residual, targets, warm.start(runs, SEQ, neox_lm.d_model), warm, steps=20)
    text = residual(vocabulary[torch.from_numpy(result.tokens)]).detach()
    np.testing.assert_allclose(result.text_mse, (text - targets).pow(2).mean(dim=(1, 2)).numpy(), rtol=1e-5)
    assert not np.allclose(result.text_mse, result.final_mse)
    assert np.linalg.norm(result.prompt, axis=-1).max() <= vocabulary.norm(dim=-1).max() + 1e-5  # in the tokens' hull
    assert (result.loss[:, -1] < result.loss[:, 0]).all()


def test_the_densest_tokens_are_the_ones_with_close_neighbours():
    """Three near-copies of one direction among orthogonal ones: they are the densest three."""
    generator = torch.Generator().manual_seed(0)
    vocabulary = torch.linalg.qr(torch.randn(16, 16, generator=generator))[0][:12] * 3.0  # orthogonal rows
    vocabulary[[2, 7, 9]] = vocabulary[4] + 0.01 * torch.randn(3, 16, generator=generator)
    assert densest_tokens(vocabulary, 4, neighbours=3, chunk=5).tolist() == [2, 4, 7, 9]


def test_a_mixture_or_an_inversion_run_alone_equals_the_same_run_in_a_batch(neox_lm):
    residual, targets, runs, vocabulary = mixture_runs(neox_lm)
    mixture = Mixture(lr=0.05, vocabulary=vocabulary)
    inversion = build("inversion", 0.01, {"top_k": None}, lambda: vocabulary, {"candidate_batch": 50})
    for method, steps in ((mixture, 15), (inversion, SEQ)):
        inputs = method.start(runs, SEQ, neox_lm.d_model)
        together = optimize_batch(residual, targets, inputs, method, steps)
        for i in range(len(runs)):
            alone = optimize_batch(residual, targets[i:i + 1], {k: v[i:i + 1] for k, v in inputs.items()}, method, steps)
            assert_same_losses(alone.loss, together.loss[i:i + 1], mean_square(targets[i:i + 1]), rtol=1e-5)
            np.testing.assert_array_equal(alone.tokens, together.tokens[i:i + 1])


def test_the_inversion_takes_one_step_per_position_whatever_the_step_budget():
    """The demo runs it on Exp 2a (8 targets x 2 restarts) and on the text experiment (4 x 1): each
    of those runs is every token at each of its S positions, one position each (V sequences' worth)."""
    from workflow_helpers import demo_config, validated
    from reachability import study

    config = validated(demo_config())
    settings = study.methods(config, "experiment2a")
    assert settings["matched/inversion"]["steps"] == config["seq_len"] and "steps" not in settings["matched"]
    extra = study.size(config, vocab_size=1000)["candidate_forwards"] - study.size(config)["candidate_forwards"]
    assert extra == 1000 * (8 * 2 + 4 * 1)
