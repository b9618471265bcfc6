"""Hard prompts against soft ones: each target's best token sequence by each method (PEZ, GCG),
what it reaches beside Exp 1's soft prompt and that prompt's nearest-token projection, and
whether it recovered the target's own tokens. (The optimisation itself is the engine with
`methods.Pez` and `methods.Gcg`.)

Like for like: every side takes each target's best over the same number of restarts, the
first min(R_hard, R_soft). The methods start from the same random tokens (per target and
restart); the soft prompt from N(0, 1), so against it only the counts are equal, not the
starts. A target whose runs all diverged is shown and counted, not dropped. An MSE of exactly
0 (the target's own tokens recovered) is a value like any other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .findings import scored
from .metrics import best_over


def recovery(found: np.ndarray, original: np.ndarray) -> dict[str, np.ndarray]:
    """Per target ([n, S] token ids each): whether the whole sequence was recovered, the share
    of positions with the original token, and the share of the original's distinct tokens
    that occur anywhere in the found sequence."""
    found, original = np.asarray(found), np.asarray(original)
    overlap = [len(set(f.tolist()) & set(o.tolist())) / len(set(o.tolist())) for f, o in zip(found, original)]
    return {
        "exact": (found == original).all(axis=1),
        "position_match": (found == original).mean(axis=1),
        "token_overlap": np.array(overlap, dtype=float),
    }


def projected_best(projected: dict | None, target: int, r: int) -> tuple[float | None, float | None]:
    """The best (MSE, cosine) of a soft prompt's nearest-token projections of one target, over
    its first r restarts (per-run arrays from the solution analysis)."""
    if not projected:
        return None, None
    ids, restarts = np.asarray(projected["target_id"]), np.asarray(projected["restart"])
    mse = np.array(projected["mse"], dtype=float)
    chosen = np.flatnonzero((ids == target) & (restarts < r) & np.isfinite(mse))
    if not chosen.size:
        return None, None
    best = chosen[np.argmin(mse[chosen])]
    return float(mse[best]), float(projected["cosine"][best])


def _value(x) -> float | None:
    return float(x) if np.isfinite(x) else None


def method_rows(hard: dict, c: int, r: int, original: np.ndarray, decode: Callable[[list[int]], str]) -> list[dict]:
    """One method's (condition c of the runs) best of the first r restarts, per target: of its
    text (a token mixture's result is not text: the tokens it reads as are, `text_mse`)."""
    final, cosine, tokens = hard["final_mse"][c], hard["cosine"][c], hard["tokens"][c]
    if "text_mse" in hard and np.isfinite(hard["text_mse"][c]).any():
        final, cosine = np.where(np.isfinite(final), hard["text_mse"][c], np.nan), hard["text_cosine"][c]
    scale = hard["target_mean_square"][c][:, 0]
    index, mse, cos = best_over(final, cosine, r)
    found = tokens[np.arange(len(final)), index]
    recovered = recovery(found, original[: len(final)])
    out = []
    for t in range(len(final)):
        ok = bool(np.isfinite(mse[t]))
        out.append({"mse": _value(mse[t]), "cosine": _value(cos[t]), "relative_mse": _value(mse[t] / scale[t]),
                    "diverged": not ok, "tokens": found[t] if ok else None,
                    "text": decode(found[t].tolist()) if ok else "(every run diverged)",
                    "exact": bool(ok and recovered["exact"][t]),
                    "position_match": float(recovered["position_match"][t]) if ok else 0.0,
                    "token_overlap": float(recovered["token_overlap"][t]) if ok else 0.0})
    return out


def compare(hard: dict, methods: list[str], soft: dict, projected: dict | None, original: np.ndarray,
            decode: Callable[[list[int]], str]) -> tuple[list[dict], dict]:
    """Per target: the soft prompt, its nearest tokens and each method's hard prompt, each its
    best over the first r restarts; decoded texts and recovery of the target's own tokens.
    `hard`, `soft`: runs.h5 arrays ([condition, target, restart, ...]), hard's conditions being
    `methods`; `original`: each target's own token ids [T, S]."""
    n = hard["final_mse"].shape[1]
    r = min(hard["final_mse"].shape[2], soft["final_mse"].shape[2])
    _, soft_mse, soft_cos = best_over(soft["final_mse"][0][:n], soft["cosine"][0][:n], r)
    by_method = {m: method_rows(hard, c, r, original, decode) for c, m in enumerate(methods)}
    rows = []
    for t in range(n):
        projected_mse, projected_cos = projected_best(projected, t, r)
        rows.append({"target_id": t, "restarts": r, "soft_mse": _value(soft_mse[t]), "soft_cosine": _value(soft_cos[t]),
                     "projected_mse": projected_mse, "projected_cosine": projected_cos,
                     "target_text": decode(original[t].tolist()), "methods": {m: v[t] for m, v in by_method.items()}})
    return rows, summarise(rows, methods, r)


def _median(values: list, worst: float = np.inf) -> float | None:
    """The median over targets (a missing value, a diverged target: the worst), None if that is it."""
    if not values:
        return None
    median = float(np.median(scored([worst if v is None else v for v in values])))
    return median if np.isfinite(median) else None


def summarise(rows: list[dict], methods: list[str], r: int) -> dict:
    projected = [row["projected_mse"] for row in rows if row["projected_mse"] is not None]
    summary = {"n_targets": len(rows), "restarts": r, "soft_median_mse": _median([row["soft_mse"] for row in rows]),
               "projected_median_mse": _median(projected), "methods": {}}
    for m in methods:
        one = [row["methods"][m] for row in rows]
        summary["methods"][m] = {
            "median_mse": _median([x["mse"] for x in one]), "median_relative_mse": _median([x["relative_mse"] for x in one]),
            "median_cosine": _median([x["cosine"] for x in one], -np.inf), "n_diverged": sum(x["diverged"] for x in one),
            "exact_match_rate": float(np.mean([x["exact"] for x in one])),
            "position_match_mean": float(np.mean([x["position_match"] for x in one])),
            "token_overlap_mean": float(np.mean([x["token_overlap"] for x in one]))}
    return summary


def _g(x) -> str:
    return "–" if x is None else f"{x:.3g}"


def _c(x) -> str:
    return "–" if x is None else f"{x:.4f}"


def markdown_table(rows: list[dict], summary: dict) -> str:
    """The per-target comparison as Markdown, the summary first."""
    methods = list(summary["methods"])
    lines = [f"# Hard prompts ({', '.join(m.upper() for m in methods)}) against soft prompts", "",
             f"{summary['n_targets']} of Exp 1's targets, each side's best over {summary['restarts']} restart(s) (the "
             f"same count on every side; PEZ and GCG start from the same random tokens, a token mixture from small "
             f"logits, the inversion from nothing, the soft prompt from N(0, 1); a mixture's row is the text it reads "
             f"as). Median best MSE: soft prompt {_g(summary['soft_median_mse'])}, its nearest-token projection "
             f"{_g(summary['projected_median_mse'])}.", ""]
    for m, s in summary["methods"].items():
        lines.append(f"- {m.upper()}: median best MSE {_g(s['median_mse'])} (relative {_g(s['median_relative_mse'])}); "
                     f"the target's own tokens: exact match in {s['exact_match_rate']:.0%} of targets, "
                     f"{s['position_match_mean']:.0%} of positions, token overlap {s['token_overlap_mean']:.0%} (mean)"
                     + (f"; {s['n_diverged']} target(s) whose runs all diverged count as the worst" if s["n_diverged"]
                        else ""))
    lines += ["", "MSE (cosine, mean over positions) of each target's best run; positions recovered; decoded text.", "",
              "| target | soft | projected | " + " | ".join(f"{m.upper()} | recovered | {m.upper()} (decoded)" for m in methods)
              + " |", "|---:|---:|---:|" + "---:|---:|---|" * len(methods)]
    for r in rows:
        cells = [f"{_g(r['soft_mse'])} ({_c(r['soft_cosine'])})", f"{_g(r['projected_mse'])} ({_c(r['projected_cosine'])})"]
        for m in methods:
            x = r["methods"][m]
            text = x["text"].replace("|", "\\|").replace("\n", "⏎")
            cells += [f"{_g(x['mse'])} ({_c(x['cosine'])})", f"{x['position_match']:.2f}", f"`{text}`"]
        lines.append(f"| {r['target_id']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
