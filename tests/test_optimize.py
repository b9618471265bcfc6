import numpy as np
import pytest
import torch

import reachability.optimize as optimize
from reachability.forward import residual_function, residuals_of_tokens
from reachability.optimize import initial_prompt, optimize_batch, optimize_runs
from reachability.runs import RunId
from reachability.sites import Site

SEQ = 8


def seed_optimize_prompt(model, target, init, steps, lr, layer):
    """The agenda's `optimize_prompt`, verbatim but for the given initial prompt:
    full model with LM head, output_hidden_states, batch 1, `.item()` every step."""
    prompt = init.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([prompt], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        residual = model(inputs_embeds=prompt.unsqueeze(0), output_hidden_states=True).hidden_states[layer].squeeze(0)
        loss = ((residual - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return prompt.detach(), losses


def real_targets(lm, site, n, seed=0):
    tokens = torch.randint(0, lm.config.vocab_size, (n, SEQ), generator=torch.Generator().manual_seed(seed))
    return residuals_of_tokens(lm, site, tokens)


def prompts(lm, n, experiment="test"):
    return torch.stack([initial_prompt(RunId(experiment, "c", t, 0), SEQ, lm.d_model) for t in range(n)])


def test_one_run_reproduces_the_agenda_loop_over_200_steps(neox_lm):
    site = Site("hidden_states", neox_lm.n_layers)  # the agenda's final-layer site
    target = real_targets(neox_lm, site, 1)
    init = prompts(neox_lm, 1)
    ours = optimize_batch(residual_function(neox_lm, site), target, init, steps=200, lr=0.01)
    ref_prompt, ref_losses = seed_optimize_prompt(neox_lm.model, target[0], init[0], 200, 0.01, site.layer)
    np.testing.assert_allclose(ours.loss[0], ref_losses, rtol=1e-4)
    np.testing.assert_allclose(ours.prompt[0], ref_prompt.numpy(), rtol=1e-4, atol=1e-5)
    assert ours.initial_mse[0] == pytest.approx(ref_losses[0], rel=1e-6)


def test_a_run_alone_equals_the_same_run_inside_a_batch_of_8(neox_lm):
    site = Site("block_output", 2)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 8), prompts(neox_lm, 8)
    batch = optimize_batch(residual, targets, init, steps=100, lr=0.01)
    alone = optimize_batch(residual, targets[5:6], init[5:6], steps=100, lr=0.01)
    np.testing.assert_allclose(batch.loss[5], alone.loss[0], rtol=1e-4)
    np.testing.assert_allclose(batch.prompt[5], alone.prompt[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batch.cosine[5], alone.cosine[0], rtol=1e-5)
    assert not np.allclose(batch.loss[4], batch.loss[5])  # the batch really held other targets


def test_a_real_token_target_is_reached(neox_lm):
    site = Site("hidden_states", neox_lm.n_layers)
    target = real_targets(neox_lm, site, 2, seed=3)
    result = optimize_batch(residual_function(neox_lm, site), target, prompts(neox_lm, 2), steps=600, lr=0.05)
    assert result.cosine.min() > 0.99, result.cosine.min(axis=1)
    assert (result.final_mse < 0.01 * result.initial_mse).all()
    assert result.loss.shape == (2, 600) and result.prompt.shape == result.achieved.shape == (2, SEQ, neox_lm.d_model)


def test_a_nan_run_is_marked_diverged_and_leaves_the_others_unchanged(neox_lm):
    site = Site("block_output", 3)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 4), prompts(neox_lm, 4)
    clean = optimize_batch(residual, targets, init, steps=50, lr=0.01)
    poisoned_targets = targets.clone()
    poisoned_targets[1, 3, 5] = float("nan")
    poisoned = optimize_batch(residual, poisoned_targets, init, steps=50, lr=0.01)
    assert poisoned.diverged.tolist() == [False, True, False, False]
    assert not clean.diverged.any()
    keep = [0, 2, 3]
    np.testing.assert_allclose(poisoned.loss[keep], clean.loss[keep], rtol=1e-6)
    np.testing.assert_allclose(poisoned.prompt[keep], clean.prompt[keep], rtol=1e-6, atol=1e-7)


def test_out_of_memory_halves_the_batch_and_finishes(neox_lm, monkeypatch):
    site = Site("block_output", 1)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 7), prompts(neox_lm, 7)
    real_batch, sizes = optimize.optimize_batch, []

    def small_gpu(residual, targets, *args, **kwargs):
        sizes.append(len(targets))
        if len(targets) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_batch(residual, targets, *args, **kwargs)

    monkeypatch.setattr(optimize, "optimize_batch", small_gpu)
    result = optimize_runs(residual, targets, init, steps=20, lr=0.01, batch_size=8)
    assert sizes[:3] == [7, 4, 2] and max(sizes[3:]) <= 2
    reference = real_batch(residual, targets, init, 20, 0.01)
    np.testing.assert_allclose(result.final_mse, reference.final_mse, rtol=1e-4)


def test_out_of_memory_at_batch_one_is_raised(neox_lm, monkeypatch):
    def no_gpu(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(optimize, "optimize_batch", no_gpu)
    site = Site("block_output", 1)
    with pytest.raises(torch.OutOfMemoryError):
        optimize_runs(residual_function(neox_lm, site), torch.zeros(2, SEQ, 32), torch.zeros(2, SEQ, 32), 5, 0.01)


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_reduced_precisions_track_fp32(neox_lm, precision):
    site = Site("hidden_states", 2)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 3), prompts(neox_lm, 3)
    fp32 = optimize_batch(residual, targets, init, steps=100, lr=0.02)
    other = optimize_batch(residual, targets, init, steps=100, lr=0.02, precision=precision)
    assert other.loss.dtype == np.float32 and other.prompt.dtype == np.float32
    np.testing.assert_allclose(other.final_mse, fp32.final_mse, rtol=0.1)


def test_unknown_precision_and_wrong_shapes_are_refused(neox_lm):
    residual = residual_function(neox_lm, Site("block_output", 1))
    with pytest.raises(ValueError, match="precision"):
        optimize_batch(residual, torch.zeros(1, SEQ, 32), torch.zeros(1, SEQ, 32), 1, 0.01, precision="fp8")
    with pytest.raises(ValueError, match=r"\[B, S, d\]"):
        optimize_batch(residual, torch.zeros(1, SEQ, 16), torch.zeros(1, SEQ, 32), 1, 0.01)
