"""The research log's cosine + MSE objective against a hand-written loop of its formula."""

import numpy as np
import pytest
import torch

from equality import assert_same_losses
from reachability.forward import residual_function, residuals_of_tokens
from reachability.methods import Soft, initial_prompt
from reachability.objectives import cosine_mse_of, mse_of
from reachability.optimize import optimize_batch, optimize_runs
from reachability.runs import RunId
from reachability.sites import Site
from reachability.storage import read_h5

SEQ, STEPS, WEIGHT = 8, 60, 0.01


def log_loop(model, target, init, steps, layer):
    """The log's run: the full model, `hidden_states[layer]`, batch 1, its loss written out,
    Adam lr 0.01; the loss before each update and the final prompt."""
    prompt = init.clone().requires_grad_(True)
    adam = torch.optim.Adam([prompt], lr=0.01)
    losses = []
    for _ in range(steps):
        adam.zero_grad()
        residual = model(inputs_embeds=prompt[None], output_hidden_states=True).hidden_states[layer][0]
        cos = (residual * target).sum(-1) / (residual.norm(dim=-1) * target.norm(dim=-1))
        loss = (1 - cos.mean()) + WEIGHT * ((residual - target) ** 2).mean()
        loss.backward()
        adam.step()
        losses.append(loss.item())
    return prompt.detach(), np.array(losses)


def test_a_batch_under_the_engine_equals_the_log_loop_run_by_run(neox_lm):
    site = Site("hidden_states", 2)
    tokens = torch.randint(0, 97, (3, SEQ), generator=torch.Generator().manual_seed(0))
    targets = residuals_of_tokens(neox_lm, site, tokens)
    init = torch.stack([initial_prompt(RunId("log", "real", t, 0), SEQ, neox_lm.d_model) for t in range(3)])
    residual = residual_function(neox_lm, site)
    ours = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=STEPS,
                          objective={"kind": "cosine_mse", "mse_weight": WEIGHT})  # config's optimizer.loss
    for b in range(3):
        prompt, losses = log_loop(neox_lm.model, targets[b], init[b], STEPS, site.layer)
        assert_same_losses(ours.loss[b], losses, 1.0)  # the objective is O(1) whatever the target's scale
        np.testing.assert_allclose(ours.prompt[b], prompt.numpy(), rtol=1e-4, atol=1e-5)
    assert (ours.loss[:, -1] < 0.75 * ours.loss[:, 0]).all()  # it moved
    # the MSE is measured whatever the objective: at the start and at the end
    with torch.no_grad():
        start, end = residual(init), residual(torch.from_numpy(ours.prompt))
    np.testing.assert_allclose(ours.initial_mse, (start - targets).pow(2).mean(dim=(1, 2)).numpy(), rtol=1e-5)
    np.testing.assert_allclose(ours.final_mse, (end - targets).pow(2).mean(dim=(1, 2)).numpy(), rtol=1e-5)
    runs = optimize_runs(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=STEPS, batch_size=2,
                         objective={"kind": "cosine_mse", "mse_weight": WEIGHT})  # as a pack runs them
    assert_same_losses(runs.loss, ours.loss, 1.0)
    plain = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=3, objective={"kind": "mse"})
    np.testing.assert_array_equal(plain.loss, optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01),
                                                             steps=3).loss)  # the default is the agenda's MSE


def test_the_objective_is_zero_at_the_target_and_its_parts_are_the_cosine_and_the_mse(neox_lm):
    site = Site("block_output", 1)
    residual = residual_function(neox_lm, site)
    embeds = torch.randn(4, SEQ, neox_lm.d_model, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reached = residual(embeds)
        targets = reached[[1, 0, 3, 2]]
        assert cosine_mse_of(residual, reached, "fp32")(embeds).abs().max() < 1e-6
        scaled = cosine_mse_of(residual, 2 * reached, "fp32", mse_weight=0.0)(embeds)  # cosine ignores scale
        assert scaled.abs().max() < 1e-6
        both = cosine_mse_of(residual, targets, "fp32", mse_weight=0.5)(embeds)
        mse = mse_of(residual, targets, "fp32")(embeds)
        cos = torch.nn.functional.cosine_similarity(reached, targets, dim=-1).mean(1)
        torch.testing.assert_close(both, 1 - cos + 0.5 * mse)
        rows = torch.tensor([2, 2, 0])  # three candidates of runs 2, 2 and 0
        torch.testing.assert_close(cosine_mse_of(residual, targets, "fp32")(embeds[:3], rows),
                                   cosine_mse_of(residual, targets[rows], "fp32")(embeds[:3]))


@pytest.mark.slow
def test_a_study_under_the_logs_objective_runs_end_to_end_and_records_it(tmp_path):
    """The demo's Exp 1 and Exp 4p (its own 200 steps) under cosine + w MSE (w = 0.5, not the
    default, so that a weight lost between the config and the engine shows), run by Snakemake:
    each experiment's runs name the objective, and their loss curves are its values: the last one
    (before the final step) is 1 - mean cosine + w MSE of the final prompt, near enough."""
    from workflow_helpers import AGENDA_ONLY, demo_config, snakemake

    weight = 0.5
    loss = {"kind": "cosine_mse", "mse_weight": weight}
    off = {f"experiments.{e}.enabled": False for e in ("experiment2a", "experiment2b", "experiment3", "experiment4")}
    config = demo_config(**{**AGENDA_ONLY, **off, "optimizer.loss": loss, "boundary.enabled": False,
                            "experiments.experiment1.n_targets": 4, "experiments.experiment4p.enabled": True,
                            "experiments.experiment4p.fractions": [0, 1.0]})
    result = snakemake(tmp_path, config, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    for experiment, steps in (("experiment1", (300, 360)), ("experiment4p", (200,))):
        runs, attrs = read_h5(tmp_path / "results" / experiment / "runs.h5")
        assert attrs["loss"] == loss and attrs["steps"] in steps
        curve, initial, final = runs["loss"], runs["initial_mse"], runs["final_mse"]
        assert curve.shape[-1] == attrs["steps"] and np.isfinite(final).all()
        first = curve[..., 0]  # 1 - mean cosine (in [0, 2]) + the weighted MSE of the initial prompt
        assert (first >= weight * initial - 1e-5).all() and (first <= 2 + weight * initial + 1e-5).all()
        last = 1 - runs["cosine"].mean(-1) + weight * final  # the objective at the final prompt
        np.testing.assert_allclose(curve[..., -1], last, rtol=0.05, atol=1e-4)
        assert not np.allclose(curve[..., -1], final, rtol=0.05)  # the agenda's objective: the MSE itself
    table = (tmp_path / "results" / "conditions.md").read_text()  # the log's table: another weight than the log's
    assert "differs in model.name, site, optimizer.loss" in table
