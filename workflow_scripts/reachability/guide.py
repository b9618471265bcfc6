"""The agenda's interpretation guide, line by line, from the experiments' metrics.json files.

Each function answers the lines one experiment (or pair of experiments) can answer, with the
rules of `findings.py`, on like-for-like data: both sides' bests over the same restart
indices, Exp 3 on relative MSE (best MSE over the target's mean square: a mixture's power
changes with α), diverged targets counted as the worst. `rows` gathers them all and
Holm-adjusts the tested ones together; `markdown` writes findings.md.
"""

from __future__ import annotations

import numpy as np

from . import findings as F
from .metrics import best_of_restarts
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


def experiment1(m: Metrics, settings: dict) -> list[F.Finding]:
    reached = m["experiment1"]["conditions"]["real"]["per_target"]["reached"]
    return [F.all_reached("Exp 1 all converge to ~0", reached, True),
            F.all_reached("Exp 1 some don't converge", reached, False)]


def experiment2(m: Metrics, settings: dict) -> list[F.Finding]:
    rows = []
    if "experiment1" in m and "experiment2a" in m:
        x, y, r = bests(m["experiment1"]["conditions"]["real"], m["experiment2a"]["conditions"]["matched"])
        rows.append(judged("Exp 2a ≈ Exp 1", F.similar, x, y, ("Exp 1", "Exp 2a"), False, settings, restarts=r))
    if "experiment2a" in m and "experiment2b" in m:
        x, y, r = bests(m["experiment2a"]["conditions"]["matched"], m["experiment2b"]["conditions"]["isotropic"])
        rows += [judged("Exp 2b much worse than 2a", F.much_worse, x, y, ("Exp 2a", "Exp 2b"), False, settings,
                        restarts=r),
                 judged("Exp 2b ≈ Exp 2a", F.similar, x, y, ("Exp 2a", "Exp 2b"), False, settings, restarts=r)]
    return rows


def experiment3(m: Metrics, settings: dict) -> list[F.Finding]:
    """Smooth inside [0, 1], sharp degradation beyond 1: pair by pair, on relative MSE."""
    conditions = m["experiment3"]["conditions"]
    alphas = {float(c[1:]): c for c in conditions}
    relative = {a: best_of_restarts(final_mse(conditions[c], relative=True)) for a, c in alphas.items()}
    restarts = [len(conditions[alphas[min(alphas)]]["per_target"]["final_mse"][0])] * 2
    inside, beyond = [a for a in alphas if 0 < a < 1], [a for a in alphas if a > 1]
    smooth, sharp = "Exp 3 smooth across α ∈ [0, 1]", "Exp 3 sharp degradation at α > 1"
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
    return rows


def experiment4(m: Metrics, settings: dict) -> tuple[list[F.Finding], dict | None]:
    conditions = m["experiment4"]["conditions"]
    fractions = [float(c[1:]) for c in conditions]
    best = np.array([best_of_restarts(final_mse(s)) for s in conditions.values()])
    return F.transition(fractions, best, settings)


def ablation(m: Metrics, settings: dict) -> list[F.Finding]:
    """Beyond the guide: the research log's ablations, paired by target and restart."""
    rows = []
    for condition, summary in m["ablation"]["conditions"].items():
        n = len(summary["per_target"]["final_mse"])
        ablated, full, r = bests(summary, m["experiment1"]["conditions"]["real"], targets=n)
        name = condition.replace("_", " ")
        rows.append(judged(f"Ablation {name} reaches better than the full model", F.much_worse, ablated, full,
                           (name, "full model"), True, {**settings, "much_ratio": 1.0}, restarts=r,
                           note=f"paired by target; restarts 0..{r[0] - 1} on both sides, which share their initial "
                                f"prompts; better means lower best MSE"))
    return rows


def paired_table(full: dict, variants: dict[str, dict]) -> list[dict]:
    """Each variant (an ablated model) against the full model on the same targets and restarts:
    median cosine and best MSE, and the share of targets the variant reaches better."""
    out = []
    for name, summary in variants.items():
        mine, theirs, r = bests(summary, full, targets=len(summary["per_target"]["final_mse"]))
        cosine = np.nanmean(np.array(summary["per_target"]["cosine_by_position"], dtype=float), axis=1)
        full_cosine = np.nanmean(np.array(full["per_target"]["cosine_by_position"], dtype=float), axis=1)[:len(cosine)]
        out.append({"variant": name, "restarts": r[0], "targets": len(mine), "median_cosine": float(np.nanmedian(cosine)),
                    "full_median_cosine": float(np.nanmedian(full_cosine)),
                    "median_best_mse": float(np.median(F.scored(mine))),
                    "full_median_best_mse": float(np.median(F.scored(theirs))),
                    "better_share": float(np.mean(F.scored(mine) < F.scored(theirs)))})
    return out


def rows(m: Metrics, settings: dict) -> tuple[list[F.Finding], dict | None]:
    """Every line the enabled experiments can answer, Holm-adjusted together; and Exp 4's fits."""
    out, fit = [], None
    if "experiment1" in m:
        out += experiment1(m, settings)
    out += experiment2(m, settings)
    if "experiment3" in m:
        out += experiment3(m, settings)
    if "experiment4" in m:
        found, fit = experiment4(m, settings)
        out += found
    if {"experiment1", "ablation"} <= set(m):
        out += ablation(m, settings)
    return F.adjust(out), fit


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
             f"restarts; rules in docs/protocol.md.", ""]
    if warned:
        lines += ["**Warnings**", "", *[f"- {w}" for w in warned], ""]
    lines += ["| observation | comparison | restarts | effect | estimate [interval] | test (p; Holm p) | verdict | note |",
              "|---|---|---|---|---|---|---|---|"]
    for r in found:
        interval = f"{_number(r.estimate)} [{_number(r.low)}, {_number(r.high)}]" if r.estimate is not None else "—"
        test = f"{r.test} ({r.p:.2g}; {r.p_adjusted:.2g})" if r.test else "—"
        restarts = " vs ".join(map(str, r.restarts)) if r.restarts else "—"
        lines.append(f"| {r.observation} | {r.comparison} | {restarts} | {r.effect} | {interval} | {test} "
                     f"| **{r.verdict}** | {r.note} |")
    return "\n".join(lines) + "\n"
