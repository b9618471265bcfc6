"""The agenda's interpretation guide, line by line, from the experiments' metrics.json files.

Each function is one kind of line (all converge; B ≈ A; B much worse than A; smooth and sharp
in α; sharp or gradual in f; each condition against a baseline, paired), answered with the
rules of `findings.py` on like-for-like data: both sides' bests over the same restart indices,
Exp 3 on relative MSE (best MSE over the target's mean square: a mixture's power changes with
α), diverged targets counted as the worst. Which experiments each line compares is the
experiment registry's: each record names its lines (`Line`: one of these functions and its
arguments), and every line is called the same way, `line(context, experiment, *args)`. `rows`
gathers them all and Holm-adjusts the tested ones together; `markdown` writes findings.md.
(The registry imports this module, so nothing here imports the registry: a record arrives in
the context.)
"""

from __future__ import annotations

import itertools

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import findings as F
from .metrics import best_of_restarts, best_over, final_mse
from .runs import SOFT, joined, method_records, split

Metrics = dict[str, dict]  # experiment -> its metrics.json
Side = tuple[str, str]  # (experiment, condition)


@dataclass(frozen=True)
class Context:
    """What every line reads: the experiments' metrics, the findings settings, their records."""

    metrics: Metrics
    settings: dict
    records: dict  # experiment -> its registry record (labels, methods)

    def condition(self, side: Side) -> dict | None:
        experiment, condition = side
        return self.metrics.get(experiment, {}).get("conditions", {}).get(condition)

    def label(self, experiment: str) -> str:
        return self.records[experiment].label


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


def soft_conditions(ctx: Context, experiment: str) -> dict[str, dict]:
    """An experiment's soft-prompt conditions (the agenda's), by name."""
    return {c: s for c, s in ctx.metrics[experiment]["conditions"].items() if split(c)[1] == SOFT}


def all_converge(ctx: Context, experiment: str, condition: str) -> Rows:
    if ctx.condition((experiment, condition)) is None:  # a condition its settings left out (prefix steering's ε = 0)
        return [], {}
    reached = ctx.condition((experiment, condition))["per_target"]["reached"]
    label = ctx.label(experiment)
    return [F.all_reached(f"{label} all converge to ~0", reached, True),
            F.all_reached(f"{label} some don't converge", reached, False)], {}


def _sides(ctx: Context, a: Side, b: Side):
    x, y = ctx.condition(a), ctx.condition(b)
    return None if x is None or y is None else bests(x, y)


def similar_to(ctx: Context, experiment: str, title: str, a: Side, b: Side) -> Rows:
    """'B ≈ A' on different targets, each side's best over the same restarts."""
    found = _sides(ctx, a, b)
    if found is None:
        return [], {}
    x, y, r = found
    return [judged(title, F.similar, x, y, (ctx.label(a[0]), ctx.label(b[0])), False, ctx.settings, restarts=r)], {}


def much_worse_or_similar(ctx: Context, experiment: str, worse: str, same: str, a: Side, b: Side) -> Rows:
    """'B much worse than A' and 'B ≈ A', on different targets."""
    found = _sides(ctx, a, b)
    if found is None:
        return [], {}
    x, y, r = found
    labels = (ctx.label(a[0]), ctx.label(b[0]))
    return [judged(worse, F.much_worse, x, y, labels, False, ctx.settings, restarts=r),
            judged(same, F.similar, x, y, labels, False, ctx.settings, restarts=r)], {}


def interpolation(ctx: Context, experiment: str) -> Rows:
    """Smooth inside [0, 1], sharp degradation beyond 1: pair by pair, on relative MSE."""
    conditions, settings = soft_conditions(ctx, experiment), ctx.settings
    label = ctx.label(experiment)
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


def replacement(ctx: Context, experiment: str) -> Rows:
    """Sharp transition or gradual degradation in the replaced fraction f (a logistic per target)."""
    conditions = soft_conditions(ctx, experiment)
    fractions = [float(c[1:]) for c in conditions]
    best = np.array([best_of_restarts(final_mse(s)) for s in conditions.values()])
    rows, fit = F.transition(fractions, best, ctx.settings, ctx.label(experiment))
    return rows, {f"{experiment}_fit": fit}


RULES = {  # how a condition is judged against its baseline, paired: (the rule, its settings, what it means)
    "better": (F.much_worse, {"much_ratio": 1.0}, "better means lower best MSE"),
    "as_well": (F.as_well, {}, "as well means at most {similar_ratio:g}× worse"),
}


def against(ctx: Context, experiment: str, title: str, rule: str, baseline: Callable[[str], Side | None],
            conditions: list[str] | None = None, sides: tuple[str, str] = ("{label}", "{baseline}"),
            pairing: str = "") -> Rows:
    """Each condition against its baseline, paired by target: `baseline(condition)` is the side
    it is compared with (None: not compared), `rule` how ('better': lower best MSE; 'as_well': at
    most similar_ratio× worse). `title` and `sides` (the two sides' names) may use {label} and
    {baseline} (the two conditions' labels), {condition} (the condition's base), {method} and
    {baseline_method} (their methods' labels), {claim} (what the method's record claims, 'the norm
    bound costs little: ', or nothing); `pairing` says what else the sides share. Each
    side takes its best over the same restarts, on the condition's targets. One line for the
    ablation against the full model, every method against the soft prompt, GCG against PEZ."""
    judge, override, meaning = RULES[rule]
    settings, rows = {**ctx.settings, **override}, []
    for condition in conditions or list(ctx.metrics[experiment]["conditions"]):
        side = baseline(condition)
        theirs, mine = (None, None) if side is None else (ctx.condition(side), ctx.condition((experiment, condition)))
        if theirs is None or mine is None:
            continue
        (base, method), (_, their_method) = split(condition), split(side[1])
        words = {"label": ctx.records[experiment].label_of(condition), "baseline": ctx.records[side[0]].label_of(side[1]),
                 "condition": base.replace("_", " "), "method": method_records()[method]["label"],
                 "claim": f"{method_records()[method]['claim']}: " if method_records()[method]["claim"] else "",
                 "baseline_method": method_records()[their_method]["label"]}
        names = tuple(s.format(**words) for s in sides)
        x, y, r = bests(mine, theirs, targets=len(mine["per_target"]["final_mse"]))
        first, second, labels = (y, x, names[::-1]) if rule == "as_well" else (x, y, names)
        rows.append(judged(title.format(**words), judge, first, second, labels, True, settings, restarts=r,
                           note=f"paired by target{pairing}; restarts 0..{r[0] - 1} on both sides; "
                                f"{meaning.format(**settings)}"))
    return rows, {}


def methods_against_soft(ctx: Context, experiment: str, baseline: Side | None = None) -> Rows:
    """Beyond the guide: does each other method reach as well as the soft prompt on the same
    targets (its own experiment's soft condition of the same base, else `baseline`: Exp 1's soft
    prompts for the text experiment), and among the text methods, which start from the same
    tokens, does each later one reach better than the first (GCG than PEZ)?"""
    record, names = ctx.records[experiment], list(ctx.metrics[experiment]["conditions"])
    rows = []
    for begins, pairing in (("normal", ", and they share their initial prompts"),
                            ("logits", "; the starts differ (a token mixture's logits, not N(0, 1))"),
                            ("tokens", "; the starts differ (tokens, not N(0, 1))")):
        def soft_of(condition: str, begins=begins) -> Side | None:
            base, method = split(condition)
            if method == SOFT or method_records()[method]["begins"] != begins:
                return None
            return (experiment, base) if base in names else baseline

        rows += against(ctx, experiment, "{claim}{label} reaches as well as a soft prompt", "as_well", soft_of,
                        sides=("{method}", "soft prompt"), pairing=pairing)[0]
    text = [m for m in dict.fromkeys(split(c)[1] for c in names) if m != SOFT and method_records()[m]["begins"] == "tokens"
            and not method_records()[m]["per_position"]]  # the searches from shared random tokens (not the inversion)
    for later in text[1:]:
        pairs = {joined(split(c)[0], later): (experiment, joined(split(c)[0], text[0])) for c in names}
        for base in dict.fromkeys(split(c)[0] for c in names):
            where = "" if record.label_of(base) == record.label else f" on {record.label_of(base)}"
            rows += against(ctx, experiment, "{method} reaches better than {baseline_method}" + where, "better",
                            pairs.get, [joined(base, later)], sides=("{method}", "{baseline_method}"),
                            pairing=" and restart (the same initial tokens); an MSE of exactly 0 (recovered tokens) "
                                    "ties with another 0")[0]
    return rows, {}


def steering_realised(ctx: Context, experiment: str) -> Rows:
    """Steering (a supplied or random direction, or a prefix before real text): for each method,
    does a prompt realise the largest ε for most targets (the reached share's interval above ½)?
    The note names the largest ε at which it does."""
    record, conditions = ctx.records[experiment], ctx.metrics[experiment]["conditions"]
    by_method: dict[str, list[tuple[float, str]]] = {}
    for condition in conditions:
        base, method = split(condition)
        by_method.setdefault(method, []).append((float(base[1:]), condition))
    rows = []
    for pairs in by_method.values():
        pairs.sort()
        held = [e for e, c in pairs if F.reached_interval(conditions[c]["per_target"]["reached"])[1] > 0.5]
        largest, condition = pairs[-1]
        note = (f"most targets reached (interval above ½) up to ε = {max(held):g}" if held else
                "at no ε are most targets reached (interval above ½)")
        rows.append(F.mostly_reached(f"{record.label_of(condition)}: a prompt realises the largest ε for most targets",
                                     conditions[condition]["per_target"]["reached"], note))
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
                    "cosine": mine_cos, "full_cosine": their_cos, "best_mse": mine, "full_best_mse": theirs})
    return out


def difficulty_correlations(rows: list[dict], settings: dict) -> list[dict]:
    """How alike the full model and each variant find the same targets, and the variants each
    other (the research log's full vs no-FFN r = 0.02, no-FFN vs no-attention r = −0.52): Pearson
    and Spearman of per-target log10 best MSE over the same restarts (findings.difficulty_correlation),
    for every pair of `paired_table`'s sides; a pair with fewer than 4 comparable targets says so."""
    with np.errstate(divide="ignore", invalid="ignore"):  # an exact 0 or a diverged best: left out, counted
        sides = {"full model": np.log10(rows[0]["full_best_mse"]),
                 **{r["variant"].replace("_", " "): np.log10(r["best_mse"]) for r in rows}}
    out = []
    for a, b in itertools.combinations(sides, 2):
        try:
            out.append({"sides": [a, b], **F.difficulty_correlation(sides[a], sides[b], settings)})
        except ValueError as few:
            out.append({"sides": [a, b], "unmeasured": str(few)})
    return out


def manifold_boundary(result: dict, settings: dict, labels: dict[str, str] | None = None) -> list[F.Finding]:
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
            f"{', '.join(f'{(labels or {}).get(e, e)} {v:.0%}' for e, v in result['reached_by_experiment'].items())}")
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


def rows(ctx: Context, lines: list[tuple[str, object]], boundary: dict | None = None) -> tuple[list[F.Finding], dict]:
    """Every line (experiment, its record's `Line`) whose experiment ran, in order, and, given the
    boundary analysis, its rows; Holm-adjusted together; and what else they measured (Exp 4's
    fits)."""
    out, extras = [], {}
    for experiment, line in lines:
        if experiment in ctx.metrics:
            found, extra = line.judge(ctx, experiment, *line.args)
            out += found
            extras.update(extra)
    if boundary is not None:
        out += manifold_boundary(boundary, ctx.settings, {e: r.label for e, r in ctx.records.items()})
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
