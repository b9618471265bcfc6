import numpy as np
import pytest
import torch

import reachability.optimize as optimize
from equality import assert_same_losses, mean_square
from reachability.precision import precision_mode
from reachability.forward import residual_function, residuals_of_tokens
from reachability.methods import Soft, initial_prompt
from reachability.capture import WARMUP_STEPS
from reachability.objectives import mse_of
from reachability.optimize import optimize_batch, optimize_runs
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
    ours = optimize_batch(residual_function(neox_lm, site), target, {"prompt": init}, Soft(lr=0.01), steps=200)
    ref_prompt, ref_losses = seed_optimize_prompt(neox_lm.model, target[0], init[0], 200, 0.01, site.layer)
    assert_same_losses(ours.loss[0], ref_losses, mean_square(target))
    np.testing.assert_allclose(ours.prompt[0], ref_prompt.numpy(), rtol=1e-4, atol=1e-5)
    assert ours.initial_mse[0] == pytest.approx(ref_losses[0], rel=1e-6)


def test_a_run_alone_equals_the_same_run_inside_a_batch_of_8(neox_lm):
    site = Site("block_output", 2)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 8), prompts(neox_lm, 8)
    batch = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=100)
    alone = optimize_batch(residual, targets[5:6], {"prompt": init[5:6]}, Soft(lr=0.01), steps=100)
    assert_same_losses(batch.loss[5], alone.loss[0], mean_square(targets[5]))
    np.testing.assert_allclose(batch.prompt[5], alone.prompt[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batch.cosine[5], alone.cosine[0], rtol=1e-5)
    assert not np.allclose(batch.loss[4], batch.loss[5])  # the batch really held other targets


def test_a_real_token_target_is_reached(neox_lm):
    site = Site("hidden_states", neox_lm.n_layers)
    target = real_targets(neox_lm, site, 2, seed=3)
    result = optimize_batch(residual_function(neox_lm, site), target, {"prompt": prompts(neox_lm, 2)}, Soft(lr=0.05),
                            steps=600)
    assert result.cosine.min() > 0.99, result.cosine.min(axis=1)
    assert (result.final_mse < 0.01 * result.initial_mse).all()
    assert result.loss.shape == (2, 600) and result.prompt.shape == result.achieved.shape == (2, SEQ, neox_lm.d_model)


def test_a_nan_run_is_marked_diverged_and_leaves_the_others_unchanged(neox_lm):
    site = Site("block_output", 3)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 4), prompts(neox_lm, 4)
    clean = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=50)
    poisoned_targets = targets.clone()
    poisoned_targets[1, 3, 5] = float("nan")
    poisoned = optimize_batch(residual, poisoned_targets, {"prompt": init}, Soft(lr=0.01), steps=50)
    assert poisoned.diverged.tolist() == [False, True, False, False]
    assert not clean.diverged.any()
    keep = [0, 2, 3]
    assert_same_losses(poisoned.loss[keep], clean.loss[keep], mean_square(targets[keep]), rtol=1e-6)
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
    result = optimize_runs(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=20, batch_size=8)
    assert sizes[:3] == [7, 4, 2] and max(sizes[3:]) <= 2
    reference = real_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), 20)
    assert_same_losses(result.final_mse, reference.final_mse, mean_square(targets))


def test_out_of_memory_at_batch_one_is_raised(neox_lm, monkeypatch):
    def no_gpu(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(optimize, "optimize_batch", no_gpu)
    site = Site("block_output", 1)
    with pytest.raises(torch.OutOfMemoryError):
        optimize_runs(residual_function(neox_lm, site), torch.zeros(2, SEQ, 32), {"prompt": torch.zeros(2, SEQ, 32)},
                      Soft(lr=0.01), 5)


def test_precision_mode_restores_the_global_matmul_setting():
    before = torch.get_float32_matmul_precision()
    for precision, inside in (("fp32", "highest"), ("tf32", "high"), ("bf16", "high")):
        with precision_mode(precision, torch.device("cuda")):
            assert torch.get_float32_matmul_precision() == inside
        assert torch.get_float32_matmul_precision() == before
    with pytest.raises(RuntimeError), precision_mode("tf32", torch.device("cuda")):
        raise RuntimeError("a failing step")
    assert torch.get_float32_matmul_precision() == before
    with precision_mode("tf32", torch.device("cpu")):  # the CPU has no TF32: exact float32
        assert torch.get_float32_matmul_precision() == before


def test_bf16_autocast_runs_on_the_cpu_and_differs_from_fp32(neox_lm):
    site = Site("hidden_states", 2)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 3), prompts(neox_lm, 3)
    fp32 = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.02), steps=30)
    bf16 = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.02), steps=30, precision="bf16")
    assert bf16.loss.dtype == np.float32 and bf16.prompt.dtype == np.float32
    assert not np.array_equal(bf16.loss, fp32.loss)  # autocast really ran in bfloat16
    np.testing.assert_allclose(bf16.final_mse, fp32.final_mse, rtol=0.2)


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_reduced_precisions_track_fp32_on_a_gpu(gpu_lm, precision):
    site = Site("hidden_states", 2)
    lm = gpu_lm
    residual = residual_function(lm, site)
    targets, init = real_targets(lm, site, 3).cuda(), prompts(lm, 3).cuda()
    fp32 = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.02), steps=100)
    other = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.02), steps=100, precision=precision)
    np.testing.assert_allclose(other.final_mse, fp32.final_mse, rtol=0.1)


def test_capture_on_the_cpu_falls_back_to_the_same_eager_numbers(neox_lm):
    site = Site("block_output", 2)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 4), prompts(neox_lm, 4)
    eager = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=40)
    captured = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=40, capture=True)
    for field in ("loss", "prompt", "final_mse", "cosine"):
        np.testing.assert_array_equal(getattr(captured, field), getattr(eager, field))


def test_undoing_warm_up_steps_restores_the_exact_start(neox_lm):
    """Before capture the step runs a few times (the graph needs warm buffers); the method's reset
    must undo them completely (prompt, Adam moments and step count), or the captured run would
    start from a different point than an eager one."""
    site = Site("block_output", 2)
    residual = residual_function(neox_lm, site)
    target, init = real_targets(neox_lm, site, 2), prompts(neox_lm, 2)

    def run(warmup: int) -> tuple[torch.Tensor, torch.Tensor]:
        program = Soft(lr=0.01).program({"prompt": init}, mse_of(residual, target, "fp32"), capturable=False)
        for _ in range(warmup):
            program.step()
        program.reset()
        history = torch.stack([program.step() for _ in range(25)])
        return history, program.final()

    fresh, warmed = run(0), run(WARMUP_STEPS)
    torch.testing.assert_close(warmed[0], fresh[0], rtol=0, atol=0)
    torch.testing.assert_close(warmed[1], fresh[1], rtol=0, atol=0)


@pytest.mark.gpu
def test_a_captured_step_equals_the_eager_step_on_a_gpu(gpu_lm):
    lm = gpu_lm
    site = Site("hidden_states", lm.n_layers)
    residual = residual_function(lm, site)
    targets, init = real_targets(lm, site, 8).cuda(), prompts(lm, 8).cuda()
    eager = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=200, precision="tf32")
    captured = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=200, precision="tf32",
                              capture=True)
    assert_same_losses(captured.loss, eager.loss, mean_square(targets), rtol=1e-3)
    assert_same_losses(captured.final_mse, eager.final_mse, mean_square(targets), rtol=1e-2)


def test_unknown_precision_and_wrong_shapes_are_refused(neox_lm):
    residual = residual_function(neox_lm, Site("block_output", 1))
    with pytest.raises(ValueError, match="precision"):
        optimize_batch(residual, torch.zeros(1, SEQ, 32), {"prompt": torch.zeros(1, SEQ, 32)}, Soft(lr=0.01), 1,
                       precision="fp8")
    with pytest.raises(ValueError, match=r"\[B, S, d\]"):
        optimize_batch(residual, torch.zeros(1, SEQ, 16), {"prompt": torch.zeros(1, SEQ, 32)}, Soft(lr=0.01), 1)


@pytest.mark.gpu
def test_a_run_alone_and_in_a_batch_of_1024_agree_on_a_gpu(gpu_lm):
    """tf32 and captured, as the study runs: the batch changes kernels, not the optimisation."""
    lm = gpu_lm
    site = Site("hidden_states", lm.n_layers)
    residual = residual_function(lm, site)
    targets, init = real_targets(lm, site, 1024).cuda(), prompts(lm, 1024).cuda()
    batch = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=300, precision="tf32",
                           capture=True)
    alone = optimize_batch(residual, targets[7:8], {"prompt": init[7:8]}, Soft(lr=0.01), steps=300,
                           precision="tf32", capture=True)
    assert_same_losses(batch.loss[7], alone.loss[0], mean_square(targets[7].cpu()), rtol=1e-2)
    assert_same_losses(batch.final_mse[7], alone.final_mse[0], mean_square(targets[7].cpu()), rtol=5e-2)


def test_continuing_from_the_saved_state_equals_one_longer_run(neox_lm):
    """What the step budget relies on: 25 steps, stopped and continued from the final prompt
    and Adam's moments and step count for 35 more, are 60 steps in one go (fp32, CPU)."""
    site = Site("hidden_states", neox_lm.n_layers)
    residual = residual_function(neox_lm, site)
    targets, init = real_targets(neox_lm, site, 3), prompts(neox_lm, 3)
    fresh = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=60)
    first = optimize_batch(residual, targets, {"prompt": init}, Soft(lr=0.01), steps=25)
    assert first.adam_step.tolist() == [25, 25, 25]
    saved = {k: torch.from_numpy(getattr(first, k)) for k in ("prompt", "exp_avg", "exp_avg_sq")}
    rest = optimize_runs(residual, targets, saved, Soft(lr=0.01, resume_step=25), steps=35, batch_size=2)
    assert_same_losses(np.concatenate([first.loss, rest.loss], axis=1), fresh.loss, mean_square(targets), rtol=1e-5)
    np.testing.assert_allclose(rest.prompt, fresh.prompt, rtol=1e-5, atol=1e-6)
    assert_same_losses(rest.final_mse, fresh.final_mse, mean_square(targets), rtol=1e-5)
    assert rest.adam_step.tolist() == [60, 60, 60]
    restarted = optimize_batch(residual, targets, {"prompt": torch.from_numpy(first.prompt)}, Soft(lr=0.01), steps=35)
    assert not np.allclose(restarted.loss, rest.loss)  # without the moments it is another run


def test_the_gpu_fixture_leaves_the_shared_model_on_the_cpu(neox_lm):
    """The GPU tests take a copy: moving the session's model would fail every CPU test after them."""
    from conftest import on_device

    before = {k: v.clone() for k, v in neox_lm.model.state_dict().items()}
    moved = on_device(neox_lm, "meta")  # any device other than the CPU shows it
    assert moved.device.type == "meta" and neox_lm.device.type == "cpu"
    assert all(torch.equal(v, before[k]) for k, v in neox_lm.model.state_dict().items())
