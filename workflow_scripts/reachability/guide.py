"""The agenda's interpretation guide, line by line, from the experiments' metrics.json files.

Each function is one kind of line (all converge; B ≈ A; B much worse than A; smooth and sharp
in α; sharp or gradual in f; a variant against the full model), answered with the rules of
`findings.py` on like-for-like data: both sides' bests over the same restart indices, Exp 3 on
relative MSE (best MSE over the target's mean square: a mixture's power changes with α),
diverged targets counted as the worst. Which experiments each line compares is the experiment
registry's (each record's `findings`). `rows` gathers them all and Holm-adjusts the tested ones
together; `markdown` writes findings.md.
"""

from __future__ import annotations

import numpy as np

from . import findings as F
from .metrics import best_of_restarts, best_over
from .results import final_mse

Metrics = dict[str, dict]  # experiment -> its metrics.json


def bests(a: dict, b: dict, relative: bool = False, targets: int | None = None) -> tuple[np.ndarray, np.ndarray, list]:
    """Each target's best of two conditions' metrics entries over the same restarts (the first
    min(R_a, R_b)) and, for paired sides, the same first `targets` targets."""
    fa, fb = final_mse(a, relative), final_mse(b, relative)
    r = min(fa.shape[1], fb.shape[1])
    return best_of_restarts(fa[:targets], r), best_of_restarts(fb[:targets], r), [r, r]


def judged(observation: str, judge, *args, **kwargs) -> F.Finding:
    """A row of the guide, or 'not measured' where the data cannot answer it (too few values)."""
    try:
        return judge(observation, *args, **kwargs)
    except ValueError as error:
        return F.not_measured(observation, str(error))


Rows = tuple[list[F.Finding], dict]  # a line's rows, and what else it measured (a fit, for the figure)


def _condition(m: Metrics, side: tuple[str, str]) -> dict | None:
    experiment, condition = side
    return m.get(experiment, {}).get("conditions", {}).get(condition)


def all_converge(m: Metrics, settings: dict, experiment: str, condition: str) -> Rows:
    reached = _condition(m, (experiment, condition))["per_target"]["reached"]
    label = label_of(experiment)
    return [F.all_reached(f"{label} all converge to ~0", reached, True),
            F.all_reached(f"{label} some don't converge", reached, False)], {}


def _sides(m: Metrics, a: tuple[str, str], b: tuple[str, str]):
    x, y = _condition(m, a), _condition(m, b)
    return None if x is None or y is None else bests(x, y)


def label_of(experiment: str) -> str:
    from .experiments import get

    return get(experiment).label


def _labels(m: Metrics, *sides: tuple[str, str]) -> tuple[str, ...]:
    return tuple(label_of(e) for e, _ in sides)


def similar_to(m: Metrics, settings: dict, title: str, a: tuple[str, str], b: tuple[str, str]) -> Rows:
    """'B ≈ A' on different targets, each side's best over the same restarts."""
    found = _sides(m, a, b)
    if found is None:
        return [], {}
    x, y, r = found
    return [judged(title, F.similar, x, y, _labels(m, a, b), False, settings, restarts=r)], {}


def much_worse_or_similar(m: Metrics, settings: dict, worse: str, same: str, a: tuple[str, str],
                          b: tuple[str, str]) -> Rows:
    """'B much worse than A' and 'B ≈ A', on different targets."""
    found = _sides(m, a, b)
    if found is None:
        return [], {}
    x, y, r = found
    labels = _labels(m, a, b)
    return [judged(worse, F.much_worse, x, y, labels, False, settings, restarts=r),
            judged(same, F.similar, x, y, labels, False, settings, restarts=r)], {}


def interpolation(m: Metrics, settings: dict, experiment: str) -> Rows:
    """Smooth inside [0, 1], sharp degradation beyond 1: pair by pair, on relative MSE."""
    conditions = m[experiment]["conditions"]
    label = label_of(experiment)
    alphas = {float(c[1:]): c for c in conditions}
    relative = {a: best_of_restarts(final_mse(conditions[c], relative=True)) for a, c in alphas.items()}
    restarts = [len(conditions[alphas[min(alphas)]]["per_target"]["final_mse"][0])] * 2
    inside, beyond = [a for a in alphas if 0 < a < 1], [a for a in alphas if a > 1]
    smooth, sharp = f"{label} smooth across α ∈ [0, 1]", f"{label} sharp degradation at α > 1"
    rows = []
    if {0.0, 1.0} <= set(alphas) and inside:
        ends = np.fmax(relative[0.0], relative[1.0])
        middle = np.max(np.stack([relative[a] for a in inside]), axis=0)
        row = judged(smooth, F.much_worse, ends, middle, ("α ∈ {0, 1}", "α inside (0, 1), the worst"), True, settings,
                     restarts=restarts, note=f"relative MSE; smooth means no interior α much worse (more than "
                                             f"{settings['much_ratio']:g}×) than the endpoints")
        if row.estimate is not None:
            worse = row.decide
            row.decide = lambda p, worse=worse: F.opposite(worse(p))
            row.verdict = row.decide(row.p)
        rows.append(row)
    else:
        rows.append(F.not_measured(smooth, "needs α = 0, α = 1 and an α inside (0, 1)"))
    if 1.0 in alphas and beyond:
        top = max(beyond)
        rows.append(judged(sharp, F.much_worse, relative[1.0], relative[top], ("α = 1", f"α = {top:g}"), True, settings,
                           restarts=restarts, note=f"relative MSE; much means more than {settings['much_ratio']:g}×"))
    else:
        rows.append(F.not_measured(sharp, "needs α = 1 and an α above 1"))
    return rows, {}


def replacement(m: Metrics, settings: dict, experiment: str) -> Rows:
    """Sharp transition or gradual degradation in the replaced fraction f (a logistic per target)."""
    conditions = m[experiment]["conditions"]
    fractions = [float(c[1:]) for c in conditions]
    best = np.array([best_of_restarts(final_mse(s)) for s in conditions.values()])
    rows, fit = F.transition(fractions, best, settings, label_of(experiment))
    return rows, {f"{experiment}_fit": fit}


def variants(m: Metrics, settings: dict, experiment: str, baseline: tuple[str, str]) -> Rows:
    """Beyond the guide: each variant (the research log's ablations) against the full model on
    the same targets and restarts."""
    full = _condition(m, baseline)
    if full is None:
        return [], {}
    rows = []
    for condition, summary in m[experiment]["conditions"].items():
        n = len(summary["per_target"]["final_mse"])
        ablated, theirs, r = bests(summary, full, targets=n)
        name = condition.replace("_", " ")
        rows.append(judged(f"{label_of(experiment)} {name} reaches better than the full model",
                           F.much_worse, ablated, theirs, (name, "full model"), True, {**settings, "much_ratio": 1.0},
                           restarts=r, note=f"paired by target; restarts 0..{r[0] - 1} on both sides, which share their "
                                            f"initial prompts; better means lower best MSE"))
    return rows, {}


def methods(m: Metrics, settings: dict, experiment: str, baseline: tuple[str, str]) -> Rows:
    """Beyond the guide: does text reach as well as a soft prompt, method by method (paired by
    target; the restart counts equalised, the starts differ), and does GCG reach better than PEZ
    (paired by target and restart: they start from the same tokens)?"""
    soft = _condition(m, baseline)
    conditions = m[experiment]["conditions"]
    rows = []
    if soft is not None:
        for name, summary in conditions.items():
            n = len(summary["per_target"]["final_mse"])
            soft_best, hard_best, r = bests(soft, summary, targets=n)
            rows.append(judged(f"Text ({name.upper()}) reaches as well as a soft prompt", F.as_well, soft_best, hard_best,
                               ("soft prompt", name.upper()), True, settings, restarts=r,
                               note=f"paired by target; {r[0]} restart(s) a side, but the starts differ (tokens, not "
                                    f"N(0, 1)); as well means at most {settings['similar_ratio']:g}× worse"))
    if {"pez", "gcg"} <= set(conditions):
        gcg, pez, r = bests(conditions["gcg"], conditions["pez"])
        rows.append(judged("GCG reaches better than PEZ", F.much_worse, gcg, pez, ("GCG", "PEZ"), True,
                           {**settings, "much_ratio": 1.0}, restarts=r,
                           note="paired by target and restart (the same initial tokens); better means lower best "
                                "MSE; an MSE of exactly 0 (recovered tokens) ties with another 0"))
    return rows, {}


def paired_table(full: dict, variants: dict, names: list[str]) -> list[dict]:
    """Each variant (an ablated model) against the full model on the same targets and restarts:
    median cosine and best MSE of each side, and the share of targets the variant reaches
    better. `full`, `variants`: runs.h5 arrays ([condition, target, restart, ...])."""
    out = []
    for c, name in enumerate(names):
        final, cosine = variants["final_mse"][c], variants["cosine"][c]
        n, r = len(final), min(final.shape[1], full["final_mse"].shape[2])
        _, mine, mine_cos = best_over(final, cosine, r)
        _, theirs, their_cos = best_over(full["final_mse"][0][:n], full["cosine"][0][:n], r)
        out.append({"variant": name, "restarts": r, "targets": n, "median_cosine": float(np.nanmedian(mine_cos)),
                    "full_median_cosine": float(np.nanmedian(their_cos)),
                    "median_best_mse": float(np.median(F.scored(mine))),
                    "full_median_best_mse": float(np.median(F.scored(theirs))),
                    "better_share": float(np.mean(F.scored(mine) < F.scored(theirs))),
                    "cosine": mine_cos, "full_cosine": their_cos})
    return out


def manifold_boundary(result: dict, settings: dict) -> list[F.Finding]:
    """Beyond the guide: do reached and unreached targets separate by their distance from the
    data manifold — and still among targets of like norm? (A separation, not a cause: a target's
    norm can rise with its distance and set reachability itself.)

    The first row holds when one distance separates them across experiments (its pooled AUC's
    group-bootstrap interval above `boundary_auc`) and the experiments' own boundaries agree
    (two or more, their intervals — each spanning at least its gap — overlapping); else does not
    hold when the experiment explains who is reached beyond the distance (a cluster-robust score
    test, Holm-adjusted with the other rows); else inconclusive — among them, distance and
    experiment confounded (fewer than two experiments with both reached and unreached targets).
    The second, the control, holds when the same distance's AUC within strata of the target's
    norm has its interval above `boundary_auc`, does not hold when below, else inconclusive
    (decided by its interval alone)."""
    from .boundary import DISTANCES, NORM_STRATA, agree
    from .experiments import get

    title, level = "Reached and unreached targets separate by distance from the data manifold", settings["boundary_auc"]
    control = "Reached and unreached targets separate by distance within strata of the target's norm"
    pooled = {d: result[d]["pooled"] for d in DISTANCES if result[d]["pooled"]["auc"] is not None}
    if not pooled:
        why = "every target was reached, or none: no boundary to find"
        return [F.not_measured(title, why), F.not_measured(control, why)]
    name = max(pooled, key=lambda d: pooled[d]["auc"])
    s, agreed = pooled[name], agree(result[name]["by_experiment"])
    low, high = s["auc_interval"]
    separates = low is not None and low > level

    def decide(q: float | None) -> str:
        if separates and agreed:
            return F.HOLDS
        return F.FAILS if q is not None and q < settings["alpha"] else F.OPEN

    within, (w_low, w_high) = s["auc_within_norm"], s["auc_within_norm_interval"]
    norm = F.OPEN if w_low is None else F.HOLDS if w_low > level else F.FAILS if w_high < level else F.OPEN
    compared = f"{s['n_targets']} targets in {s['n_groups']} groups (made of common pool sequences), reached against"
    p = result[name]["experiment_beyond_p"]
    note = (f"the {name} distance (the better separating); AUC level {level:g}; the experiments' own boundaries "
            f"{'agree' if agreed else 'do not agree' if agreed is False else 'cannot be compared: distance and experiment are confounded'}"
            f"; within norm strata (next row): {norm}; reached: "
            f"{', '.join(f'{get(e).label} {v:.0%}' for e, v in result['reached_by_experiment'].items())}")
    first = F.Finding(title, f"{compared} their {name} distance", "AUC (an unreached target lies farther)", s["auc"],
                      low, high, None if p is None else "cluster-robust score test: the experiment beyond the distance",
                      p, decide(p), note, decide=decide)
    if within is None:
        return [first, F.not_measured(control, "no stratum of the target's norm holds both reached and unreached "
                                               "targets: distance and norm cannot be told apart")]
    second = F.Finding(control, f"{compared} their {name} distance, within {NORM_STRATA} quantiles of the target's "
                                f"mean square", "AUC among targets of like norm", within, w_low, w_high, None, None, norm,
                       f"the control for the row above: does distance still separate them when the norm cannot? "
                       f"AUC level {level:g}")
    return [first, second]


def rows(m: Metrics, settings: dict, boundary: dict | None = None) -> tuple[list[F.Finding], dict]:
    """Every line the experiments that ran can answer (each record's own, in the registry's
    order) and, given the boundary analysis, its line; Holm-adjusted together; and what else
    they measured (Exp 4's fits)."""
    from .experiments import REGISTRY

    out, extras = [], {}
    for name, record in REGISTRY.items():
        if name in m and record.findings:
            line, *args = record.findings
            found, extra = globals()[line](m, settings, *args)
            out += found
            extras.update(extra)
    if boundary is not None:
        out += manifold_boundary(boundary, settings)
    return F.adjust(out), extras


def warnings(m: Metrics) -> list[str]:
    """What a reader of the findings must know: each experiment's own warnings (a small pool,
    conditions whose runs all diverged, a failed capture)."""
    return [f"{experiment}: {w}" for experiment, metrics in m.items() for w in metrics.get("warnings", [])]


def _number(x, spec=".3g") -> str:
    return "—" if x is None else format(x, spec)


def markdown(found: list[F.Finding], settings: dict, warned: list[str]) -> str:
    lines = [f"The agenda's interpretation guide, answered. Effects with {settings['confidence']:.0%} bootstrap "
             f"intervals over targets; tests at α = {settings['alpha']:g} on Holm-adjusted p-values (over the "
             f"{sum(r.p is not None for r in found)} tested rows; the raw p beside); each side's best over the same "
             f"restarts; rules in docs/protocol.md. 'Verdict uses p': yes where the verdict needs its interval and its "
             f"Holm-adjusted p; no where the interval (or, for 'all converge', the count) alone decides it, and a p "
             f"beside it is descriptive.", ""]
    if warned:
        lines += ["**Warnings**", "", *[f"- {w}" for w in warned], ""]
    lines += ["| observation | comparison | restarts | effect | estimate [interval] | test (p; Holm p) | verdict uses p "
              "| verdict | note |", "|---|---|---|---|---|---|---|---|---|"]
    for r in found:
        interval = f"{_number(r.estimate)} [{_number(r.low)}, {_number(r.high)}]" if r.estimate is not None else "—"
        test = f"{r.test} ({r.p:.2g}; {r.p_adjusted:.2g})" if r.test else "—"
        restarts = " vs ".join(map(str, r.restarts)) if r.restarts else "—"
        uses = "yes" if r.uses_p else "no (descriptive)" if r.p is not None else "no"
        lines.append(f"| {r.observation} | {r.comparison} | {restarts} | {r.effect} | {interval} | {test} | {uses} "
                     f"| **{r.verdict}** | {r.note} |")
    return "\n".join(lines) + "\n"
