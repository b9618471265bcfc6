"""Rule findings: the agenda's interpretation guide, line by line, with effect sizes, bootstrap
intervals, tests and verdicts (findings.md, findings.json)."""

import sys

sys.path.insert(0, snakemake.scriptdir)  # this checkout's library, before any installed copy

from reachability.pipeline import start_log  # noqa: E402

log = start_log(snakemake)  # first: import errors land in the log

import json  # noqa: E402

import numpy as np  # noqa: E402

from reachability import findings as F  # noqa: E402
from reachability.results import read_metrics  # noqa: E402
from reachability.storage import jsonable  # noqa: E402

settings = snakemake.params.findings
metrics = {m["experiment"]: m["conditions"] for m in read_metrics(snakemake.input.metrics)}


def best(experiment: str, condition: str) -> np.ndarray:
    return np.array(metrics[experiment][condition]["per_target"]["best_final_mse"], dtype=float)


def judged(observation: str, judge, *args) -> F.Finding:
    """A row of the guide, or 'not measured' where the data cannot answer it (too few values)."""
    try:
        return judge(observation, *args)
    except ValueError as error:
        return F.not_measured(observation, str(error))


rows, fit = [], None
if "experiment1" in metrics:
    reached = metrics["experiment1"]["real"]["per_target"]["reached"]
    rows += [F.all_reached("Exp 1 all converge to ~0", reached, True),
             F.all_reached("Exp 1 some don't converge", reached, False)]
if {"experiment1", "experiment2a"} <= set(metrics):
    rows.append(judged("Exp 2a ≈ Exp 1", F.similar, best("experiment1", "real"), best("experiment2a", "matched"),
                       ("Exp 1", "Exp 2a"), False, settings))
if {"experiment2a", "experiment2b"} <= set(metrics):
    x, y = best("experiment2a", "matched"), best("experiment2b", "isotropic")
    rows += [judged("Exp 2b much worse than 2a", F.much_worse, x, y, ("Exp 2a", "Exp 2b"), False, settings),
             judged("Exp 2b ≈ Exp 2a", F.similar, x, y, ("Exp 2a", "Exp 2b"), False, settings)]
if "experiment3" in metrics:
    alphas = {float(c[1:]): c for c in metrics["experiment3"]}
    inside = [a for a in alphas if 0 < a < 1]
    beyond = [a for a in alphas if a > 1]
    smooth = "Exp 3 smooth across α ∈ [0, 1]"
    if {0.0, 1.0} <= set(alphas) and inside:
        ends = np.maximum(best("experiment3", alphas[0.0]), best("experiment3", alphas[1.0]))
        middle = np.max([best("experiment3", alphas[a]) for a in inside], axis=0)
        row = judged(smooth, F.much_worse, ends, middle, ("α ∈ {0, 1}", "α inside (0, 1), the worst"), True, settings)
        if row.estimate is not None:
            row.verdict = F.opposite(row.verdict)
            row.note = f"smooth means no interior α much worse (more than {settings['much_ratio']:g}×) than the endpoints"
        rows.append(row)
    else:
        rows.append(F.not_measured(smooth, "needs α = 0, α = 1 and an α inside (0, 1)"))
    sharp = "Exp 3 sharp degradation at α > 1"
    if 1.0 in alphas and beyond:
        rows.append(judged(sharp, F.much_worse, best("experiment3", alphas[1.0]), best("experiment3", alphas[max(beyond)]),
                           ("α = 1", f"α = {max(beyond):g}"), True, settings))
    else:
        rows.append(F.not_measured(sharp, "needs α = 1 and an α above 1"))
if "experiment4" in metrics:
    fractions = [float(c[1:]) for c in metrics["experiment4"]]
    found, fit = F.transition(fractions, np.array([best("experiment4", c) for c in metrics["experiment4"]]), settings)
    rows += found
if {"experiment1", "ablation"} <= set(metrics):  # beyond the guide: the research log's ablations, paired
    for condition in metrics["ablation"]:
        ablated = best("ablation", condition)
        full = best("experiment1", "real")[: len(ablated)]
        row = judged(f"Ablation {condition.replace('_', ' ')} reaches better than the full model", F.much_worse,
                     ablated, full, (condition.replace("_", " "), "full model"), True, {**settings, "much_ratio": 1.0})
        if row.estimate is not None:
            row.note = "paired by target (same targets, same initial prompts); better means lower best MSE"
        rows.append(row)
for row in rows:
    log.info("%s: %s", row.observation, row.verdict)


def number(x, spec=".3g"):
    return "—" if x is None else format(x, spec)


with open(snakemake.output.table, "w") as f:
    f.write(f"The agenda's interpretation guide, answered. Effects with {settings['confidence']:.0%} bootstrap "
            f"intervals over targets; tests at α = {settings['alpha']:g}; see the README for the verdict rules.\n\n")
    f.write("| observation | comparison | effect | estimate [interval] | test (p) | verdict | note |\n")
    f.write("|---|---|---|---|---|---|---|\n")
    for r in rows:
        interval = f"{number(r.estimate)} [{number(r.low)}, {number(r.high)}]" if r.estimate is not None else "—"
        test = f"{r.test} ({r.p:.2g})" if r.test else "—"
        f.write(f"| {r.observation} | {r.comparison} | {r.effect} | {interval} | {test} | **{r.verdict}** | {r.note} |\n")
with open(snakemake.output.json, "w") as f:
    json.dump(jsonable({"settings": settings, "findings": [r.row() for r in rows], "experiment4_fit": fit}), f, indent=1)
