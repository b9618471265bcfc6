"""Hard prompts against soft ones: each target's best token sequence (PEZ runs), what it
reaches beside Exp 1's soft prompt and that prompt's nearest-token projection, and whether it
recovered the target's own tokens. (The optimisation itself is the engine with `methods.Pez`.)

Like for like: every side takes each target's best over the same number of restarts, the
first min(R_hard, R_soft). The hard prompts start from their own random tokens, so only the
counts are equal, not the starts. A target whose hard runs all diverged is shown and counted,
not dropped.
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


def compare(hard: dict, soft: dict, projected: dict | None, original: np.ndarray,
            decode: Callable[[list[int]], str]) -> tuple[list[dict], dict]:
    """Per target: the soft prompt, its nearest tokens and the hard prompt, each its best over
    the first r restarts; the decoded text and the recovery of the target's own tokens.
    `hard`, `soft`: an experiment's runs.h5 arrays ([condition, target, restart, ...]);
    `original`: each target's own token ids [T, S]."""
    hard_final, hard_cos, tokens = hard["final_mse"][0], hard["cosine"][0], hard["tokens"][0]
    n = len(hard_final)
    soft_final, soft_cos = soft["final_mse"][0][:n], soft["cosine"][0][:n]
    r = min(hard_final.shape[1], soft_final.shape[1])
    hard_index, hard_mse, hard_c = best_over(hard_final, hard_cos, r)
    _, soft_mse, soft_c = best_over(soft_final, soft_cos, r)
    found = tokens[np.arange(n), hard_index]
    recovered = recovery(found, original[:n])
    rows = []
    for t in range(n):
        ok = np.isfinite(hard_mse[t])
        proj_mse, proj_cos = projected_best(projected, t, r)
        rows.append({
            "target_id": t, "restarts": r, "soft_mse": _value(soft_mse[t]), "soft_cosine": _value(soft_c[t]),
            "projected_mse": proj_mse, "projected_cosine": proj_cos, "hard_mse": _value(hard_mse[t]),
            "hard_cosine": _value(hard_c[t]), "hard_diverged": not ok, "hard_tokens": found[t] if ok else None,
            "hard_text": decode(found[t].tolist()) if ok else "(every run diverged)",
            "target_text": decode(original[t].tolist()), "exact": bool(ok and recovered["exact"][t]),
            "position_match": float(recovered["position_match"][t]) if ok else 0.0,
            "token_overlap": float(recovered["token_overlap"][t]) if ok else 0.0,
        })
    return rows, summarise(rows, r)


def _value(x) -> float | None:
    return float(x) if np.isfinite(x) else None


def _median(rows: list[dict], key: str) -> float | None:
    """The median over targets (a missing value, a diverged target: the worst), None if that is +inf."""
    values = [r[key] for r in rows if not (key.startswith("projected") and r[key] is None)]
    if not values:
        return None
    worst = np.inf if key.endswith("mse") else -np.inf  # an MSE's worst is +inf, a cosine's -inf
    median = float(np.median(scored([worst if v is None else v for v in values])))
    return median if np.isfinite(median) else None


def summarise(rows: list[dict], r: int) -> dict:
    return {"n_targets": len(rows), "restarts": r, "n_hard_diverged": sum(row["hard_diverged"] for row in rows),
            "soft_median_mse": _median(rows, "soft_mse"), "projected_median_mse": _median(rows, "projected_mse"),
            "hard_median_mse": _median(rows, "hard_mse"), "hard_median_cosine": _median(rows, "hard_cosine"),
            "exact_match_rate": float(np.mean([row["exact"] for row in rows])),
            "position_match_mean": float(np.mean([row["position_match"] for row in rows])),
            "token_overlap_mean": float(np.mean([row["token_overlap"] for row in rows]))}


def markdown_table(rows: list[dict], summary: dict) -> str:
    """The per-target comparison as Markdown, the summary first."""
    def g(x):
        return "–" if x is None else f"{x:.3g}"

    def c(x):
        return "–" if x is None else f"{x:.4f}"

    lines = [
        "# Hard prompts (PEZ) against soft prompts",
        "",
        f"{summary['n_targets']} of Exp 1's targets, each side's best over {summary.get('restarts', '?')} restart(s) "
        f"(the same count on every side; the hard prompts start from their own random tokens). "
        f"Median best MSE: soft prompt {g(summary['soft_median_mse'])}, "
        f"its nearest-token projection {g(summary['projected_median_mse'])}, hard prompt "
        f"{g(summary['hard_median_mse'])}. The target's own tokens: exact match in {summary['exact_match_rate']:.0%} "
        f"of targets, {summary['position_match_mean']:.0%} of positions, token overlap "
        f"{summary['token_overlap_mean']:.0%} (mean)."
        + (f" {summary['n_hard_diverged']} target(s) whose hard runs all diverged count as the worst."
           if summary.get("n_hard_diverged") else ""),
        "",
        "MSE (cosine, mean over positions) of each target's best run: the soft prompt, its nearest tokens, "
        "the hard prompt.",
        "",
        "| target | soft | projected | hard | positions recovered | overlap | hard prompt (decoded) |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        text = r["hard_text"].replace("|", "\\|").replace("\n", "⏎")
        lines.append(f"| {r['target_id']} | {g(r['soft_mse'])} ({c(r['soft_cosine'])}) | {g(r['projected_mse'])} "
                     f"({c(r['projected_cosine'])}) | {g(r['hard_mse'])} ({c(r['hard_cosine'])}) | "
                     f"{r['position_match']:.2f} | {r['token_overlap']:.2f} | `{text}` |")
    return "\n".join(lines) + "\n"
