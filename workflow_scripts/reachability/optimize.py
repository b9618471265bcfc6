"""Batched soft-prompt optimisation: B independent Adam runs in one forward/backward.

The loss is the sum over runs of each run's MSE, so each run gets exactly its own gradient,
and Adam is element-wise: this *is* B independent optimisations of the agenda's
`optimize_prompt`, up to float rounding. The loss history stays on the device and is copied
once at the end; a run whose loss turns NaN/Inf is marked diverged and cannot disturb the
others (every op is per sequence); a CUDA out-of-memory error halves the batch and carries on.

On CUDA the whole step (forward, backward, Adam, the loss-history write) is captured once per
batch in a CUDA graph and replayed: at the study's batch sizes an eager step is bound by
kernel launches, a replay is one launch. On the CPU, or where capture fails, the same step
runs eagerly.

Hard prompts (PEZ, Wen et al. 2023) use the same loop with `vocabulary` given: each step's
forward sees the nearest token embeddings of the continuous prompt (by cosine), the gradient
passes straight through to the continuous prompt, and each run keeps the best token sequence
it has seen.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .runs import RunId, batch_sizes

PRECISIONS = ("fp32", "tf32", "bf16")
WARMUP_STEPS = 3  # eager steps before capture (allocator, cuBLAS, Adam state), then undone
log = logging.getLogger(__name__)

Residual = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class BatchResult:
    """Per-run results, batch first, as NumPy arrays on the host."""

    prompt: np.ndarray  # [B, S, d] final soft prompt
    achieved: np.ndarray  # [B, S, d] residual the final prompt reaches (fp32 forward)
    loss: np.ndarray  # [B, steps] MSE before each update (as the agenda's loop records it)
    initial_mse: np.ndarray  # [B] MSE of the initial prompt
    final_mse: np.ndarray  # [B] MSE of the final prompt (fp32 forward)
    cosine: np.ndarray  # [B, S] per-position cosine(achieved, target)
    diverged: np.ndarray  # [B] bool: loss became NaN/Inf
    exp_avg: np.ndarray  # [B, S, d] Adam's first moment after the last step (to continue from)
    exp_avg_sq: np.ndarray  # [B, S, d] Adam's second moment
    adam_step: np.ndarray  # [B] Adam's step count
    tokens: np.ndarray  # [B, S] a hard-prompt run's best token ids ([B, 0] for soft prompts)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fields to store (a soft-prompt run has no tokens)."""
        return {k: v for k, v in vars(self).items() if k != "tokens" or v.shape[1]}

    @staticmethod
    def concatenate(parts: list[BatchResult]) -> BatchResult:
        return BatchResult(
            **{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(BatchResult)}
        )


def initial_prompt(run: RunId, seq_len: int, d_model: int) -> torch.Tensor:
    """The run's N(0, 1) initial soft prompt [seq_len, d_model], drawn on the CPU from the
    run's own seed, so it does not depend on the batch or the job."""
    generator = torch.Generator().manual_seed(run.seed)
    return torch.randn(seq_len, d_model, generator=generator)


def random_token_prompt(run: RunId, seq_len: int, vocabulary: torch.Tensor) -> torch.Tensor:
    """A hard-prompt run's initial prompt: the embeddings [S, d] of tokens drawn uniformly
    from the run's own seed (PEZ starts from real tokens, not from N(0, 1))."""
    generator = torch.Generator().manual_seed(run.seed)
    return vocabulary[torch.randint(len(vocabulary), (seq_len,), generator=generator)].float()


class StraightThrough(torch.autograd.Function):
    """Forward: exactly the token embeddings; backward: their gradient, to the continuous prompt."""

    @staticmethod
    def forward(ctx, prompt: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def project_to_tokens(prompt: torch.Tensor, vocabulary: torch.Tensor, unit_vocabulary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest token (by cosine) of every prompt vector: (straight-through embeddings
    [B, S, d], ids [B, S]). `unit_vocabulary` is `vocabulary` with rows of unit norm."""
    ids = (F.normalize(prompt.detach(), dim=-1) @ unit_vocabulary.T).argmax(dim=-1)
    return StraightThrough.apply(prompt, vocabulary[ids]), ids


@contextmanager
def precision_mode(precision: str, device: torch.device) -> Iterator[None]:
    """The float32 matmul mode of `precision` on `device`: exact for fp32, TensorFloat-32 for
    tf32 and bf16 (bf16 adds autocast inside the step). CPU matmuls stay exact float32. The
    global setting is restored on exit."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    previous = torch.get_float32_matmul_precision()
    if device.type == "cuda":  # TF32 is a CUDA notion
        torch.set_float32_matmul_precision("highest" if precision == "fp32" else "high")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def restore_start(prompt: torch.Tensor, init: torch.Tensor, optimizer: torch.optim.Adam, history: torch.Tensor,
                  position: torch.Tensor, start: dict[str, torch.Tensor] | None = None) -> None:
    """Undo warm-up steps in place: the initial prompt, Adam's moments and step count as they
    were at the start (`start`, or zero for a fresh run), an empty loss history. In place,
    because a captured graph holds these very tensors."""
    with torch.no_grad():
        prompt.copy_(init)
        for state in optimizer.state.values():
            for key, value in state.items():
                value.copy_(start[key]) if start else value.zero_()
        history.zero_()
        position.zero_()


def capture_step(step: Callable[[], None], reset: Callable[[], None]) -> Callable[[], None]:
    """`step` captured in a CUDA graph: warm up on a side stream, undo the warm-up, capture.
    Returns the graph's replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(WARMUP_STEPS):
            step()
    torch.cuda.current_stream().wait_stream(stream)
    reset()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def optimize_batch(
    residual: Residual,
    targets: torch.Tensor,
    init_prompts: torch.Tensor,
    steps: int,
    lr: float,
    precision: str = "fp32",
    progress: bool = False,
    capture: bool = False,
    resume: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    vocabulary: torch.Tensor | None = None,
) -> BatchResult:
    """Optimise B soft prompts toward B targets ([B, S, d] each) with Adam(lr) for `steps`.

    `capture` replays the step from a CUDA graph on CUDA devices (eager elsewhere, or when
    the model cannot be captured). `resume` = (exp_avg, exp_avg_sq, step count) continues runs
    whose prompts are `init_prompts` from Adam's saved state, exactly as if they had never
    stopped; the loss history then holds the new steps only. `vocabulary` (the token
    embeddings [V, d]) makes the runs hard prompts: the loss history is the MSE of each
    step's tokens, and the results are those of each run's best tokens."""
    if targets.shape != init_prompts.shape or targets.ndim != 3:
        raise ValueError(f"targets {tuple(targets.shape)} and prompts {tuple(init_prompts.shape)} must both be [B, S, d]")
    device = targets.device
    batch = targets.shape[0]
    graph = capture and device.type == "cuda"
    init = init_prompts.to(device=device, dtype=torch.float32)
    prompt = init.clone().requires_grad_(True)
    target = targets.float()
    optimizer = torch.optim.Adam([prompt], lr=lr, capturable=graph)
    start = None
    if resume is not None:  # Adam then skips its lazy initialisation and continues from here
        exp_avg, exp_avg_sq, done = resume
        start = {"step": torch.tensor(float(done), device=device if graph else "cpu"),
                 "exp_avg": exp_avg.to(device, torch.float32).clone(),
                 "exp_avg_sq": exp_avg_sq.to(device, torch.float32).clone()}
        optimizer.state[prompt] = {k: v.clone() for k, v in start.items()}
    history = torch.zeros(steps, batch, device=device)
    position = torch.zeros(1, dtype=torch.long, device=device)  # the history row to write next
    hard = vocabulary is not None
    if hard:
        vocabulary = vocabulary.to(device, torch.float32)
        unit_vocabulary = F.normalize(vocabulary, dim=-1)
        best_mse = torch.full((batch,), float("inf"), device=device)
        best_ids = torch.zeros(init.shape[:2], dtype=torch.long, device=device)

    def step() -> None:
        optimizer.zero_grad(set_to_none=False)  # in place: a captured graph keeps .grad
        seen, ids = project_to_tokens(prompt, vocabulary, unit_vocabulary) if hard else (prompt, None)
        # autocast per step, so its cast cache never outlives an Adam update
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            achieved = residual(seen)
        per_run = (achieved.float() - target).pow(2).mean(dim=(1, 2))
        per_run.sum().backward()
        optimizer.step()
        history.index_copy_(0, position, per_run.detach()[None])
        position.add_(1)
        if hard:  # the best tokens so far (in place, so a captured graph can hold it)
            better = per_run.detach() < best_mse
            best_mse.copy_(torch.where(better, per_run.detach(), best_mse))
            best_ids.copy_(torch.where(better[:, None], ids, best_ids))

    def reset() -> None:
        restore_start(prompt, init, optimizer, history, position, start)
        if hard:
            best_mse.fill_(float("inf"))
            best_ids.zero_()

    bar = tqdm(total=steps * batch, unit="run-step", unit_scale=True, mininterval=2.0,
               disable=not progress, file=sys.stderr, desc=f"optimise B={batch}")
    with precision_mode(precision, device):
        replay = step
        if graph and steps:
            try:
                replay = capture_step(step, reset)
            except RuntimeError as error:  # a model the graph cannot hold: same step, eager
                log.warning("CUDA graph capture failed (%s); running the step eagerly", error)
                torch.cuda.synchronize(device)
                reset()
        for _ in range(steps):
            replay()
            bar.update(batch)
    bar.close()
    with torch.no_grad(), precision_mode("fp32", device):
        if hard and not steps:  # no step taken: the initial prompt's own tokens
            best_ids = project_to_tokens(prompt, vocabulary, unit_vocabulary)[1]
        achieved = residual(vocabulary[best_ids] if hard else prompt).float()
        final_mse = (achieved - target).pow(2).mean(dim=(1, 2))
        cosine = F.cosine_similarity(achieved, target, dim=-1)
    diverged = ~torch.isfinite(history).all(dim=0) | ~torch.isfinite(final_mse)
    initial_mse = history[0] if steps else final_mse
    adam = optimizer.state.get(prompt) or {"exp_avg": torch.zeros_like(prompt), "exp_avg_sq": torch.zeros_like(prompt),
                                           "step": torch.tensor(0.0)}
    return BatchResult(
        prompt=prompt.detach().cpu().numpy(),
        achieved=achieved.cpu().numpy(),
        loss=history.T.cpu().numpy(),
        initial_mse=initial_mse.cpu().numpy(),
        final_mse=final_mse.cpu().numpy(),
        cosine=cosine.cpu().numpy(),
        diverged=diverged.cpu().numpy(),
        exp_avg=adam["exp_avg"].detach().cpu().numpy(),
        exp_avg_sq=adam["exp_avg_sq"].detach().cpu().numpy(),
        adam_step=np.full(batch, int(adam["step"].item()), dtype=np.int64),
        tokens=best_ids.cpu().numpy() if hard else np.zeros((batch, 0), dtype=np.int64),
    )


def optimize_runs(
    residual: Residual,
    targets: torch.Tensor,
    init_prompts: torch.Tensor,
    steps: int,
    lr: float,
    precision: str = "fp32",
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = False,
    capture: bool = False,
    resume: tuple[torch.Tensor, torch.Tensor, int] | None = None,
    vocabulary: torch.Tensor | None = None,
) -> BatchResult:
    """Optimise any number of runs in batches of at most `batch_size` (`resume`, `vocabulary`:
    as in optimize_batch, with moments for all runs).

    `targets` and `init_prompts` ([R, S, d]) may live on the CPU; each batch moves to `device`.
    On CUDA out-of-memory the batch size halves and the failed batch is retried.
    """
    device = torch.device(device)
    total = targets.shape[0]
    parts: list[BatchResult] = []
    start, size = 0, max(batch_sizes(total, batch_size), default=1)
    while start < total:
        stop = min(start + size, total)
        try:
            part = None if resume is None else (resume[0][start:stop], resume[1][start:stop], resume[2])
            parts.append(optimize_batch(
                residual, targets[start:stop].to(device), init_prompts[start:stop].to(device),
                steps, lr, precision, progress, capture, part, vocabulary,
            ))
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
