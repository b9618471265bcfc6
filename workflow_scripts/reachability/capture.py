"""One batch's steps, replayed from a CUDA graph where that works, and a record of how they ran.

At the study's batch sizes an eager step on a GPU is bound by kernel launches; a graph replay
is one launch. A graph needs warm buffers (the allocator, cuBLAS, Adam's lazy state), so the
step runs `WARMUP_STEPS` times on a side stream, is undone in place (`reset`) and then captured
once. Capture and replay run under the tensors' own device (`engine.device: cuda:1` is not the
current device). Each batch says how it ran — `captured`, or `eager` and why — and the pack,
`metrics.json` and every benchmark row carry it, so an eager number is never read as a
captured one. An out-of-memory error during capture propagates (the engine halves the batch
like any OOM); any other capture failure falls back to the same step, eagerly.

`backend_for` picks the real CUDA graphs; tests substitute a backend that simulates them on
the CPU (capture failure, device guard, transformers' capture check).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

WARMUP_STEPS = 3  # eager steps before capture, then undone
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ran:
    """How one batch's steps ran."""

    mode: str  # "captured" or "eager"
    reason: str = ""  # why eager

    def row(self, runs: int) -> dict:
        return {"runs": runs, "mode": self.mode, "reason": self.reason}


class CudaGraphs:
    """CUDA streams and graphs on the tensors' device."""

    capturable = True  # Adam keeps its step count on the device

    def guard(self, device: torch.device) -> AbstractContextManager:
        return torch.cuda.device(device)

    def warm_up(self, step: Callable[[], None], n: int, device: torch.device) -> None:
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):
            for _ in range(n):
                step()
        torch.cuda.current_stream(device).wait_stream(stream)

    def capture(self, step: Callable[[], None], device: torch.device) -> Callable[[], None]:
        graph = torch.cuda.CUDAGraph()
        outer = torch.cuda.current_stream(device)
        try:
            with torch.cuda.graph(graph):
                step()
        finally:  # torch.cuda.graph leaves its capture stream current when capture_end raises
            torch.cuda.set_stream(outer)
        return graph.replay

    def synchronize(self, device: torch.device) -> None:
        torch.cuda.synchronize(device)


def backend_for(device: torch.device) -> CudaGraphs | None:
    """The graph backend of a device (None: there is nothing to capture, e.g. the CPU)."""
    return CudaGraphs() if device.type == "cuda" else None


def run_steps(step: Callable[[], None], reset: Callable[[], None], steps: int, device: torch.device,
              backend: CudaGraphs | None, why_not: str = "", tick: Callable[[], None] = lambda: None) -> Ran:
    """Run `step` `steps` times, from a graph where `backend` can capture it (`why_not`: why
    there is no backend); `tick` after each step."""
    replay, ran = step, Ran("eager", why_not)
    if backend is not None and steps <= WARMUP_STEPS:
        ran = Ran("eager", f"{steps} steps: no more than the capture's {WARMUP_STEPS} warm-up steps")
    elif backend is not None:
        with backend.guard(device):
            try:
                backend.warm_up(step, WARMUP_STEPS, device)
                reset()
                replay, ran = backend.capture(step, device), Ran("captured")
            except torch.OutOfMemoryError:
                raise  # the batch is retried smaller, like any out-of-memory error
            except RuntimeError as error:  # a model the graph cannot hold: the same step, eagerly
                log.warning("CUDA graph capture failed (%s); running the step eagerly", error)
                backend.synchronize(device)
                reset()
                ran = Ran("eager", f"capture failed: {str(error).splitlines()[0][:200]}")
    with backend.guard(device) if backend is not None else nullcontext():
        for _ in range(steps):
            replay()
            tick()
    return ran
