"""Run packs -> one experiment's [condition, target, restart] arrays -> its metrics.json.

A missing run is an error (never a silently smaller sample); a diverged run stays in the
arrays with NaN final MSE and is counted. Besides raw MSE, each target's *relative* MSE —
best MSE over the target's mean square — puts targets of different scale on one footing
(an Exp 3 mixture at α = 2 has three times its endpoints' power; a checkpoint's final norm
has its own gain).
"""

from __future__ import annotations

import numpy as np

from . import metrics
from .findings import cosine_spread
from .records import expected, load
from .storage import read_h5

PER_RUN = ("loss", "initial_mse", "final_mse", "cosine", "diverged", "target_mean_square")
RUN_ARRAYS = (*PER_RUN, "target_id", "condition", "restart")


OPTIONAL = {"tokens": -1, "text_mse": np.nan, "text_cosine": np.nan}  # a method's own arrays, and their fill


def collect_runs(paths: list[str], conditions: list[str], n_targets: int, restarts: int, expect) -> dict:
    """Read run packs into arrays indexed [condition, target, restart(, ...)]; `expect(path)`
    gives each pack's expected record (records.expected), or `expect` is one record for all.

    Runs beyond the first `n_targets` targets or `restarts` restarts, or of other conditions,
    are left out, so a smaller analysis (the layer sweep) can read a larger study's packs.
    Text methods' packs also give their `tokens` ([..., S] ids), a token mixture's the MSE and
    cosine of the text it reads as (`text_mse`, `text_cosine`); runs without them hold the fill."""
    shape = (len(conditions), n_targets, restarts)
    out: dict[str, np.ndarray] = {}
    seen = np.zeros(shape, dtype=bool)
    for path in paths:
        arrays, attrs = read_h5(path, list(RUN_ARRAYS), expect=expect(path) if callable(expect) else expect,
                                optional=tuple(OPTIONAL))
        names = attrs["conditions"]
        per_run = [k for k in (*PER_RUN, *OPTIONAL) if k in arrays]
        for k in per_run:  # each array as wide as its widest pack (a method of fewer steps: its loss padded)
            fill = OPTIONAL.get(k, False if k == "diverged" else np.nan)
            wide = shape + tuple(max(a, b) for a, b in zip(out[k].shape[3:], arrays[k].shape[1:])) if k in out else \
                shape + arrays[k].shape[1:]
            if k not in out or out[k].shape != wide:
                dtype = np.int64 if k == "tokens" else bool if k == "diverged" else np.float32
                grown = np.full(wide, fill, dtype)
                if k in out:
                    grown[tuple(slice(0, n) for n in out[k].shape)] = out[k]
                out[k] = grown
        for i, (c, t, r) in enumerate(zip(arrays["condition"], arrays["target_id"], arrays["restart"])):
            if names[c] not in conditions or t >= n_targets or r >= restarts:
                continue
            where = (conditions.index(names[c]), t, r)
            for k in per_run:
                out[k][where + tuple(slice(0, n) for n in arrays[k].shape[1:])] = arrays[k][i]
            seen[where] = True
    if not seen.all():
        c, t, r = np.argwhere(~seen)[0]
        raise ValueError(f"{(~seen).sum()} runs missing, e.g. condition {conditions[c]} target {t} restart {r}")
    out["final_mse"][out["diverged"]] = np.nan
    return out


def experiment_runs(config: dict, path: str, steps: int, keys: list[str]) -> tuple[dict, dict]:
    """An experiment's runs.h5 arrays and attributes, its record checked at the step budget."""
    return read_h5(path, keys, expect=expected(config, path, steps))


def summarise_condition(runs: dict, c: int, settings: dict) -> dict:
    """metrics.json entry of one condition: per target, then over targets. `settings` is the
    config's `metrics` section."""
    threshold = settings["reached_threshold"]
    final = runs["final_mse"][c]
    best = metrics.best_restart(final)
    best_final = metrics.best_of_restarts(final)
    best_initial = metrics.take_best(runs["initial_mse"][c], best)
    best_cos = metrics.take_best(runs["cosine"][c], best)
    best_cos[~np.isfinite(best_final)] = np.nan
    scale = runs["target_mean_square"][c][:, 0]  # the same for every restart of a target
    reached = metrics.reached(best_final, scale, threshold)
    loss = runs["loss"][c].reshape(-1, runs["loss"].shape[-1])  # every run, [targets x restarts, steps]
    ran = np.flatnonzero(np.isfinite(loss).any(axis=0))  # a method of fewer steps (GCG) is padded with NaN
    loss = loss[:, : ran[-1] + 1] if ran.size else loss
    reached_runs = metrics.reached(final.reshape(-1), np.repeat(scale, final.shape[1]), threshold)
    plateau = metrics.plateau_check(loss, reached_runs, settings["plateau_tail"], settings["plateau_tolerance"],
                                    settings["plateau_fraction"])
    spread = cosine_spread(np.nanmean(runs["cosine"][c], axis=-1)[None], final[None])  # the research log's
    return {
        "n_targets": int(final.shape[0]),
        "n_restarts": int(final.shape[1]),
        "n_diverged": int(runs["diverged"][c].sum()),
        "median_best_final_mse": float(np.nanmedian(best_final)) if np.isfinite(best_final).any() else None,
        "median_cosine": float(np.nanmedian(np.nanmean(best_cos, axis=1))) if np.isfinite(best_final).any() else None,
        "reached_fraction": float(reached.mean()),
        "reached_threshold": threshold,
        "plateau": plateau,
        "cosine_by_position": {"mean": np.nanmean(best_cos, axis=0), "std": np.nanstd(best_cos, axis=0)},
        "cosine_spread": {"across_targets": float(spread["across_targets"][0]),  # sd of the best restarts' cosine
                          "within_targets": float(spread["within_targets"][0])},  # median sd over restarts
        "per_target": {
            "best_final_mse": best_final,
            "relative_best_final_mse": best_final / scale,
            "target_mean_square": scale,
            "best_restart": best,
            "initial_mse": best_initial,
            "reached": reached,
            "restart_sd_log10": metrics.restart_spread(final),
            "final_mse": final,
            "cosine_by_position": best_cos,
        },
    }


def batch_modes(packs: list[dict]) -> list[dict]:
    """How the batches of packs (their attributes) ran: batches and runs per (mode, reason), a
    continued pack's first part included."""
    counts: dict[tuple[str, str], list[int]] = {}
    for attrs in packs:
        for batch in [*attrs.get("base_batches", []), *attrs.get("batches", [])]:
            count = counts.setdefault((batch["mode"], batch["reason"]), [0, 0])
            count[0] += 1
            count[1] += batch["runs"]
    return [{"mode": mode, "reason": reason, "batches": n, "runs": runs}
            for (mode, reason), (n, runs) in sorted(counts.items())]


def divergence_warnings(conditions: dict[str, dict]) -> list[str]:
    """A condition whose runs all diverged has no result at all: say so loudly."""
    return [f"condition {name}: every one of its {s['n_targets'] * s['n_restarts']} runs diverged (NaN/Inf loss), so it "
            f"has no result; lower optimizer.lr or check its targets" for name, s in conditions.items()
            if s["n_diverged"] == s["n_targets"] * s["n_restarts"]]


def capture_warnings(modes: list[dict]) -> list[str]:
    """A capture that failed is worth a reader's attention (the step ran, but eagerly and slower)."""
    return [f"{m['runs']} runs in {m['batches']} batches ran eagerly: {m['reason']}" for m in modes
            if m["reason"].startswith("capture failed")]


def best_runs(summary: dict) -> tuple[np.ndarray, np.ndarray]:
    """(mean cosine over positions, best final MSE) of each target's best restart, from one
    condition's metrics.json entry."""
    cosine = np.nanmean(np.array(summary["per_target"]["cosine_by_position"], dtype=float), axis=1)
    return cosine, np.array(summary["per_target"]["best_final_mse"], dtype=float)


def read_solutions(paths: list[str], config: dict, steps: int) -> dict[str, dict]:
    """Every condition's solution analysis (solutions.json files, each checked against its
    record), labelled 'experiment condition'."""
    rows = {}
    for path in paths:
        solutions = load(config, path, steps)
        rows.update({f"{solutions['experiment']} {c}": s for c, s in solutions["conditions"].items()})
    return rows


def read_metrics(paths: list[str], config: dict, steps: int) -> list[dict]:
    """metrics.json files, in order, each checked against its record at the step budget."""
    return [load(config, path, steps) for path in paths]


def label_conditions(loaded: list[dict]) -> dict[str, dict]:
    """Every condition's entry of loaded metrics.json files, in order, labelled as the summary
    shows it ('Exp 1 real', 'Exp 3 α=0.5', 'Exp 4 f=0.3')."""
    from .experiments import get

    return {get(one["experiment"]).label_of(condition): summary
            for one in loaded for condition, summary in one["conditions"].items()}
