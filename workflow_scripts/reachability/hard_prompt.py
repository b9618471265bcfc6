"""Hard prompts against soft ones: each target's best token sequence (PEZ runs), what it
reaches beside Exp 1's soft prompt and that prompt's nearest-token projection, and whether it
recovered the target's own tokens. (The optimisation itself is optimize.optimize_batch with a
vocabulary.)"""

from __future__ import annotations

import numpy as np


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


def markdown_table(rows: list[dict], summary: dict) -> str:
    """The per-target comparison as Markdown, the summary first."""
    def g(x):
        return "–" if x is None else f"{x:.3g}"

    def c(x):
        return "–" if x is None else f"{x:.4f}"

    lines = [
        "# Hard prompts (PEZ) against soft prompts",
        "",
        f"{summary['n_targets']} of Exp 1's targets. Median best MSE: soft prompt {g(summary['soft_median_mse'])}, "
        f"its nearest-token projection {g(summary['projected_median_mse'])}, hard prompt "
        f"{g(summary['hard_median_mse'])}. The target's own tokens: exact match in {summary['exact_match_rate']:.0%} "
        f"of targets, {summary['position_match_mean']:.0%} of positions, token overlap "
        f"{summary['token_overlap_mean']:.0%} (mean).",
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
