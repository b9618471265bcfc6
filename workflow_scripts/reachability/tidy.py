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

COLUMNS = ("site", "experiment", "condition", "label", "target_id", "best_mse", "relative_mse", "mean_cosine",
           "reached", "diverged_runs", "best_restart", "whitened", "outside", "nearest")


def rows_of(site: str, experiment: str, conditions: list[str], runs: dict, targets: dict, pool: np.ndarray,
            metrics: dict) -> list[dict]:
    """An experiment's rows: each condition's per-target results (from its runs' arrays, as
    aggregation summarises them) beside each target's distances from the pool's residuals
    (every target of the experiment measured in one pass over the pool)."""
    record = experiments.get(experiment)
    summaries = [summarise_condition(runs, c, metrics)["per_target"] for c in range(len(conditions))]
    keys = [(c, t) for c, s in enumerate(summaries) for t in range(len(s["best_final_mse"]))]
    points = np.stack([targets[conditions[c], t] for c, t in keys])
    far = {**whitened(pool, points), **nearest(pool, points, [record.sources(t) for _, t in keys])}
    out = []
    for i, (c, t) in enumerate(keys):
        s, best = summaries[c], summaries[c]["best_final_mse"][t]
        measured = bool(np.isfinite(best))
        out.append({"site": site, "experiment": experiment, "condition": conditions[c],
                    "label": record.label_of(conditions[c]), "target_id": t,
                    "best_mse": float(best) if measured else None,
                    "relative_mse": float(s["relative_best_final_mse"][t]) if measured else None,
                    "mean_cosine": float(np.nanmean(s["cosine_by_position"][t])) if measured else None,
                    "reached": bool(s["reached"][t]), "diverged_runs": int(runs["diverged"][c][t].sum()),
                    "best_restart": int(s["best_restart"][t]), "whitened": float(far["whitened"][i]),
                    "outside": float(far["outside"][i]), "nearest": float(far["nearest"][i])})
    return out


def to_csv(rows: list[dict]) -> str:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if r[k] is None else r[k] for k in COLUMNS} for r in rows)
    return text.getvalue()


def from_csv(text: str) -> list[dict]:
    """targets.csv's rows, typed back (an empty cell: None)."""
    numbers = {"best_mse", "relative_mse", "mean_cosine", "whitened", "outside", "nearest"}
    counts = {"target_id", "diverged_runs", "best_restart"}

    def typed(key, value):
        if value == "":
            return None
        return float(value) if key in numbers else int(value) if key in counts else value == "True" \
            if key == "reached" else value

    return [{k: typed(k, v) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]
