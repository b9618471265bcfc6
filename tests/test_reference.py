"""The research log's table beside ours: only in its own setting, its numbers as quoted."""

from pathlib import Path

import yaml

from reachability import reference
from workflow_helpers import validated

ROOT = Path(__file__).resolve().parents[1]


def summary(cosine: float) -> dict:
    return {"median_cosine": cosine, "median_best_final_mse": 0.02, "reached_fraction": 0.5, "n_diverged": 0,
            "plateau": {"needs_more_steps": False}}


def test_the_logs_table_is_beside_ours_in_its_own_setting_and_named_elsewhere():
    log = validated(yaml.safe_load((ROOT / "configs" / "research_log.yaml").read_text()))
    agenda = validated(yaml.safe_load((ROOT / "config.yaml").read_text()))
    assert reference.differences(log) == [] and reference.differences(agenda) == ["site", "optimizer.loss"]
    rows = {"Exp 1 real": summary(0.99), "Exp 3 α=-0.5": summary(0.98), "Exp 4 f=0.1": summary(0.9)}
    budget = [{"steps": 1000, "reason": "its own counts"}]
    beside = reference.conditions_markdown(rows, budget, log).splitlines()
    assert beside[0] == "Step budget: 1000 steps. its own counts." and beside[2].endswith(
        "| research log: median cosine | research log: median MSE |")
    assert beside[4] == "| Exp 1 real | 0.9900 | 0.02 | 50% | 0 | no | 0.9960 | 0.021 |"
    assert beside[5].endswith("| 0.9854 | n/a |") and beside[6].endswith("| n/a | n/a |")  # the agenda's Exp 4: not the log's
    apart = reference.conditions_markdown(rows, budget, agenda)
    assert "research log: median" not in apart and "differs in site, optimizer.loss" in apart
    labels = {"Exp 1 real", "Exp 2a matched", "Exp 2b isotropic", "Ablation no ffn", "Ablation no attention", "Exp 4p f=0.1"}
    assert labels | {f"Exp 3 α={a}" for a in ("-0.5", "0", "0.25", "0.5", "0.75", "1", "1.5", "2")} == set(
        reference.MEDIAN_COSINE)
