"""Seeds from identities: the same number for the same parts on every machine and in every
Python process (blake2b of their text, not Python's salted `hash`). A run's initial prompt and
every random target are drawn from one (runs.py, targets.py)."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(*parts: object) -> int:
    """A 63-bit seed from the parts' text."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def numpy_rng(*parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_seed(*parts))
