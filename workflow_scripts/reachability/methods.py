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
  Gcg   a hard prompt by greedy coordinate gradient (Zou et al. 2023): token swaps chosen by the
        one-hot gradient and tried in one forward of many candidates; the best tokens kept
Each method also says how its runs start (`start`: from the runs' identities) and `build` makes
the one a condition runs with, by the registry's name for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import torch
import torch.nn.functional as F

from .forward import Prefix
from .precision import exact_float32
from .runs import RunId
from .seeds import stable_seed

Loss = Callable[..., torch.Tensor]  # input embeddings [B, S, d] (rows, prefix) -> per-run loss [B] (objectives.py)


@dataclass
class Program:
    """One batch's optimisation, in a method's own terms."""

    step: Callable[[], torch.Tensor]  # one update of every run; the per-run loss it measured [B]
    reset: Callable[[], None]  # back to the start, in place
    final: Callable[[], torch.Tensor]  # the input embeddings [B, S, d] the result is evaluated at
    arrays: Callable[[], dict[str, np.ndarray]]  # the method's own per-run results, on the host
    text: Callable[[], torch.Tensor] | None = None  # the embeddings of the text the result reads as, where that
    #                                                  is not the result itself (a token mixture's argmax tokens)


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


METHODS: dict[str, type] = {}  # the registry: each method's class by its name (config `methods`)


def method(cls: type) -> type:
    """Register a method class under its `name`. A class declares, as literals (they are read
    without importing torch: runs.method_records): `name`, `label`, `begins` ('normal': its runs
    start where the soft prompt's do; 'logits': from small random logits over tokens; 'tokens':
    as text, from random tokens or none), `resumes` (whether a run can continue from its saved
    state exactly: what the step budget's continuation needs), `settings` (the JSON schema of its
    own config keys, which arrive as its fields), `per_position` (one step per position, whatever
    the step budget) and `claim` (what its findings row says when it reaches as well as the soft
    prompt)."""
    METHODS[cls.name] = cls
    return cls


@dataclass(frozen=True)
class AdamPrompt:
    """Adam on a continuous parameter (`key`: the prompt [B, S, d], or what stands for one); a
    method of this kind is it with hooks — the input embeddings the parameter stands for
    (`shown`: the prompt itself, or a token mixture), what the forward sees of it (`seen`: what it
    shows, or the tokens it is nearest, for a text method, with their ids), what happens to it
    after each update (`after_step`: nothing, or a projection) and what a run keeps (`kept`: the
    prompt and Adam's moments). Inputs: the parameter, and with `resume_step` Adam's `exp_avg`
    and `exp_avg_sq` after that many steps (runs then continue exactly as if they had never
    stopped). A method that sees tokens keeps each run's best tokens (`tokens` [B, S]), and its
    result is their embeddings; a method that needs the token embeddings [V, d] has a
    `vocabulary` field (given only to those)."""

    lr: float
    resume_step: int | None = None
    key = "prompt"  # the input Adam moves

    def start(self, runs: list[RunId], seq_len: int, d_model: int) -> dict[str, torch.Tensor]:
        return {"prompt": torch.stack([initial_prompt(r, seq_len, d_model) for r in runs])}

    def shown(self, parameter: torch.Tensor) -> torch.Tensor:
        return parameter

    def seen(self, parameter: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.shown(parameter), None

    def after_step(self, parameter: torch.Tensor) -> None:
        pass

    def text(self, parameter: torch.Tensor) -> torch.Tensor | None:
        """The token ids [B, S] a continuous result reads as, where the method has them."""
        return None

    def kept(self, parameter: torch.Tensor, adam: torch.optim.Adam) -> dict[str, np.ndarray]:
        return _adam_arrays(parameter, adam)

    def on(self, device: torch.device) -> AdamPrompt:
        """This method with what its hooks read ready on `device`, before any step (a captured
        step may not read the host)."""
        if getattr(self, "vocabulary", None) is None:
            return self
        return dataclasses.replace(self, vocabulary=self.vocabulary.to(device, torch.float32))

    def program(self, inputs: dict[str, torch.Tensor], loss: Loss, capturable: bool) -> Program:
        init = inputs[self.key].float().clone()  # its own: a constrained start is projected in place
        me = self.on(init.device)
        with torch.no_grad():
            me.after_step(init)  # a constrained method starts inside its constraint
        prompt = init.clone().requires_grad_(True)
        adam, start = _adam(prompt, me.lr, capturable, inputs, me.resume_step)
        ids = me.seen(init)[1]
        best = None if ids is None else Best(ids)  # a text method: the start's own tokens

        def step() -> torch.Tensor:
            adam.zero_grad(set_to_none=False)  # in place: a captured graph keeps .grad
            embeds, ids = me.seen(prompt)
            per_run = loss(embeds)
            per_run.sum().backward()
            adam.step()
            with torch.no_grad():
                me.after_step(prompt)
            if best is not None:
                best.update(per_run.detach(), ids)
            return per_run.detach()

        def reset() -> None:
            _restore(prompt, init, adam, start)
            if best is not None:
                best.reset()

        def final() -> torch.Tensor:
            return me.shown(prompt.detach()) if best is None else me.vocabulary[best.ids]

        def arrays() -> dict[str, np.ndarray]:
            text = me.text(prompt.detach()) if best is None else best.ids
            return {**me.kept(prompt, adam), **({} if text is None else {"tokens": text.cpu().numpy()})}

        has_text = best is None and me.text(init) is not None
        return Program(step, reset, final, arrays, (lambda: me.vocabulary[me.text(prompt.detach())]) if has_text else None)


@method
@dataclass(frozen=True)
class Soft(AdamPrompt):
    """The agenda's soft prompt: Adam on a continuous prompt from N(0, 1), nothing else."""

    name = "soft"
    label = "soft"


@method
@dataclass(frozen=True)
class Pez(AdamPrompt):
    """A hard prompt by PEZ (Wen et al. 2023): the forward sees each position's nearest token
    embedding (by cosine), the gradient reaches the continuous prompt straight through; from the
    embeddings of random tokens. The loss history is each step's tokens' MSE."""

    name = "pez"
    claim = "text reaches as well as a vector"
    label = "PEZ"
    begins = "tokens"
    resumes = False  # its best tokens so far are not part of the saved state
    vocabulary: torch.Tensor | None = None

    def start(self, runs: list[RunId], seq_len: int, d_model: int) -> dict[str, torch.Tensor]:
        return {"prompt": torch.stack([random_token_prompt(r, seq_len, self.vocabulary) for r in runs])}

    def seen(self, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return project_to_tokens(prompt, self.vocabulary, F.normalize(self.vocabulary, dim=-1))


@method
@dataclass(frozen=True)
class NormBall(AdamPrompt):
    """A soft prompt held inside the token embeddings' norm ball: after every update each
    position is scaled back to at most `radius` (default: the largest token embedding's norm),
    so the prompt stays where tokens live in norm (the research log's soft prompts sit 26×
    beyond them). Its runs start where the soft prompt's do, projected into the ball."""

    name = "norm_ball"
    label = "norm ball"
    claim = "the norm bound costs little"
    settings = {"radius": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                           "description": "the ball's radius (null: the largest token embedding's norm)"}}
    radius: float | None = None
    vocabulary: torch.Tensor | None = None

    def on(self, device: torch.device) -> NormBall:
        me = super().on(device)
        return me if me.radius else dataclasses.replace(me, radius=float(me.vocabulary.norm(dim=-1).max()))

    def after_step(self, prompt: torch.Tensor) -> None:
        prompt.mul_((self.radius / prompt.norm(dim=-1, keepdim=True).clamp_min(1e-12)).clamp(max=1.0))


def densest_tokens(vocabulary: torch.Tensor, keep: int, neighbours: int = 10, chunk: int = 4096) -> torch.Tensor:
    """The ids [keep] (ascending) of the `keep` token embeddings with the highest mean cosine to
    their `neighbours` nearest other tokens: where the embedding is densest, the tokens a
    mixture is most likely to read as text (the research log's mask)."""
    unit = F.normalize(vocabulary.float(), dim=-1)
    density = []
    with exact_float32():
        for start in range(0, len(unit), chunk):
            cosine = unit[start:start + chunk] @ unit.T
            cosine[torch.arange(len(cosine)), torch.arange(start, start + len(cosine))] = -2.0  # not itself
            density.append(cosine.topk(min(neighbours, len(unit) - 1), dim=-1).values.mean(dim=-1))
    return torch.cat(density).topk(keep).indices.sort().values


@method
@dataclass(frozen=True)
class Mixture(AdamPrompt):
    """A prompt of token mixtures: each position softmax(logits / `temperature`) over the
    vocabulary (or its `densest` tokens) times their embeddings; Adam on the logits [B, S, V]
    from N(0, `init_std`²), at its own `lr` (the research log's runs: τ = 0.5, lr 0.05, std 0.01).
    Its result is the mixture (a point in the tokens' convex hull); the text it reads as (each
    position's heaviest token) is measured beside it (`text_mse`). It keeps the mixture and
    those tokens, not the logits ([S, V] per run)."""

    name = "mixture"
    label = "token mixture"
    begins = "logits"
    claim = "a mixture of tokens reaches as well as a vector"
    resumes = False  # Adam's moments over the logits are not kept
    settings = {"temperature": {"type": "number", "exclusiveMinimum": 0, "default": 0.5,
                                "description": "the softmax's temperature τ"},
                "lr": {"type": "number", "exclusiveMinimum": 0, "maximum": 100, "default": 0.05,
                       "description": "Adam's learning rate on the logits (its own, not optimizer.lr)"},
                "init_std": {"type": "number", "minimum": 0, "default": 0.01,
                             "description": "the initial logits' standard deviation"},
                "densest": {"type": ["integer", "null"], "minimum": 1, "default": None,
                            "description": "mix only the this many tokens of densest embedding (mean cosine to their 10 "
                                           "nearest); null: every token"}}
    key = "logits"
    temperature: float = 0.5
    init_std: float = 0.01
    densest: int | None = None
    vocabulary: torch.Tensor | None = None
    allowed: torch.Tensor | None = None  # the ids mixed (densest_tokens), set on the device

    def start(self, runs: list[RunId], seq_len: int, d_model: int) -> dict[str, torch.Tensor]:
        width = min(self.densest or len(self.vocabulary), len(self.vocabulary))
        return {"logits": torch.stack([self.init_std * torch.randn(seq_len, width, generator=torch.Generator()
                                                                   .manual_seed(r.seed)) for r in runs])}

    def on(self, device: torch.device) -> Mixture:
        me = super().on(device)
        if me.allowed is None:
            keep = min(me.densest or len(me.vocabulary), len(me.vocabulary))
            chosen = torch.arange(len(me.vocabulary), device=device) if keep == len(me.vocabulary) else \
                densest_tokens(me.vocabulary, keep)
            me = dataclasses.replace(me, allowed=chosen)
        return me

    def shown(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits / self.temperature, dim=-1) @ self.vocabulary[self.allowed]

    def text(self, logits: torch.Tensor) -> torch.Tensor:
        return self.allowed[logits.argmax(dim=-1)]

    def kept(self, logits: torch.Tensor, adam: torch.optim.Adam) -> dict[str, np.ndarray]:
        return {"prompt": self.shown(logits.detach()).cpu().numpy()}


def gcg_candidates(ids: torch.Tensor, top: torch.Tensor, positions: torch.Tensor, choices: torch.Tensor) -> torch.Tensor:
    """GCG's candidates, nanoGCG's way with one position replaced: for runs' tokens ids [B, S],
    their top-k tokens per position top [B, S, K] and each candidate's position and top-k choice
    ([B, C] each), the candidate sequences [B, C, S]."""
    batch, count = positions.shape
    new = ids[:, None, :].repeat(1, count, 1)
    picked = top.gather(1, positions[..., None].expand(-1, -1, top.shape[-1]))  # [B, C, K]: the position's top-k
    value = picked.gather(2, choices[..., None])  # [B, C, 1]
    return new.scatter_(2, positions[..., None], value)


def gcg_positions(count: int, seq_len: int) -> list[int]:
    """The position each of `count` candidates changes: spread evenly over the prompt, in order
    (the GCG paper's code, llm-attacks' `sample_control`), so every run's candidates fall into
    the same contiguous groups by position."""
    return [c * seq_len // count for c in range(count)]


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash of non-negative int64 values below 2**32 (no product reaches 2**63)."""
    for _ in range(2):
        x = ((x >> 16) ^ x) * 0x45D9F3B & 0xFFFFFFFF
    return (x >> 16) ^ x


def gcg_choices(seeds: torch.Tensor, step: torch.Tensor, count: int, top_k: int) -> torch.Tensor:
    """Each run's top-k choice [B, count] for the candidates of step `step` (a tensor [1]): a
    counter-based generator, the hash of (the run's seed, the step, the candidate), computed on
    the device. A run's draws depend on nothing else (not its batch), and a captured step draws
    them anew at every replay."""
    state = _mix(_mix(seeds & 0xFFFFFFFF) ^ (seeds >> 32))[:, None]
    state = _mix(state ^ step)
    return _mix(state ^ torch.arange(count, device=seeds.device)) % top_k


def _in_chunks(total: int, chunk: list[int], forward: Callable[[int, int], torch.Tensor]) -> torch.Tensor:
    """forward(start, stop) over [0, total) in pieces of at most chunk[0]; on CUDA out-of-memory
    the piece halves (in place: later calls keep the size that fit)."""
    out, start = [], 0
    while start < total:
        stop = min(start + chunk[0], total)
        try:
            out.append(forward(start, stop))
        except torch.OutOfMemoryError:
            if chunk[0] == 1:
                raise
            chunk[0] = max(1, chunk[0] // 2)
            torch.cuda.empty_cache()
            continue
        start = stop
    return torch.cat(out)


def candidate_mse(loss: Loss, vocabulary: torch.Tensor, candidates: torch.Tensor, chunk: list[int],
                  prefix: Prefix | None = None, positions: list[int] | None = None) -> torch.Tensor:
    """Every candidate's MSE [B, C] from forwards of at most chunk[0] sequences (no backward).

    With the `prefix` of the runs' own tokens and `positions` (the first position candidate c
    changes, the same for every run, non-decreasing), each group of candidates that change
    position p computes only positions p.. on the run's cached keys and values: the positions
    before p are the run's own in a causal model (the same numbers, up to float rounding)."""
    batch, count, seq_len = candidates.shape
    positions = positions if prefix is not None else [0] * count
    out = []
    with torch.no_grad():
        for start, group in groupby(range(count), key=positions.__getitem__):
            group = list(group)
            flat = candidates[:, group[0]:group[-1] + 1, start:].reshape(-1, seq_len - start)
            rows = torch.arange(batch, device=candidates.device).repeat_interleave(len(group))

            def forward(a: int, b: int) -> torch.Tensor:
                return loss(vocabulary[flat[a:b]], rows[a:b], prefix.take(rows[a:b], start) if start else None)

            out.append(_in_chunks(len(flat), chunk, forward).reshape(batch, len(group)))
    return torch.cat(out, dim=1)


@method
@dataclass(frozen=True)
class Gcg:
    """A hard prompt by greedy coordinate gradient (Zou et al. 2023) toward a residual: per step,
    the gradient of the MSE with respect to the one-hot tokens [S, V] (through the embedding),
    the `top_k` tokens per position by negative gradient, `candidates` sequences that each change
    one position (spread evenly) to one of its top-k (drawn by the run's own generator, so a run
    does not depend on its batch), one forward of all candidates, the best kept; the run keeps
    the best sequence it has seen. A candidate's forward starts at the position it changes, on
    the keys and values of its run's own forward. Everything happens on the device, so a CUDA
    graph captures the step. Inputs: `tokens` [B, S] (the run's initial tokens, PEZ's), `seed`
    [B]. The loss history is the MSE of each step's tokens."""

    name = "gcg"
    claim = "text reaches as well as a vector"
    label = "GCG"
    begins = "tokens"
    resumes = False
    settings = {"top_k": {"type": "integer", "minimum": 1, "default": 256, "description": "tokens per position to swap in"},
                "candidates": {"type": "integer", "minimum": 1, "default": 512, "description": "sequences tried per step"},
                "steps": {"type": "integer", "minimum": 0, "default": 100,
                          "description": "GCG's own steps (not the step budget's): a step tries `candidates` sequences"}}
    vocabulary: torch.Tensor
    top_k: int = 256
    candidates: int = 512
    candidate_batch: int = 8192  # sequences per candidate forward (halves on out-of-memory)

    def start(self, runs: list[RunId], seq_len: int, d_model: int) -> dict[str, torch.Tensor]:
        """The run's initial tokens (the same as its PEZ run's) and the seed of its candidates."""
        return {"tokens": torch.stack([initial_tokens(r, seq_len, len(self.vocabulary)) for r in runs]),
                "seed": torch.tensor([stable_seed("gcg", r.seed) for r in runs])}

    def program(self, inputs: dict[str, torch.Tensor], loss: Loss, capturable: bool) -> Program:
        vocabulary = self.vocabulary.to(inputs["tokens"].device, torch.float32)
        start = inputs["tokens"].long()
        current, best = start.clone(), Best(start)
        seeds, count = inputs["seed"].long(), torch.zeros(1, dtype=torch.long, device=start.device)
        top_k, chunk = min(self.top_k, len(vocabulary)), [self.candidate_batch]
        positions = gcg_positions(self.candidates, start.shape[1])
        where = torch.tensor(positions, device=start.device).expand(len(start), -1)
        rows = torch.arange(len(start), device=start.device)

        def step() -> torch.Tensor:
            embeds, prefix = vocabulary[current].requires_grad_(True), Prefix()
            per_run = loss(embeds, None, prefix)  # the forward keeps every layer's keys and values
            per_run.sum().backward()
            best.update(per_run.detach(), current)
            top = (-(embeds.grad @ vocabulary.T)).topk(top_k, dim=-1).indices  # the one-hot tokens' gradient
            options = gcg_candidates(current, top, where, gcg_choices(seeds, count, self.candidates, top_k))
            found = candidate_mse(loss, vocabulary, options, chunk, prefix, positions)
            choice = found.argmin(dim=1)
            best.update(found[rows, choice], options[rows, choice])
            current.copy_(options[rows, choice])
            count.add_(1)
            return per_run.detach()

        def reset() -> None:
            current.copy_(start)
            best.reset()
            count.zero_()

        return Program(step, reset, lambda: vocabulary[best.ids], lambda: {"tokens": best.ids.cpu().numpy()})


@method
@dataclass(frozen=True)
class Inversion:
    """Sequential exact inversion (Nikolaou et al. 2025, "Language models are injective and hence
    invertible"): a causal model's residual at position i depends on the tokens 0..i only, so
    with the tokens before i fixed, the token at i is the vocabulary entry whose residual there
    best matches the target's (the objective over positions 0..i: the earlier ones are the same
    for every candidate). For a target made by text, that text (the map is injective); for any
    other, the best greedy text. One step per position (`per_position`): every candidate —
    the whole vocabulary, or the `top_k` the gradient at the vocabulary's mean embedding ranks
    first, each verified exactly — costs one position's forward on the run's cached prefix
    (`forward.Prefix`), in chunks that halve on CUDA out-of-memory; the chosen token then grows
    the prefix. Deterministic: its restarts repeat each other. Not captured (each step's shapes
    grow). The loss history is the chosen prefix's objective."""

    name = "inversion"
    claim = "text reaches as well as a vector"
    label = "exact inversion"
    begins = "tokens"
    resumes = False
    per_position = True  # its steps: one per position, whatever the step budget
    capturable = False
    settings = {"top_k": {"type": ["integer", "null"], "minimum": 1, "default": None,
                          "description": "candidates per position, ranked by the gradient (null: every token)"}}
    vocabulary: torch.Tensor
    top_k: int | None = None
    candidate_batch: int = 8192  # candidates per forward (halves on out-of-memory)

    def start(self, runs: list[RunId], seq_len: int, d_model: int) -> dict[str, torch.Tensor]:
        """The chosen tokens, filled position by position (none yet)."""
        return {"tokens": torch.zeros(len(runs), seq_len, dtype=torch.long)}

    def program(self, inputs: dict[str, torch.Tensor], loss: Loss, capturable: bool) -> Program:
        device = inputs["tokens"].device
        vocabulary = self.vocabulary.to(device, torch.float32)
        chosen = inputs["tokens"].long().clone()
        batch, seq_len = chosen.shape
        count = len(vocabulary) if self.top_k is None else min(self.top_k, len(vocabulary))
        rows, chunk = torch.arange(batch, device=device), [self.candidate_batch]
        state = {"at": 0, "prefix": Prefix(), "forwards": 0}

        def step() -> torch.Tensor:
            i, prefix = state["at"], state["prefix"]
            if i == seq_len:
                raise RuntimeError(f"the inversion takes one step per position ({seq_len}), not more")
            options = torch.arange(count, device=device).expand(batch, count) if self.top_k is None else \
                _ranked(loss, vocabulary, prefix if i else None, batch, count)
            flat, which = options.reshape(-1), rows.repeat_interleave(count)

            def forward(a: int, b: int) -> torch.Tensor:
                return loss(vocabulary[flat[a:b]][:, None], which[a:b], prefix.take(which[a:b], i) if i else None)

            with torch.no_grad():
                found = _in_chunks(len(flat), chunk, forward).reshape(batch, count)
                chosen[:, i] = options[rows, found.argmin(dim=1)]
                measured = loss(vocabulary[chosen[:, i]][:, None], None, prefix)  # the prefix grows by them
            state["at"] += 1
            state["forwards"] += count + 1 + (self.top_k is not None)
            return measured

        def reset() -> None:
            chosen.zero_()
            state.update(at=0, prefix=Prefix(), forwards=0)

        def arrays() -> dict[str, np.ndarray]:
            return {"tokens": chosen.cpu().numpy(), "forwards": np.full(batch, state["forwards"], dtype=np.int64)}

        return Program(step, reset, lambda: vocabulary[chosen], arrays)


def _ranked(loss: Loss, vocabulary: torch.Tensor, prefix: Prefix | None, batch: int, count: int) -> torch.Tensor:
    """The `count` entries [B, count] (ascending ids) whose token coordinate most lowers each
    run's objective at the next position, by the gradient at the uniform mixture of the
    vocabulary (its mean embedding: no candidate is favoured by where the linearisation is taken)."""
    rows = torch.arange(batch, device=vocabulary.device)
    mixture = torch.full((batch, 1, len(vocabulary)), 1 / len(vocabulary), device=vocabulary.device, requires_grad=True)
    here = None if prefix is None else prefix.take(rows, prefix.length)  # a copy: the run's own prefix stays
    (grad,) = torch.autograd.grad(loss(mixture @ vocabulary, rows, here).sum(), mixture)
    return (-grad[:, 0]).topk(count, dim=-1).indices.sort(dim=-1).values


def build(name: str, lr: float, settings: dict, vocabulary: Callable[[], torch.Tensor], engine: dict | None = None):
    """The method called `name` with its settings (config `methods.<name>`; `steps` is the
    engine's, not the method's); `vocabulary()` gives the token embeddings a method may use (the
    tokenizer's tokens), asked only of the methods that take them."""
    cls = METHODS[name]
    fields = {f.name for f in dataclasses.fields(cls)}
    own = {k: v for k, v in settings.items() if k in fields}
    if "lr" in fields and "lr" not in own:  # a method with its own lr setting keeps it (the mixture's)
        own["lr"] = lr
    if "vocabulary" in fields:
        own["vocabulary"] = vocabulary()
    if "candidate_batch" in fields:
        own["candidate_batch"] = (engine or {}).get("candidate_batch", 8192)
    return cls(**own)
