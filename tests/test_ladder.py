"""The constraint ladder on synthetic runs with known bests: like for like, text rungs, recovery."""

import numpy as np

from reachability import ladder

S = 3


def runs(final: list[list[float]], tokens: list | None = None, text_mse: list | None = None) -> dict:
    """One condition's runs.h5 arrays [1, T, R, ...] from its final MSEs [T][R]; targets of mean square 2."""
    final = np.array(final, dtype=float)[None]
    out = {"final_mse": final, "cosine": np.ones((*final.shape, S)) * 0.5,
           "target_mean_square": np.full(final.shape, 2.0)}
    if tokens is not None:
        out["tokens"] = np.array(tokens)[None]
    if text_mse is not None:
        out["text_mse"], out["text_cosine"] = np.array(text_mse, dtype=float)[None], np.ones((*final.shape, S))
    return out


def test_sections_join_experiments_on_the_same_targets_and_keep_only_ladders():
    conditions = {"experiment1": ["real", "real/norm_ball"], "hard_prompt": ["text/gcg", "text/pez"],
                  "experiment2b": ["isotropic"], "experiment3": ["a0", "a1", "a0/inversion"]}
    found = ladder.sections(conditions, {"hard_prompt": ("experiment1", "real")})
    assert found == {("experiment1", "real"): {"soft": ("experiment1", 0), "norm_ball": ("experiment1", 1),
                                               "pez": ("hard_prompt", 1), "gcg": ("hard_prompt", 0)},
                     ("experiment3", "a0"): {"soft": ("experiment3", 0), "inversion": ("experiment3", 2)}}
    assert ladder.order(["inversion", "gcg", "mixture", "pez", "soft", "norm_ball"]) == [
        "soft", "norm_ball", "mixture", "pez", "gcg", "inversion"]


def test_every_rung_takes_its_best_over_the_same_restarts_and_targets():
    """Exp 1 has 3 targets x 2 restarts, the text experiment 2 x 1: both sides count 2 targets
    and restart 0 only (restart 1's better soft MSE is not seen); PEZ recovers target 0's text."""
    original = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    soft = runs([[0.4, 0.001], [0.2, 0.1], [0.1, 0.1]])
    text = runs([[0.0], [0.8]], tokens=[[[1, 2, 3]], [[4, 5, 0]]])
    found = ladder.ladder({"experiment1": soft, "hard_prompt": text}, {"experiment1": ["real"], "hard_prompt": ["text/pez"]},
                          {"hard_prompt": ("experiment1", "real")}, {("experiment1", "real"): "Exp 1 real"},
                          {("experiment1", "real")}, original, threshold=1e-3)
    (section,) = found
    assert (section["n_targets"], section["restarts"]) == (2, 1)
    first, pez = section["rungs"]
    np.testing.assert_array_equal(first["per_target"]["best_mse"], [0.4, 0.2])
    np.testing.assert_array_equal(pez["per_target"]["exact"], [True, False])
    assert pez["text"] and not first["text"] and "exact" not in first["per_target"]
    assert pez["summary"]["exact_share"] == 0.5 and pez["summary"]["reached_share"] == 0.5  # 0 < 1e-3 x 2; 0.8 not
    assert pez["summary"]["median_ratio_to_soft"] == np.median([0.0 / 0.4, 0.8 / 0.2])
    assert first["summary"]["median_relative_best_mse"] == np.median([0.2, 0.1])


def test_a_mixture_is_two_rungs_and_only_its_text_is_checked_for_recovery():
    original = np.array([[1, 2, 3]])
    soft = runs([[0.5]])
    mixture = runs([[0.1]], tokens=[[[1, 2, 3]]], text_mse=[[0.9]])
    both = {"experiment1": {k: np.concatenate([soft.get(k, np.full_like(mixture[k][:1], -1 if k == "tokens" else np.nan)),
                                               mixture[k]]) for k in mixture}}
    (section,) = ladder.ladder(both, {"experiment1": ["real", "real/mixture"]}, {}, {("experiment1", "real"): "Exp 1"},
                               {("experiment1", "real")}, original, threshold=1e-3)
    labels = [(r["label"], r["text"]) for r in section["rungs"]]
    assert labels == [("soft", False), ("token mixture", False), ("token mixture → text", True)]
    _, continuous, text = section["rungs"]
    assert continuous["summary"]["median_best_mse"] == 0.1 and "exact_share" not in continuous["summary"]
    assert text["summary"]["median_best_mse"] == 0.9 and text["summary"]["exact_share"] == 1.0
    assert "| token mixture → text | yes | 0.9 |" in ladder.markdown([section], 1e-3)
