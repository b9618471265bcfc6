"""How a batch of runs moves toward its targets: one method per kind of prompt, side by side.

A method turns one batch — its per-run inputs (on the device) and the loss (per-run MSE of the
residual that given input embeddings reach) — into a `Program`: a step that updates every run
in place and returns the per-run loss it measured, a reset that undoes warm-up steps (in place:
a captured graph holds these very tensors), the input embeddings whose residual is the run's
result, and the method's own arrays to keep. The engine (`optimize.py`) runs any of them and
owns what they share: the truncated forward, the loss history, capture, precision, the final
float32 evaluation and out-of-memory halving.

  Soft  the agenda's soft prompt: Adam on a continuous prompt [S, d], from N(0, 1) or resumed
        from saved moments (the step budget's continuation)
  Pez   a hard prompt (Wen et al. 2023): Adam on a continuous prompt whose forward sees the
        nearest token embeddings (straight-through); each run keeps the best tokens it has seen
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .precision import exact_float32
from .runs import RunId

Loss = Callable[[torch.Tensor], torch.Tensor]  # input embeddings [B, S, d] -> per-run MSE [B]


@dataclass
class Program:
    """One batch's optimisation, in a method's own terms."""

    step: Callable[[], torch.Tensor]  # one update of every run; the per-run loss it measured [B]
    reset: Callable[[], None]  # back to the start, in place
    final: Callable[[], torch.Tensor]  # the input embeddings [B, S, d] the result is evaluated at
    arrays: Callable[[], dict[str, np.ndarray]]  # the method's own per-run results, on the host


def initial_prompt(run: RunId, seq_len: int, d_model: int) -> torch.Tensor:
    """The run's N(0, 1) initial soft prompt [seq_len, d_model], drawn on the CPU from the
    run's own seed, so it does not depend on the batch or the job."""
    generator = torch.Generator().manual_seed(run.seed)
    return torch.randn(seq_len, d_model, generator=generator)


def initial_tokens(run: RunId, seq_len: int, n_tokens: int) -> torch.Tensor:
    """A hard-prompt run's initial token ids [seq_len], uniform from the run's own seed."""
    generator = torch.Generator().manual_seed(run.seed)
    return torch.randint(n_tokens, (seq_len,), generator=generator)


def random_token_prompt(run: RunId, seq_len: int, vocabulary: torch.Tensor) -> torch.Tensor:
    """A PEZ run's initial prompt: the embeddings [S, d] of its initial tokens (PEZ starts from
    real tokens, not from N(0, 1))."""
    return vocabulary[initial_tokens(run, seq_len, len(vocabulary))].float()


class StraightThrough(torch.autograd.Function):
    """Forward: exactly the token embeddings; backward: their gradient, to the continuous prompt."""

    @staticmethod
    def forward(ctx, prompt: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.clone()

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad, None


def nearest_token_ids(prompt: torch.Tensor, unit_vocabulary: torch.Tensor) -> torch.Tensor:
    """The nearest token (by cosine) of every prompt vector [B, S] — in exact float32 whatever
    the study's precision: TF32 rounding would flip near-ties among 50k tokens."""
    with exact_float32():
        return (F.normalize(prompt.detach().float(), dim=-1) @ unit_vocabulary.T).argmax(dim=-1)


def project_to_tokens(prompt: torch.Tensor, vocabulary: torch.Tensor, unit_vocabulary: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The nearest token of every prompt vector: (straight-through embeddings [B, S, d], ids
    [B, S]). `unit_vocabulary` is `vocabulary` with rows of unit norm."""
    ids = nearest_token_ids(prompt, unit_vocabulary)
    return StraightThrough.apply(prompt, vocabulary[ids]), ids


class Best:
    """Each run's best (lowest-loss) token sequence so far, kept in place."""

    def __init__(self, start_ids: torch.Tensor) -> None:
        self.start = start_ids.clone()
        self.ids = start_ids.clone()
        self.loss = torch.full(start_ids.shape[:1], float("inf"), device=start_ids.device)

    def update(self, loss: torch.Tensor, ids: torch.Tensor) -> None:
        better = loss < self.loss
        self.loss.copy_(torch.where(better, loss, self.loss))
        self.ids.copy_(torch.where(better[:, None], ids, self.ids))

    def reset(self) -> None:
        self.loss.fill_(float("inf"))
        self.ids.copy_(self.start)


def _adam(prompt: torch.Tensor, lr: float, capturable: bool, inputs: dict, resume_step: int | None):
    """Adam over the prompt, and its state at the start: saved moments and step count when
    resuming (Adam then skips its lazy initialisation), else None (zeros)."""
    adam = torch.optim.Adam([prompt], lr=lr, capturable=capturable)
    if resume_step is None:
        return adam, None
    start = {"step": torch.tensor(float(resume_step), device=prompt.device if capturable else "cpu"),
             "exp_avg": inputs["exp_avg"].float().clone(), "exp_avg_sq": inputs["exp_avg_sq"].float().clone()}
    adam.state[prompt] = {k: v.clone() for k, v in start.items()}
    return adam, start


def _restore(prompt: torch.Tensor, init: torch.Tensor, adam: torch.optim.Adam, start: dict | None) -> None:
    """The prompt, Adam's moments and step count as at the start, in place."""
    with torch.no_grad():
        prompt.copy_(init)
        for state in adam.state.values():
            for key, value in state.items():
                value.copy_(start[key]) if start else value.zero_()


def _adam_arrays(prompt: torch.Tensor, adam: torch.optim.Adam) -> dict[str, np.ndarray]:
    state = adam.state.get(prompt) or {"exp_avg": torch.zeros_like(prompt), "exp_avg_sq": torch.zeros_like(prompt),
                                       "step": torch.tensor(0.0)}
    return {"prompt": prompt.detach().cpu().numpy(),
            "exp_avg": state["exp_avg"].detach().cpu().numpy(),
            "exp_avg_sq": state["exp_avg_sq"].detach().cpu().numpy(),
            "adam_step": np.full(len(prompt), int(state["step"].item()), dtype=np.int64)}


@dataclass(frozen=True)
class Soft:
    """The agenda's soft prompt. Inputs: `prompt` [B, S, d]; with `resume_step`, also Adam's
    `exp_avg` and `exp_avg_sq` after that many steps (the runs then continue exactly as if they
    had never stopped)."""

    lr: float
    resume_step: int | None = None

    def program(self, inputs: dict[str, torch.Tensor], loss: Loss, capturable: bool) -> Program:
        init = inputs["prompt"].float()
        prompt = init.clone().requires_grad_(True)
        adam, start = _adam(prompt, self.lr, capturable, inputs, self.resume_step)

        def step() -> torch.Tensor:
            adam.zero_grad(set_to_none=False)  # in place: a captured graph keeps .grad
            per_run = loss(prompt)
            per_run.sum().backward()
            adam.step()
            return per_run.detach()

        return Program(step, lambda: _restore(prompt, init, adam, start), lambda: prompt.detach(),
                       lambda: _adam_arrays(prompt, adam))


@dataclass(frozen=True)
class Pez:
    """A hard prompt by PEZ. Inputs: `prompt` [B, S, d] (the embeddings of the run's initial
    tokens). `vocabulary` is the token embeddings [V, d] that may be used (the tokenizer's
    tokens, not an embedding's padding rows). The loss history is each step's tokens' MSE; the
    result is each run's best tokens (`tokens` [B, S])."""

    lr: float
    vocabulary: torch.Tensor

    def program(self, inputs: dict[str, torch.Tensor], loss: Loss, capturable: bool) -> Program:
        init = inputs["prompt"].float()
        vocabulary = self.vocabulary.to(init.device, torch.float32)
        unit = F.normalize(vocabulary, dim=-1)
        prompt = init.clone().requires_grad_(True)
        adam, _ = _adam(prompt, self.lr, capturable, inputs, None)
        best = Best(nearest_token_ids(init, unit))  # no step taken: the initial prompt's own tokens

        def step() -> torch.Tensor:
            adam.zero_grad(set_to_none=False)
            seen, ids = project_to_tokens(prompt, vocabulary, unit)
            per_run = loss(seen)
            per_run.sum().backward()
            adam.step()
            best.update(per_run.detach(), ids)
            return per_run.detach()

        def reset() -> None:
            _restore(prompt, init, adam, None)
            best.reset()

        return Program(step, reset, lambda: vocabulary[best.ids],
                       lambda: {**_adam_arrays(prompt, adam), "tokens": best.ids.cpu().numpy()})
