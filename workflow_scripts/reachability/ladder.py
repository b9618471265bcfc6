"""The constraint ladder: every method on the same targets, from the free soft prompt to text.

The rungs are the methods in the registry's order, the continuous ones first (soft, norm ball,
token mixture), then the text ones (PEZ, GCG, exact inversion); a token mixture also gives the
text it reads as (each position's heaviest token), a rung of its own ('token mixture → text').
A *section* is one set of targets: an experiment's condition (its base), and on Exp 1's real
targets also the runs of every experiment that reuses them unchanged (the text experiment).

Like for like: within a section every rung takes each target's best over the same restarts
(the first min over its rungs) of the same targets (the first min). Where the targets are made
by real text, each text rung also says whether its best recovered that text exactly. There the
exact inversion is the ground truth: a causal model's map from text to residuals is injective,
so it recovers every such target, and a text method that misses one has a search problem, not
a reachability one. The paired verdicts ("the norm bound costs little", "text reaches as well as
a vector", Holm-adjusted with the others) are findings.md's (guide.methods_against_soft).
"""

from __future__ import annotations

import numpy as np

from .findings import scored
from .hard_prompt import recovery
from .metrics import best_over, reached
from .runs import SOFT, method_records, split

Runs = dict[str, np.ndarray]  # an experiment's runs.h5 arrays, [condition, target, restart, ...]
Member = tuple[str, int]  # (experiment, condition index): one method's runs in a section


def order(methods: list[str]) -> list[str]:
    """Methods from the free prompt to text: continuous first, then text, each in the registry's order."""
    records = list(method_records())
    return sorted(methods, key=lambda m: (method_records()[m]["begins"] == "tokens", records.index(m)))


def sections(conditions: dict[str, list[str]], joins: dict[str, tuple[str, str]]) -> dict[tuple[str, str], dict[str, Member]]:
    """Each set of targets, keyed (experiment, base), with the runs of each method on it ({method:
    (experiment, condition index)}): an experiment's conditions by base, and an experiment in
    `joins` ({experiment: (experiment, base)}: the targets it reuses) added to that section.
    Only sections of more than one method are a ladder."""
    out: dict[tuple[str, str], dict[str, Member]] = {}
    for experiment, names in conditions.items():
        for c, name in enumerate(names):
            base, method = split(name)
            out.setdefault(joins.get(experiment, (experiment, base)), {}).setdefault(method, (experiment, c))
    return {key: dict(sorted(members.items(), key=lambda kv: order(list(members)).index(kv[0])))
            for key, members in out.items() if len(members) > 1}


def rung(runs: Runs, c: int, n: int, r: int, threshold: float, original: np.ndarray | None, text: bool = False,
         is_text: bool = True) -> dict:
    """One method's best of the first `r` restarts on the first `n` targets of condition c:
    best MSE, relative MSE, mean cosine over positions, reached; with `original` (the targets'
    own token ids [n, S]) and a text rung's (`is_text`) tokens, whether it recovered them exactly.
    `text`: the text a token mixture reads as, not the mixture."""
    final, cosine = (runs["text_mse"], runs["text_cosine"]) if text else (runs["final_mse"], runs["cosine"])
    index, mse, cos = best_over(final[c, :n], cosine[c, :n], r)
    scale = runs["target_mean_square"][c, :n, 0]
    out = {"best_mse": mse, "relative_best_mse": mse / scale, "cosine": cos, "reached": reached(mse, scale, threshold)}
    tokens = runs.get("tokens")
    if original is not None and is_text and tokens is not None and (tokens[c, :n, :r] >= 0).all():
        out["exact"] = recovery(tokens[c, np.arange(n), index], original[:n])["exact"] & np.isfinite(mse)
    return out


def summarise(one: dict, soft: dict | None) -> dict:
    """A rung over its targets: medians (a diverged target counts as the worst), shares reached
    and recovered, and the median per-target ratio of its best MSE to the soft prompt's."""
    worst = lambda x: float(np.median(scored(x)))  # noqa: E731
    out = {"median_best_mse": worst(one["best_mse"]), "median_relative_best_mse": worst(one["relative_best_mse"]),
           "median_cosine": float(np.nanmedian(one["cosine"])) if np.isfinite(one["cosine"]).any() else None,
           "reached_share": float(one["reached"].mean()), "n_diverged": int((~np.isfinite(one["best_mse"])).sum())}
    if "exact" in one:
        out["exact_share"] = float(one["exact"].mean())
    if soft is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = scored(one["best_mse"]) / scored(soft["best_mse"])
        out["median_ratio_to_soft"] = float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else None
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}


def ladder(runs: dict[str, Runs], conditions: dict[str, list[str]], joins: dict[str, tuple[str, str]],
           labels: dict[tuple[str, str], str], real_text: set[tuple[str, str]], original: np.ndarray | None,
           threshold: float) -> list[dict]:
    """Every section's rungs: `runs` and `conditions` by experiment, `labels` each section's name,
    `real_text` the sections whose targets are made by the pool's text (`original`: its token ids
    [N, S]; target t is sequence t)."""
    out = []
    for key, members in sections(conditions, joins).items():
        n = min(runs[e]["final_mse"].shape[1] for e, _ in members.values())
        r = min(runs[e]["final_mse"].shape[2] for e, _ in members.values())
        truth = original if key in real_text else None
        rows, soft = [], None
        for method, (experiment, c) in members.items():
            reads_as_text = "text_mse" in runs[experiment] and np.isfinite(runs[experiment]["text_mse"][c]).any()
            for text in (False, True) if reads_as_text else (False,):
                is_text = text or method_records()[method]["begins"] == "tokens"
                one = rung(runs[experiment], c, n, r, threshold, truth, text, is_text)
                soft = one if method == SOFT and not text else soft
                label = method_records()[method]["label"] + (" → text" if text else "")
                rows.append({"method": method, "label": label, "text": is_text,
                             "experiment": experiment, "condition": conditions[experiment][c],
                             "summary": summarise(one, soft if method != SOFT else None), "per_target": one})
        out.append({"experiment": key[0], "condition": key[1], "label": labels[key], "n_targets": n, "restarts": r,
                    "real_text": truth is not None, "rungs": rows})
    return out


def _g(x, spec: str = ".3g") -> str:
    return "–" if x is None else format(x, spec)


def markdown(found: list[dict], threshold: float) -> str:
    """ladder.md: a table per section, one row per rung."""
    lines = ["# The constraint ladder: from a free soft prompt to text", "",
             "Each rung is a method on the same targets; each takes every target's best over the same restarts. "
             f"Reached: best MSE below {threshold:g} × the target's mean square. Ratio: the median over targets of "
             "the rung's best MSE over the soft prompt's (paired). Recovered: the share of targets whose own text "
             "the rung's best found exactly (targets made by real text only). The paired verdicts are in "
             "findings.md.", ""]
    for s in found:
        lines += [f"## {s['label']} ({s['n_targets']} targets, best of {s['restarts']} restart(s))", "",
                  "| rung | text | median best MSE | median relative MSE | median cosine | reached | ratio to soft | "
                  "recovered |", "|---|:-:|---:|---:|---:|---:|---:|---:|"]
        for row in s["rungs"]:
            m = row["summary"]
            lines.append(f"| {row['label']} | {'yes' if row['text'] else 'no'} | {_g(m['median_best_mse'])} | "
                         f"{_g(m['median_relative_best_mse'])} | {_g(m['median_cosine'], '.4f')} | "
                         f"{m['reached_share']:.0%} | {_g(m.get('median_ratio_to_soft'))} | "
                         f"{format(m['exact_share'], '.0%') if 'exact_share' in m else '–'} |")
        lines.append("")
    return "\n".join(lines)
