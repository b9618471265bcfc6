"""The captured step and its fallbacks, on the CPU by simulation (the real graphs: `-m gpu`)."""

from contextlib import contextmanager

import numpy as np
import pytest
import torch

from equality import assert_same_losses, mean_square
from reachability import capture
from reachability.capture import WARMUP_STEPS, CudaGraphs
from reachability.forward import residual_function
from reachability.methods import Soft
from reachability.optimize import optimize_batch, optimize_runs
from reachability.sites import Site
from test_optimize import prompts, real_targets


class Simulated(CudaGraphs):
    """CUDA graphs as the engine sees them, on the CPU: the warm-up runs the step, a capture
    returns a replay that runs it with transformers' capture check on (as under a real capture),
    the device guard says which device is current. `fail(n)` may raise at the n-th capture."""

    capturable = False  # Adam's step count stays on the host, as the CPU needs

    def __init__(self, fail=lambda n: None) -> None:
        self.fail, self.captures, self.current, self.seen = fail, 0, None, []

    @contextmanager
    def guard(self, device):
        previous, self.current = self.current, device
        try:
            yield
        finally:
            self.current = previous

    def warm_up(self, step, n, device):
        for _ in range(n):
            step()

    def capture(self, step, device):
        import transformers.utils.import_utils as import_utils

        self.captures += 1
        self.seen.append(("capture", self.current, device))
        self.fail(self.captures)

        def replay():
            self.seen.append(("replay", self.current, device))
            real, import_utils.is_cuda_stream_capturing = import_utils.is_cuda_stream_capturing, lambda: True
            try:
                step()
            finally:
                import_utils.is_cuda_stream_capturing = real

        return replay

    def synchronize(self, device):
        pass


@pytest.fixture
def batch(neox_lm):
    site = Site("hidden_states", neox_lm.n_layers)
    return residual_function(neox_lm, site), real_targets(neox_lm, site, 4), {"prompt": prompts(neox_lm, 4)}


def simulate(monkeypatch, backend: Simulated) -> Simulated:
    monkeypatch.setattr(capture, "backend_for", lambda device: backend)
    return backend


def test_a_captured_batch_equals_the_eager_one_and_says_how_it_ran(batch, monkeypatch):
    residual, targets, inputs = batch
    eager = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=20)
    simulate(monkeypatch, Simulated())
    captured = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=20, capture=True)
    for field in ("loss", "prompt", "final_mse", "cosine", "exp_avg", "adam_step"):
        np.testing.assert_array_equal(getattr(captured, field), getattr(eager, field))
    assert captured.batches == [{"runs": 4, "mode": "captured", "reason": ""}]
    assert eager.batches == [{"runs": 4, "mode": "eager", "reason": "engine.capture is off"}]


@pytest.mark.parametrize("steps", range(0, WARMUP_STEPS + 1))
def test_fewer_steps_than_the_warm_up_run_eagerly_and_say_why(batch, monkeypatch, steps):
    """A continuation may run 1 or 2 steps (budget - done): the warm-up would write past the
    loss history (on CUDA a device-side assert that poisons the context)."""
    residual, targets, inputs = batch
    eager = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=steps)
    backend = simulate(monkeypatch, Simulated())
    short = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=steps, capture=True)
    assert backend.captures == 0 and short.loss.shape == (4, steps)
    assert short.batches[0]["mode"] == "eager" and "warm-up" in short.batches[0]["reason"]
    np.testing.assert_array_equal(short.final_mse, eager.final_mse)


def test_a_failed_capture_runs_the_same_step_eagerly_and_records_why(batch, monkeypatch):
    residual, targets, inputs = batch
    eager = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=20)

    def refuse(n):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    simulate(monkeypatch, Simulated(refuse))
    fallen = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=20, capture=True)
    assert fallen.batches == [{"runs": 4, "mode": "eager",
                               "reason": "capture failed: operation not permitted when stream is capturing"}]
    for field in ("loss", "prompt", "final_mse"):  # the warm-up was undone before the eager run
        np.testing.assert_array_equal(getattr(fallen, field), getattr(eager, field))


def test_out_of_memory_while_capturing_halves_the_batch(neox_lm, monkeypatch):
    site = Site("block_output", 2)
    residual = residual_function(neox_lm, site)
    targets, inputs = real_targets(neox_lm, site, 7), {"prompt": prompts(neox_lm, 7)}

    def first_fails(n):
        if n == 1:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated, during capture)")

    simulate(monkeypatch, Simulated(first_fails))
    result = optimize_runs(residual, targets, inputs, Soft(lr=0.01), steps=10, batch_size=8, capture=True)
    assert [b["runs"] for b in result.batches] == [4, 3]
    assert all(b["mode"] == "captured" for b in result.batches)
    reference = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=10)
    assert_same_losses(result.final_mse, reference.final_mse, mean_square(targets), rtol=1e-5)


def test_capture_and_replay_run_under_the_tensors_device(batch, monkeypatch):
    """engine.device cuda:1 is not the current device: the graph must be captured, and replayed,
    on the device the tensors live on."""
    residual, targets, inputs = batch
    backend = simulate(monkeypatch, Simulated())
    optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=6, capture=True)
    assert backend.seen and all(current == device == targets.device for _, current, device in backend.seen)
    assert [kind for kind, _, _ in backend.seen] == ["capture"] + ["replay"] * 6


@pytest.mark.gpu
def test_a_real_capture_failure_falls_back_and_restores_the_stream(gpu_lm):
    """A step that reads a value back to the host cannot be captured: the batch runs eagerly, says
    why, and the current stream is the default stream again."""
    site = Site("hidden_states", gpu_lm.n_layers)
    residual = residual_function(gpu_lm, site)

    def syncing(x):
        out = residual(x)
        float(out.sum())  # a host read: illegal while capturing
        return out

    targets, inputs = real_targets(gpu_lm, site, 4).cuda(), {"prompt": prompts(gpu_lm, 4).cuda()}
    result = optimize_batch(syncing, targets, inputs, Soft(lr=0.01), steps=10, capture=True)
    assert result.batches[0]["mode"] == "eager" and result.batches[0]["reason"].startswith("capture failed")
    assert torch.cuda.current_stream() == torch.cuda.default_stream()
    eager = optimize_batch(residual, targets, inputs, Soft(lr=0.01), steps=10)
    assert_same_losses(result.final_mse, eager.final_mse, mean_square(targets.cpu()), rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available() or torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_a_batch_on_a_second_device_is_captured_there(neox_lm):
    from conftest import on_device

    lm = on_device(neox_lm, "cuda:1")
    site = Site("hidden_states", lm.n_layers)
    targets, inputs = real_targets(lm, site, 4).to("cuda:1"), {"prompt": prompts(lm, 4).to("cuda:1")}
    result = optimize_batch(residual_function(lm, site), targets, inputs, Soft(lr=0.01), steps=20, capture=True)
    assert result.batches[0]["mode"] == "captured", result.batches


def test_how_batches_ran_is_summed_over_packs_and_a_failed_capture_warns():
    from reachability.results import batch_modes, capture_warnings

    short = "2 steps: no more than the capture's 3 warm-up steps"
    packs = [{"batches": [{"runs": 4, "mode": "captured", "reason": ""},
                          {"runs": 3, "mode": "eager", "reason": "capture failed: x"}]},
             {"base_batches": [{"runs": 2, "mode": "captured", "reason": ""}],  # a continued pack's first part
              "batches": [{"runs": 2, "mode": "eager", "reason": short}]}]
    modes = batch_modes(packs)
    assert modes == [{"mode": "captured", "reason": "", "batches": 2, "runs": 6},
                     {"mode": "eager", "reason": short, "batches": 1, "runs": 2},
                     {"mode": "eager", "reason": "capture failed: x", "batches": 1, "runs": 3}]
    assert capture_warnings(modes) == ["3 runs in 1 batches ran eagerly: capture failed: x"]
