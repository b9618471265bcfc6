import subprocess
import sys

import torch

from reachability.methods import initial_prompt
from reachability.runs import Layout, RunId, batch_sizes, pack_bounds, pack_name, parse_pack
from reachability.seeds import stable_seed


def test_seeds_are_stable_across_processes():
    code = "from reachability.seeds import stable_seed; print(stable_seed('prompt', 'experiment1', 'real', 3, 1))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout) == stable_seed("prompt", "experiment1", "real", 3, 1)
    assert stable_seed("a", 1) != stable_seed("a", 2) and 0 <= stable_seed("x") < 2**63


def test_paired_runs_share_their_initial_prompt():
    """Ablation run (t, r) starts where Exp 1's (t, r) does; Exp 3's α and Exp 4's f of one
    (target, restart) start alike; different targets or restarts never do."""
    def same(a, b):
        return torch.equal(initial_prompt(a, 20, 16), initial_prompt(b, 20, 16))

    assert same(RunId("ablation", "no_ffn", 3, 1), RunId("experiment1", "real", 3, 1))
    assert same(RunId("ablation", "no_attention", 3, 1), RunId("ablation", "no_ffn", 3, 1))
    assert same(RunId("experiment4", "f0.3", 2, 0), RunId("experiment4", "f0.9", 2, 0))
    assert same(RunId("experiment3", "a-0.5", 1, 2), RunId("experiment3", "a2", 1, 2))
    assert not same(RunId("experiment4", "f0.3", 2, 0), RunId("experiment4", "f0.3", 2, 1))
    assert not same(RunId("experiment2a", "matched", 3, 1), RunId("experiment1", "real", 3, 1))


def test_initial_prompt_depends_only_on_the_run_identity():
    a = RunId("experiment3", "a0.5", 2, 1)
    assert torch.equal(initial_prompt(a, 20, 16), initial_prompt(RunId("experiment3", "a0.5", 2, 1), 20, 16))
    assert not torch.equal(initial_prompt(a, 20, 16), initial_prompt(RunId("experiment3", "a0.5", 2, 0), 20, 16))
    p = initial_prompt(a, 200, 64)
    assert abs(p.mean()) < 0.05 and abs(p.std() - 1) < 0.05


def test_packs_are_aligned_and_the_remainder_joins_the_last():
    assert pack_bounds(1650, 1024) == [(0, 1650)]
    assert pack_bounds(2048, 1024) == [(0, 1024), (1024, 2048)]
    assert pack_bounds(2900, 1024) == [(0, 1024), (1024, 2900)]
    assert pack_bounds(3, 1) == [(0, 1), (1, 2), (2, 3)] and pack_bounds(0, 5) == []
    assert parse_pack(pack_name(16, 44)) == (16, 44)
    for n in range(1, 60):
        for size in (1, 3, 16):
            bounds = pack_bounds(n, size)
            assert bounds[0][0] == 0 and bounds[-1][1] == n and all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            assert all(stop - start >= size for start, stop in bounds) or bounds == [(0, n)]
            grown = pack_bounds(n + 7, size)  # growing keeps every pack but the last
            assert set(bounds[:-1]) <= set(grown)


def test_runs_are_numbered_target_major_so_more_targets_only_append():
    layout = Layout(("a0", "a1"), restarts=3)
    runs = layout.runs("experiment3", 0, 12)
    assert [(r.target_id, r.condition, r.restart) for r in runs[:7]] == [
        (0, "a0", 0), (0, "a0", 1), (0, "a0", 2), (0, "a1", 0), (0, "a1", 1), (0, "a1", 2), (1, "a0", 0)]
    assert len(set(runs)) == 12 and layout.run("experiment3", 11) == RunId("experiment3", "a1", 1, 2)


def test_batches_are_equal_sized():
    assert batch_sizes(1650, 1024) == [825, 825]
    assert batch_sizes(500, 2048) == [500] and batch_sizes(7, 2) == [2, 2, 2, 1]
    assert batch_sizes(0, 8) == []
