"""The method registry: each method is a class with its own settings, read by the study without
torch; the Adam-prompt methods are one loop with two hooks, and a new one is a few lines."""

import dataclasses

import numpy as np
import pytest
import torch

from equality import assert_same_losses, mean_square
from reachability.forward import residual_function, residuals_of_tokens
from reachability.methods import METHODS, NormBall, Soft, build, initial_prompt
from reachability.optimize import optimize_batch
from reachability.runs import RunId, method_records
from reachability.sites import Site

SEQ = 6


def test_the_registry_read_without_torch_is_the_classes():
    records = method_records()
    assert list(records) == list(METHODS) == ["soft", "pez", "norm_ball", "gcg"]
    for name, cls in METHODS.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert records[name]["label"] == getattr(cls, "label", name)
        assert records[name]["begins"] == getattr(cls, "begins", "normal")
        assert set(records[name]["settings"]) - {"steps"} <= fields  # its settings arrive as its fields
    assert [n for n, r in records.items() if not r["resumes"]] == ["pez", "gcg"]


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
