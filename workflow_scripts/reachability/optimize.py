"""The engine: many independent optimisations toward residual targets in one forward/backward.

A batch of B runs shares one forward of the truncated model (`forward.residual_function`) and
one backward of the summed per-run MSE, so each run gets exactly its own gradient; with Adam
element-wise, this *is* B independent optimisations, up to float rounding. What moves a run is
its method (`methods.py`: the soft prompt, PEZ); what they all share lives here: the loss
history on the device (copied once), the step replayed from a CUDA graph (`capture.py`), the
precision (`precision.py`), the final evaluation in exact float32, the diverged flag (a run
whose loss turns NaN/Inf cannot disturb the others: every op is per sequence), and the
halving of the batch on a CUDA out-of-memory error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import capture as graphs
from .forward import followed_by
from .methods import Program
from .objectives import MSE, loss_of
from .precision import precision_mode
from .runs import batch_sizes

log = logging.getLogger(__name__)

Residual = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class BatchResult:
    """Per-run arrays, batch first, on the host — `loss` [B, steps] (the MSE before each
    update), `initial_mse`, `final_mse` and `cosine` [B, S] (of the result, in float32),
    `achieved` [B, S, d], `diverged`, and the method's own (`prompt`, Adam's moments,
    `tokens`) — and how each batch ran (`batches`: runs, mode, reason)."""

    arrays: dict[str, np.ndarray]
    batches: list[dict] = field(default_factory=list)

    def __getattr__(self, name: str) -> np.ndarray:
        try:
            return self.__dict__["arrays"][name]
        except KeyError:
            raise AttributeError(name) from None

    @staticmethod
    def concatenate(parts: list[BatchResult]) -> BatchResult:
        """One result of several, in order. Parts of different methods (PEZ and GCG runs of one
        pack) may lack each other's arrays or run other numbers of steps: the missing entries
        are filled (NaN, -1, False) and the shorter loss histories padded with NaN."""
        keys = list(dict.fromkeys(k for p in parts for k in p.arrays))
        return BatchResult({k: np.concatenate(_filled([p.arrays.get(k) for p in parts], [len(p) for p in parts]))
                            for k in keys}, [b for p in parts for b in p.batches])

    def __len__(self) -> int:
        return len(self.__dict__["arrays"]["final_mse"])


def _filled(arrays: list[np.ndarray | None], lengths: list[int]) -> list[np.ndarray]:
    """The parts' arrays of one key, each padded to the largest trailing shape (NaN for floats,
    -1 for integers, False for booleans) and missing ones made of that fill."""
    given = [a for a in arrays if a is not None]
    shape = tuple(max(a.shape[i] for a in given) for i in range(1, given[0].ndim))
    dtype = np.result_type(*given)
    fill = np.nan if np.issubdtype(dtype, np.floating) else False if np.issubdtype(dtype, np.bool_) else -1
    out = []
    for a, n in zip(arrays, lengths):
        full = np.full((n, *shape), fill, dtype=dtype)
        if a is not None:
            full[tuple(slice(0, s) for s in a.shape)] = a
        out.append(full)
    return out


def evaluate(residual: Residual, program: Program, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """What the result reaches, in exact float32: achieved, final MSE, per-position cosine; and
    where the result reads as a text other than itself (a token mixture's), that text's MSE and
    cosine (`text_mse`, `text_cosine`)."""
    with torch.no_grad(), precision_mode("fp32", target.device):
        achieved = residual(program.final()).float()
        out = {"achieved": achieved, "final_mse": (achieved - target).pow(2).mean(dim=(1, 2)),
               "cosine": F.cosine_similarity(achieved, target, dim=-1)}
        if program.text is not None:
            text = residual(program.text()).float()
            out |= {"text_mse": (text - target).pow(2).mean(dim=(1, 2)), "text_cosine": F.cosine_similarity(text, target, dim=-1)}
        return out


def optimize_batch(residual: Residual, targets: torch.Tensor, inputs: dict[str, torch.Tensor], method, steps: int,
                   precision: str = "fp32", capture: bool = False, progress: bool = False,
                   objective: dict | None = None, text: torch.Tensor | None = None,
                   scored: list[int] | None = None) -> BatchResult:
    """Move B runs toward B targets [B, S, d] by `method` for `steps` steps, on the targets'
    device, minimising `objective` (objectives.loss_of; default the MSE). `inputs` are the
    method's per-run tensors (e.g. `prompt` [B, S, d]). `capture` replays the step from a CUDA
    graph where the device has them. The loss history is the objective's; the initial and final
    MSE and the cosine are measured whatever it is. With a `text` (input embeddings [B, T, d]),
    each run's prompt [B, P, d] is followed by its text and scored at the positions `scored` of
    the whole sequence (targets [B, len(scored), d]: prefix steering)."""
    target, device, batch = targets.float(), targets.device, targets.shape[0]
    if targets.ndim != 3 or any(v.shape[0] != batch for v in inputs.values()):
        raise ValueError(f"targets {tuple(targets.shape)} must be [B, S, d] and every input batch first "
                         f"({ {k: tuple(v.shape) for k, v in inputs.items()} })")
    if text is not None:
        if text.shape[0] != batch or len(scored or ()) != targets.shape[1]:
            raise ValueError(f"texts {tuple(text.shape)} must be one per target and the targets {tuple(targets.shape)} "
                             f"hold the {len(scored or ())} scored positions")
        residual = followed_by(residual, text.to(device), list(scored))
    elif "prompt" in inputs and inputs["prompt"].shape != targets.shape:
        raise ValueError(f"targets {tuple(targets.shape)} and prompts {tuple(inputs['prompt'].shape)} must both be [B, S, d]")
    elif any(v.ndim > 1 and v.shape[1] != targets.shape[1] for v in inputs.values()):  # tokens, logits: S positions
        raise ValueError(f"every input holds the targets' {targets.shape[1]} positions "
                         f"({ {k: tuple(v.shape) for k, v in inputs.items()} })")
    own = getattr(method, "capturable", True)  # a method whose steps change shape (the inversion) is never captured
    backend = graphs.backend_for(device) if capture and own else None
    why_not = "engine.capture is off" if not capture else f"{method.name}: not capturable" if not own else \
        f"no CUDA graphs on {device.type}"
    with precision_mode(precision, device):  # checks the precision's name first
        program = method.program({k: v.to(device) for k, v in inputs.items()},
                                 loss_of(objective, residual, target, precision),
                                 capturable=backend is not None and backend.capturable)
        # the initial MSE: the first loss under the MSE (as the agenda's loop records it), else measured (also
        # where the first loss is not the whole sequence's: the inversion's is its first position's)
        plain = (objective or MSE)["kind"] == "mse" and steps and not getattr(method, "per_position", False)
        initial = None if plain else evaluate(residual, program, target)["final_mse"]
        history = torch.zeros(steps, batch, device=device)
        position = torch.zeros(1, dtype=torch.long, device=device)  # the history row to write next

        def step() -> None:
            history.index_copy_(0, position, program.step()[None])
            position.add_(1)

        def reset() -> None:
            program.reset()
            history.zero_()
            position.zero_()

        bar = tqdm(total=steps * batch, unit="run-step", unit_scale=True, mininterval=2.0, disable=not progress,
                   file=sys.stderr, desc=f"optimise B={batch}")
        ran = graphs.run_steps(step, reset, steps, device, backend, why_not, tick=lambda: bar.update(batch))
        bar.close()
    result = evaluate(residual, program, target)
    diverged = ~torch.isfinite(history).all(dim=0) | ~torch.isfinite(result["final_mse"])
    arrays = {"loss": history.T, "initial_mse": history[0] if initial is None else initial,
              "diverged": diverged,
              **result}
    return BatchResult({**{k: v.cpu().numpy() for k, v in arrays.items()}, **program.arrays()}, [ran.row(batch)])


def optimize_runs(residual: Residual, targets: torch.Tensor, inputs: dict[str, torch.Tensor], method, steps: int, *,
                  precision: str = "fp32", capture: bool = False, batch_size: int = 256,
                  device: torch.device | str = "cpu", progress: bool = False, objective: dict | None = None,
                  text: torch.Tensor | None = None, scored: list[int] | None = None) -> BatchResult:
    """Any number of runs ([R, ...] tensors, which may live on the CPU; `text` [R, T, d] too) in
    equal batches of at most `batch_size`, each moved to `device`. On CUDA out-of-memory — in a
    step or while capturing it — the batch size halves and the failed batch is retried."""
    device = torch.device(device)
    total = targets.shape[0]
    parts: list[BatchResult] = []
    start, size = 0, max(batch_sizes(total, batch_size), default=1)
    while start < total:
        stop = min(start + size, total)
        try:
            parts.append(optimize_batch(residual, targets[start:stop].to(device),
                                        {k: v[start:stop] for k, v in inputs.items()}, method, steps,
                                        precision=precision, capture=capture, progress=progress,
                                        objective=objective, text=None if text is None else text[start:stop],
                                        scored=scored))
        except torch.OutOfMemoryError:
            if size == 1:
                raise
            size = max(batch_sizes(total - start, (size + 1) // 2))
            log.warning("CUDA out of memory at batch %d; retrying runs %d.. with batch %d", stop - start, start, size)
            if device.type == "cuda":
                torch.cuda.empty_cache()
            continue
        start = stop
    return BatchResult.concatenate(parts)
