import subprocess
import sys

import torch

from reachability.optimize import initial_prompt
from reachability.runs import RunId, block_name, parse_block, stable_seed, target_blocks


def test_seeds_are_stable_across_processes():
    code = "from reachability.runs import stable_seed; print(stable_seed('prompt', 'experiment1', 'real', 3, 1))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == stable_seed("prompt", "experiment1", "real", 3, 1)
    assert stable_seed("a", 1) != stable_seed("a", 2) and 0 <= stable_seed("x") < 2**63


def test_initial_prompt_depends_only_on_the_run_identity():
    a = RunId("experiment3", "a0.5", 2, 1)
    assert torch.equal(initial_prompt(a, 20, 16), initial_prompt(RunId("experiment3", "a0.5", 2, 1), 20, 16))
    assert not torch.equal(initial_prompt(a, 20, 16), initial_prompt(RunId("experiment3", "a0.5", 2, 0), 20, 16))
    p = initial_prompt(a, 200, 64)
    assert abs(p.mean()) < 0.05 and abs(p.std() - 1) < 0.05


def test_blocks_are_aligned_so_growing_keeps_finished_blocks():
    assert target_blocks(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert target_blocks(16, 4)[:2] == target_blocks(10, 4)[:2]
    assert target_blocks(3, 1) == [(0, 1), (1, 2), (2, 3)]
    assert parse_block(block_name(8, 10)) == (8, 10)
