"""Run identities, the seeds derived from them, and how runs are cut into shards.

A run is one (experiment, condition, target_id, restart). Everything random about it is
drawn from a seed hashed from that identity (blake2b, not Python's salted `hash`), so a run's
result does not depend on its batch, its batch size or the job that ran it (design notes §1).
Shards are keyed by (experiment, condition, restart, block of target ids); blocks are aligned
to multiples of `runs_per_job`, so growing the study adds shards and leaves finished ones alone
(design notes §3).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text, equal on every machine and Python process."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def numpy_rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*parts))


@dataclass(frozen=True)
class RunId:
    experiment: str
    condition: str
    target_id: int
    restart: int

    @property
    def seed(self) -> int:
        return stable_seed("prompt", self.experiment, self.condition, self.target_id, self.restart)


def target_blocks(n_targets: int, runs_per_job: int) -> list[tuple[int, int]]:
    """[start, stop) ranges of target ids, aligned to multiples of runs_per_job."""
    return [(s, min(s + runs_per_job, n_targets)) for s in range(0, n_targets, runs_per_job)]


def block_name(start: int, stop: int) -> str:
    return f"t{start}-{stop}"


def parse_block(name: str) -> tuple[int, int]:
    start, stop = name.removeprefix("t").split("-")
    return int(start), int(stop)
