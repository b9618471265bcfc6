"""The study across models: each compared model's config, the models' list, the table."""

import copy

import pytest

from reachability.comparison import compared_models, markdown_table, model_rows, model_study, module_name
from workflow_helpers import demo_config, validated



def study(**changes) -> dict:
    config = demo_config(**changes)
    validated(config)
    return config


def test_a_compared_model_runs_the_chosen_experiments_of_its_own_model_and_site():
    config = study(**{"compare.experiments": ["experiment1", "hard_prompt"]})
    before = copy.deepcopy(config)
    entry = {"label": "wide", "name": "resources/wide", "build": {"hidden_size": 96}, "site": {"kind": "block_output", "layer": "last"}}
    theirs = model_study(config, entry)
    assert config == before  # the study's own config is untouched
    assert theirs["model"]["name"] == "resources/wide" and theirs["model"]["build"]["hidden_size"] == 96
    assert theirs["model"]["build"]["num_layers"] == config["model"]["build"]["num_layers"]  # the rest as the study's
    assert theirs["site"] == {"kind": "block_output", "layer": "last"}  # resolved by its own model, in its module
    assert [e for e, s in theirs["experiments"].items() if s["enabled"]] == ["experiment1", "hard_prompt"]
    assert not any(theirs[s]["enabled"] for s in ("layer_sweep", "analysis", "perturbation"))
    assert theirs["compare"]["models"] == []  # no comparison inside a comparison
    validated(theirs)
    # a hub checkpoint: the study's model at another revision, the study's site
    hub = model_study(config, {"label": "step1000", "revision": "step1000"})
    assert (hub["model"]["name"], hub["model"]["revision"], hub["site"]) == (config["model"]["name"], "step1000", config["site"])
    # a model of its own name is loaded as it is, even beside a built (demo) model
    assert model_study(config, {"label": "p70m", "name": "EleutherAI/pythia-70m"})["model"]["build"] is None


def test_models_are_listed_own_first_with_steps_from_revisions():
    config = study(**{"model.revision": "step143000", "compare.models": [
        {"label": "step1000", "revision": "step1000"}, {"label": "early", "revision": "main", "step": 512}]})
    models = compared_models(config)
    assert [(m["label"], m["folder"], m["step"]) for m in models] == [
        ("step143000", "results/", 143000), ("step1000", "results/models/step1000/", 1000),
        ("early", "results/models/early/", 512)]
    assert module_name("pythia-160m.step1000") == "model_pythia_160m_step1000_"


def metrics(best, reached, n_parameters, steps=300, scale=None):
    scale = [1.0] * len(best) if scale is None else scale
    per_target = {"best_final_mse": best, "reached": reached, "target_mean_square": scale,
                  "relative_best_final_mse": [b / s for b, s in zip(best, scale)]}
    return {"experiment": "experiment1", "conditions": {"real": {"n_targets": len(best), "per_target": per_target}},
            "provenance": {"n_parameters": n_parameters, "site": "hs4", "step_budget": {"steps": steps}}}


def test_the_table_has_a_row_per_model_and_condition_with_intervals():
    settings = {"confidence": 0.95, "bootstrap_resamples": 200, "seed": 0}
    models = [{"label": "small", "revision": None, "step": None}, {"label": "big", "revision": None, "step": None}]
    rows = model_rows(models, [[metrics([1e-4, 2e-4, 3e-4, 4e-4], [True] * 4, 1000)],
                               [metrics([1e-2, 2e-2, 3e-2, 5e-2], [False, True, False, False], 5000)]], settings)
    assert [(r["model"], r["condition"], r["n_parameters"]) for r in rows] == [("small", "Exp 1 real", 1000), ("big", "Exp 1 real", 5000)]
    small, big = rows
    assert small["median_best_final_mse"] == pytest.approx(2.5e-4) and small["median_low"] <= 2.5e-4 <= small["median_high"]
    assert big["reached_fraction"] == 0.25 and 0 < big["reached_low"] < 0.25 < big["reached_high"] < 1
    assert small["reached_fraction"] == 1 and small["reached_high"] == 1
    table = markdown_table(rows, "parameters")
    assert table.index("| small |") < table.index("| big |") and "1,000" in table and "0.25 [" in table


def test_targets_twice_as_large_at_equal_relative_error_give_equal_relative_rows():
    """A later checkpoint whose final norm doubles every residual: raw MSE reads 4x worse, the
    relative rows are equal; and the models' differing step counts are said."""
    from reachability.comparison import steps_note

    settings = {"confidence": 0.95, "bootstrap_resamples": 200, "seed": 0}
    models = [{"label": "early", "revision": "step1000", "step": 1000}, {"label": "late", "revision": "step143000", "step": 143000}]
    scale = [1.0, 2.0, 1.5, 0.5, 1.2]
    relative = [1e-4, 3e-4, 2e-4, 5e-4, 1e-4]
    early = metrics([r * s for r, s in zip(relative, scale)], [True] * 5, 1000, steps=2000, scale=scale)
    doubled = [4 * s for s in scale]  # the residuals x 2: mean squares x 4
    late = metrics([r * s for r, s in zip(relative, doubled)], [True] * 5, 1000, steps=5000, scale=doubled)
    a, b = model_rows(models, [[early], [late]], settings)
    assert b["median_best_final_mse"] == pytest.approx(4 * a["median_best_final_mse"])
    assert a["median_relative_mse"] == pytest.approx(b["median_relative_mse"])
    assert (a["relative_low"], a["relative_high"]) == pytest.approx((b["relative_low"], b["relative_high"]))
    assert steps_note([a, b]) == ("the models ran different step counts (each one's own Exp 1 decided its budget): "
                                  "early 2000, late 5000")
    assert "median relative MSE" in markdown_table([a, b], "step")
