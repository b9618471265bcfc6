"""Run identities, the seeds derived from them, and how runs are packed into jobs.

A run is one (experiment, condition, target_id, restart). Everything random about it is
drawn from a seed hashed from that identity (blake2b, not Python's salted `hash`), so a run's
result does not depend on its pack, its batch or the job that ran it (docs/design.md).

An experiment's runs at one site are numbered target-major: run i is target i // (C R),
condition (i // R) % C, restart i % R, for C conditions and R restarts. A *pack* (one GPU
job) is a range of these numbers: ranges are aligned to multiples of `runs_per_job`, and the
remainder joins the last range, so every pack holds at least `runs_per_job` runs or all of
the experiment's runs. Adding targets appends numbers: finished packs keep their runs, only
the last pack (which absorbs the remainder) and new ones are computed. Changing the conditions
or the restarts renumbers every run of the experiment, so all its packs are recomputed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .seeds import stable_seed


@dataclass(frozen=True)
class RunId:
    experiment: str
    condition: str
    target_id: int
    restart: int

    @property
    def seed(self) -> int:
        """The seed of the run's initial prompt: from its own identity, unless its experiment's
        record shares it with the runs it is compared with pairwise (every α of an Exp 3 pair,
        every f of an Exp 4 target; an ablation run and Exp 1's run of the same target and
        restart)."""
        from .experiments import REGISTRY

        record = REGISTRY.get(self.experiment)
        parts = record.prompt_seed(self.condition, self.target_id, self.restart) if record else (
            "prompt", self.experiment, self.condition, self.target_id, self.restart)
        return stable_seed(*parts)


@dataclass(frozen=True)
class Layout:
    """How an experiment's runs at one site are numbered: its conditions and restarts.
    (The number of targets is left out on purpose: growing it must not renumber runs.)"""

    conditions: tuple[str, ...]
    restarts: int

    @property
    def runs_per_target(self) -> int:
        return len(self.conditions) * self.restarts

    def run(self, experiment: str, index: int) -> RunId:
        target, rest = divmod(index, self.runs_per_target)
        condition, restart = divmod(rest, self.restarts)
        return RunId(experiment, self.conditions[condition], target, restart)

    def runs(self, experiment: str, start: int, stop: int) -> list[RunId]:
        return [self.run(experiment, i) for i in range(start, stop)]


def pack_bounds(n_runs: int, runs_per_job: int) -> list[tuple[int, int]]:
    """[start, stop) run ranges aligned to runs_per_job; the remainder joins the last range."""
    if n_runs <= 0:
        return []
    starts = list(range(0, max(n_runs - runs_per_job + 1, 1), runs_per_job))
    return [(s, e) for s, e in zip(starts, starts[1:] + [n_runs])]


def pack_name(start: int, stop: int) -> str:
    return f"{start}-{stop}"


def parse_pack(name: str) -> tuple[int, int]:
    start, stop = name.split("-")
    return int(start), int(stop)


def batch_sizes(total: int, batch_size: int) -> list[int]:
    """`total` runs in the fewest batches of at most `batch_size`, as equal as possible
    (1650 runs at 1024 -> 825 + 825, not 1024 + 626: the smaller batch would waste a step)."""
    if total <= 0:
        return []
    n = math.ceil(total / batch_size)
    return [total // n + (i < total % n) for i in range(n)]
