"""targets.csv: one row per (experiment, condition, target), each number the aggregation's for
that target, the distances with the registry's exclusions, and a round trip through CSV."""

import numpy as np
import pytest

from reachability import tidy

METRICS = dict(reached_threshold=0.01, plateau_tail=0.2, plateau_tolerance=0.05, plateau_fraction=0.5)


def runs_of(final: np.ndarray, scale: np.ndarray, seq_len: int, initial: float = 1.0) -> dict:
    """Run arrays [C, T, R, ...] as aggregation holds them, from every run's final MSE."""
    c, t, r = final.shape
    diverged = np.isnan(final)
    return {"final_mse": final, "initial_mse": np.full_like(final, initial), "diverged": diverged,
            "cosine": np.full((c, t, r, seq_len), 0.9), "target_mean_square": np.repeat(scale[..., None], r, -1),
            "loss": np.linspace(1, 0.5, 10)[None, None, None].repeat(c, 0).repeat(t, 1).repeat(r, 2)}


def table(site, experiment, conditions, runs, targets, pool, metrics=METRICS) -> list[dict]:
    rows, points = tidy.rows_of(site, experiment, conditions, runs, targets, metrics)
    return tidy.measure(rows, points, pool)


def test_rows_carry_each_targets_best_run_and_its_distances_with_pool_sequences_left_out():
    rng = np.random.default_rng(0)
    pool = rng.normal(size=(50, 4, 3)).astype(np.float32)
    final = np.array([[[0.5, 0.001], [np.nan, np.nan], [0.2, 0.3]]])  # target 1: every run diverged
    scale = np.array([[2.0, 1.0, 4.0]])
    targets = {("real", t): pool[t] for t in range(3)}
    rows = table("hs4", "experiment1", ["real"], runs_of(final, scale, 4), targets, pool)
    assert [r["target_id"] for r in rows] == [0, 1, 2] and rows[0]["label"] == "Exp 1 real"
    assert [r["sources"] for r in rows] == [[0], [1], [2]] and rows[2]["target_mean_square"] == 4.0
    assert rows[0]["best_mse"] == pytest.approx(0.001) and rows[0]["best_restart"] == 1
    assert rows[0]["relative_mse"] == pytest.approx(0.0005) and rows[0]["reached"]
    assert rows[1]["best_mse"] is None and rows[1]["diverged_runs"] == 2 and not rows[1]["reached"]
    assert rows[2]["relative_mse"] == pytest.approx(0.05) and not rows[2]["reached"]
    assert all(r["nearest"] > 0 for r in rows)  # Exp 1's target t is pool sequence t, left out


def test_reached_is_the_targets_relative_mse_and_the_old_ratio_is_a_column():
    """Best 0.5 from an initial MSE of 10 (5 % of its start: 'not reached' on the run), on a target
    of mean square 1000 (0.05 % of its power): reached, with the ratio kept beside."""
    pool = np.random.default_rng(3).normal(size=(30, 2, 3))
    runs = runs_of(np.array([[[0.5]]]), np.array([[1000.0]]), 2, initial=10.0)
    (row,) = table("hs4", "experiment1", ["real"], runs, {("real", 0): pool[0]}, pool, {**METRICS, "reached_threshold": 1e-3})
    assert row["reached"] and row["relative_mse"] == pytest.approx(5e-4)
    assert row["final_over_initial"] == pytest.approx(0.05)


def test_an_interpolated_target_leaves_out_both_of_its_sequences():
    """Exp 3's pair p is made of pool sequences 2p and 2p + 1; at α = 1 it is sequence 2p, so
    only leaving both out keeps it off distance 0."""
    rng = np.random.default_rng(1)
    pool = rng.normal(size=(40, 4, 3))
    targets = {("a1", p): pool[2 * p] for p in range(2)}
    runs = runs_of(np.full((1, 2, 1), 0.1), np.ones((1, 2)), 4)
    rows = table("hs4", "experiment3", ["a1"], runs, targets, pool)
    assert rows[0]["label"] == "Exp 3 α=1" and all(r["nearest"] > 0.1 for r in rows)
    assert [r["sources"] for r in rows] == [[0, 1], [2, 3]]


def test_the_table_reads_back_as_it_was_written():
    rows = [{k: None for k in tidy.COLUMNS} | {"site": "hs4", "experiment": "experiment3", "condition": "a0.5",
                                               "label": "Exp 3 α=0.5", "target_id": 3, "sources": [6, 7],
                                               "reached": False, "diverged_runs": 2, "best_restart": 0,
                                               "target_mean_square": 2.5, "whitened": 1.5, "outside": 0.0,
                                               "nearest": 1.1},
            {k: None for k in tidy.COLUMNS} | {"site": "hs4", "experiment": "experiment2b", "condition": "isotropic",
                                               "label": "Exp 2b isotropic", "target_id": 0, "sources": [],
                                               "best_mse": 0.1, "final_over_initial": 0.05, "reached": False,
                                               "diverged_runs": 0, "best_restart": 1, "target_mean_square": 1.0,
                                               "whitened": 3.0, "outside": 0.2, "nearest": 4.0}]
    text = tidy.to_csv(rows)
    assert text.splitlines()[0] == ",".join(tidy.COLUMNS)
    assert tidy.from_csv(text) == rows
