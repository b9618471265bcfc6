"""One tidy table of every target at a site (`targets.csv`): the table a pandas or R user loads
first, and the one the boundary analysis reads. One row per (experiment, condition, target),
columns in `COLUMNS` (documented in docs/outputs.md)."""

from __future__ import annotations

import csv
import io

import numpy as np

from . import experiments
from .boundary import nearest, whitened
from .results import summarise_condition

COLUMNS = ("site", "experiment", "condition", "label", "target_id", "sources", "best_mse", "relative_mse",
           "final_over_initial", "target_mean_square", "mean_cosine", "reached", "diverged_runs", "best_restart",
           "whitened", "outside", "nearest")
NUMBERS = ("best_mse", "relative_mse", "final_over_initial", "target_mean_square", "mean_cosine", "whitened",
           "outside", "nearest")
COUNTS = ("target_id", "diverged_runs", "best_restart")


def rows_of(site: str, experiment: str, conditions: list[str], runs: dict, targets: dict,
            metrics: dict) -> tuple[list[dict], np.ndarray]:
    """An experiment's rows — each condition's per-target results, from its runs' arrays as
    aggregation summarises them, and the pool sequences each target is made of — and their
    targets [M, S, d], for `measure`."""
    record = experiments.get(experiment)
    summaries = [summarise_condition(runs, c, metrics)["per_target"] for c in range(len(conditions))]
    keys = [(c, t) for c, s in enumerate(summaries) for t in range(len(s["best_final_mse"]))]
    out = []
    for c, t in keys:
        s, best = summaries[c], summaries[c]["best_final_mse"][t]
        measured = bool(np.isfinite(best))
        out.append({"site": site, "experiment": experiment, "condition": conditions[c],
                    "label": record.label_of(conditions[c]), "target_id": t, "sources": record.sources(t),
                    "best_mse": float(best) if measured else None,
                    "relative_mse": float(s["relative_best_final_mse"][t]) if measured else None,
                    "final_over_initial": float(best / s["initial_mse"][t]) if measured else None,
                    "target_mean_square": float(s["target_mean_square"][t]),
                    "mean_cosine": float(np.nanmean(s["cosine_by_position"][t])) if measured else None,
                    "reached": bool(s["reached"][t]), "diverged_runs": int(runs["diverged"][c][t].sum()),
                    "best_restart": int(s["best_restart"][t])})
    return out, np.stack([targets[conditions[c], t] for c, t in keys])


def measure(rows: list[dict], points: np.ndarray, pool: np.ndarray) -> list[dict]:
    """The rows of every experiment at a site beside each target's distances from the pool's
    residuals there: all in one pass, so that every target made of a pool sequence is measured
    against the same covariance that sequence was held out of (boundary.whitened)."""
    sources = [r["sources"] for r in rows]
    far = {**whitened(pool, points, sources), **nearest(pool, points, sources)}
    return [{**r, "whitened": float(far["whitened"][i]), "outside": float(far["outside"][i]),
             "nearest": float(far["nearest"][i])} for i, r in enumerate(rows)]


def to_csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ";".join(map(str, r[k])) if k == "sources" else "" if r[k] is None else r[k] for k in COLUMNS}
                     for r in rows)
    return text.getvalue()


def from_csv(text: str) -> list[dict]:
    """targets.csv's rows, typed back (an empty cell: None; `sources`: a list, empty for none)."""
    def typed(key, value):
        if key == "sources":
            return [int(s) for s in value.split(";")] if value else []
        if value == "":
            return None
        return float(value) if key in NUMBERS else int(value) if key in COUNTS else value == "True" \
            if key == "reached" else value

    return [{k: typed(k, v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
