"""The guide's rows on synthetic studies whose answer is known: like-for-like sides, relative
MSE where the targets' scale moves, Holm over every tested row."""

import numpy as np
import pytest

from reachability import experiments, guide
from reachability import findings as F

SETTINGS = dict(confidence=0.95, alpha=0.05, much_ratio=10.0, similar_ratio=2.0, sharp_width=0.05,
                bootstrap_resamples=400, seed=0, min_rise_decades=0.5)


def summary(final, scale=None) -> dict:
    """A condition's metrics.json entry from every restart's final MSE [T, R]."""
    final = np.asarray(final, dtype=float)
    scale = np.ones(len(final)) if scale is None else np.asarray(scale, dtype=float)
    best = np.nanmin(final, axis=1)
    return {"per_target": {"final_mse": final.tolist(), "target_mean_square": scale.tolist(),
                           "best_final_mse": best.tolist(), "reached": (best < 0.01).tolist(),
                           "cosine_by_position": np.full((len(final), 20), 0.99).tolist()}}


def context(m: dict, settings: dict = SETTINGS) -> guide.Context:
    return guide.Context(m, settings, experiments.REGISTRY)


def lines_of(*names: str) -> list:
    """The registered lines of the guide of these experiments (each record's own)."""
    return [(n, line) for n in names for line in experiments.get(n).findings]


def restarts(true: np.ndarray, r: int, seed: int) -> np.ndarray:
    """r restarts per target: the target's own MSE times 5 % restart noise."""
    return true[:, None] * (1 + 0.05 * np.random.default_rng(seed).standard_normal((len(true), r)))


def test_identical_models_with_5_against_3_restarts_show_no_difference():
    """Exp 1 with 5 restarts against an ablated model that is in truth the same, with 3: the best
    of 5 would beat the best of 3 for most targets. Over the same 3 restarts there is no gap."""
    true = 10 ** np.random.default_rng(0).normal(-3, 0.5, 200)
    full, same = summary(restarts(true, 5, seed=1)), summary(restarts(true, 3, seed=2))
    m = {"experiment1": {"conditions": {"real": full}}, "ablation": {"conditions": {"no_ffn": same}}}
    (row,), _ = guide.rows(context(m), lines_of("ablation"))
    assert row.restarts == [3, 3] and row.low <= 1 <= row.high
    runs = {k: np.array(v["per_target"]["final_mse"])[None] for k, v in (("full", full), ("same", same))}
    cos = {k: np.full(runs[k].shape + (20,), 0.99) for k in runs}
    (table,) = guide.paired_table({"final_mse": runs["full"], "cosine": cos["full"]},
                                  {"final_mse": runs["same"], "cosine": cos["same"]}, ["no_ffn"])
    assert 0.4 <= table["better_share"] <= 0.6 and table["restarts"] == 3


def test_exp_3_on_relative_mse_sees_no_degradation_where_only_the_targets_power_grows():
    """best = r · mean(t²) with a constant r: every α is equally reachable relative to its target,
    though a mixture at α = 2 has three times the endpoints' power (raw MSE 3x worse)."""
    alphas, pairs = [-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0], 30
    rng = np.random.default_rng(3)
    conditions = {}
    for a in alphas:
        power = a * a + (1 - a) ** 2 + a * (1 - a)  # unit A, B at cosine 0.5
        scale = power * np.exp(rng.normal(0, 0.05, pairs))
        conditions[f"a{a:g}"] = summary((1e-3 * scale * np.exp(rng.normal(0, 0.1, pairs)))[:, None], scale)
    rows, _ = guide.interpolation(context({"experiment3": {"conditions": conditions}}, {**SETTINGS, "much_ratio": 2.0}),
                                  "experiment3")
    smooth, sharp = rows
    assert sharp.observation == "Exp 3 sharp degradation at α > 1" and sharp.verdict == F.FAILS
    assert sharp.estimate == pytest.approx(1.0, rel=0.15) and smooth.verdict == F.HOLDS


def test_every_tested_row_is_holm_adjusted_and_the_findings_say_so():
    rng = np.random.default_rng(4)
    real = summary(10 ** rng.normal(-3, 0.2, (40, 2)))
    matched = summary(10 ** rng.normal(-3, 0.2, (40, 2)))
    iso = summary(10 ** rng.normal(-1, 0.2, (40, 2)))
    m = {"experiment1": {"conditions": {"real": real}}, "experiment2a": {"conditions": {"matched": matched}},
         "experiment2b": {"conditions": {"isotropic": iso}, "warnings": ["a warning a reader must see"]}}
    rows, _ = guide.rows(context(m), lines_of(*m))
    tested = [r for r in rows if r.p is not None]
    assert len(tested) == 3 and all(r.p_adjusted >= r.p for r in tested)
    assert sorted(r.p_adjusted for r in tested) == pytest.approx(sorted(F.holm([r.p for r in tested])))
    table = guide.markdown(rows, SETTINGS, guide.warnings(m))
    assert "Holm" in table and "2 vs 2" in table and "a warning a reader must see" in table


def test_the_findings_say_which_verdicts_use_a_p_and_which_their_interval_alone():
    """'Much worse' needs its interval and its Holm p; '≈' is decided by its interval (its p is
    descriptive); 'all converge' by the count, with no p at all."""
    rng = np.random.default_rng(5)
    x, y = 10 ** rng.normal(-3, 0.2, 30), 10 ** rng.normal(-1, 0.2, 30)
    rows = F.adjust([F.much_worse("B much worse than A", x, y, ("A", "B"), False, SETTINGS),
                     F.similar("B ≈ A", x, y, ("A", "B"), False, SETTINGS),
                     F.all_reached("A all converge", [True] * 30, True)])
    assert [r.row()["uses_p"] for r in rows] == [True, False, False]
    table = guide.markdown(rows, SETTINGS, [])
    cells = {line.split(" | ")[0][2:]: line.split(" | ")[6] for line in table.splitlines() if line.startswith("| ")}
    assert cells["observation"] == "verdict uses p"
    assert [cells[r.observation] for r in rows] == ["yes", "no (descriptive)", "no"]
    assert "interval (or, for 'all converge', the count) alone" in table


def test_difficulty_correlations_pair_every_side_on_log_best_mse():
    """A variant that finds targets exactly as hard as the full model correlates +1 with it, one
    that finds them in reverse −1, and the two variants −1 with each other; a target reached
    exactly (MSE 0, log −∞) is left out and counted; three targets are too few to say."""
    x = np.linspace(-3, 0, 10)
    full = {"final_mse": (10.0 ** x)[None, :, None], "cosine": np.ones((1, 10, 1, 20))}
    same, reverse = 10.0 ** x, 10.0 ** (-x)
    same[0] = 0.0
    variants = {"final_mse": np.stack([same, reverse])[:, :, None], "cosine": np.ones((2, 10, 1, 20))}
    rows = guide.paired_table(full, variants, ["no_ffn", "no_attention"])
    found = {tuple(c["sides"]): c for c in guide.difficulty_correlations(rows, SETTINGS)}
    assert list(found) == [("full model", "no ffn"), ("full model", "no attention"), ("no ffn", "no attention")]
    assert found["full model", "no ffn"]["pearson"]["r"] == pytest.approx(1.0)
    assert found["full model", "no ffn"]["left_out"] == 1 and found["full model", "no ffn"]["targets"] == 9
    assert found["full model", "no attention"]["spearman"]["r"] == pytest.approx(-1.0)
    assert found["no ffn", "no attention"]["pearson"]["r"] == pytest.approx(-1.0)
    few = guide.paired_table({k: v[:, :3] for k, v in full.items()}, {k: v[:, :3] for k, v in variants.items()},
                             ["no_ffn", "no_attention"])
    assert all("at least 4 targets" in c["unmeasured"] for c in guide.difficulty_correlations(few, SETTINGS))


def test_steering_is_realised_up_to_the_largest_epsilon_most_targets_reach():
    """40 targets: every one reached at ε = 0 and 1, 30 at ε = 2, 10 at ε = 4 (soft); PEZ reaches
    none anywhere. The soft prompt: the largest ε is not realised for most (interval below ½), and
    the note names ε = 2 (30 of 40: interval above ½); PEZ: never."""
    def reached(k):
        return summary(np.where(np.arange(40) < k, 1e-3, 1.0)[:, None])

    m = {"steering": {"conditions": {"e0": reached(40), "e1": reached(40), "e2": reached(30), "e4": reached(10),
                                     **{f"e{e}/pez": reached(0) for e in (0, 1, 2, 4)}}}}
    found, _ = guide.steering_realised(context(m), "steering")
    soft, pez = found
    assert soft.observation == "Steering ε=4: a prompt realises the largest ε for most targets"
    assert soft.verdict == F.FAILS and soft.estimate == 0.25 and "up to ε = 2" in soft.note
    assert pez.observation.startswith("Steering ε=4 (PEZ)") and pez.verdict == F.FAILS and "at no ε" in pez.note
    m["steering"]["conditions"]["e4"] = reached(38)
    assert guide.steering_realised(context(m), "steering")[0][0].verdict == F.HOLDS
    m["steering"]["conditions"]["e4"] = reached(20)  # a half: the interval straddles ½
    assert guide.steering_realised(context(m), "steering")[0][0].verdict == F.OPEN


def test_every_method_is_judged_against_the_soft_prompt_by_its_claim_and_the_inversion_not_as_a_search():
    """Exp 2a with the soft prompt, a mixture that is in truth the same and one 100x worse-scaled
    PEZ/GCG/inversion: the mixture (its start: logits) holds "as well as a soft prompt" under its
    own claim; text is 100x worse and does not; GCG is judged against PEZ, the inversion is not."""
    true = 10 ** np.random.default_rng(3).normal(-3, 0.5, 200)
    same, worse = summary(restarts(true, 3, seed=4)), summary(restarts(100 * true, 3, seed=5))
    m = {"experiment2a": {"conditions": {"matched": summary(restarts(true, 3, seed=6)), "matched/mixture": same,
                                         "matched/pez": worse, "matched/gcg": worse, "matched/inversion": worse}}}
    found, _ = guide.methods_against_soft(context(m), "experiment2a")
    rows = {r.observation: r for r in found}
    mixture = rows["a mixture of tokens reaches as well as a vector: Exp 2a matched (token mixture) reaches as well as "
                   "a soft prompt"]
    assert mixture.verdict == F.HOLDS and "token mixture's logits" in mixture.note
    for label in ("PEZ", "GCG", "exact inversion"):
        row = rows[f"text reaches as well as a vector: Exp 2a matched ({label}) reaches as well as a soft prompt"]
        assert row.verdict == F.FAILS
    assert any(o.startswith("GCG reaches better than PEZ") for o in rows)
    assert not any("exact inversion reaches better" in o for o in rows)
