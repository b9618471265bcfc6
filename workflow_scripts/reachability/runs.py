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

import ast
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .seeds import stable_seed

SOFT = "soft"  # the agenda's method: a condition it runs keeps its bare name


DECLARED = ("name", "label", "begins", "resumes", "settings", "per_position", "claim")  # what a method class says as literals


@cache
def method_records() -> dict[str, dict]:
    """Each method of methods.py by its name: its label, how its runs start ('normal': N(0, 1)
    like the soft prompt; 'tokens': random tokens), whether a run resumes from its saved state,
    its own settings (JSON schema), whether it takes one step per position (the inversion) and
    what its findings row claims when it reaches as well as the soft prompt ('the norm bound
    costs little').
    Read from the classes' own declarations without importing torch (methods.py is the engine's)."""
    tree = ast.parse(Path(__file__).with_name("methods.py").read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            own = {t.id: ast.literal_eval(s.value) for s in node.body if isinstance(s, ast.Assign)
                   for t in s.targets if isinstance(t, ast.Name) and t.id in DECLARED}
            if "name" in own:
                out[own["name"]] = {"label": own.get("label", own["name"]), "begins": own.get("begins", "normal"),
                                    "resumes": own.get("resumes", True), "settings": own.get("settings", {}),
                                    "per_position": own.get("per_position", False), "claim": own.get("claim", "")}
    return out


def split(condition: str) -> tuple[str, str]:
    """A condition's base and its method: 'real' -> ('real', 'soft'); 'a0.5/pez' -> ('a0.5', 'pez')."""
    base, _, method = condition.partition("/")
    return base, method or SOFT


def joined(base: str, method: str) -> str:
    return base if method == SOFT else f"{base}/{method}"


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
