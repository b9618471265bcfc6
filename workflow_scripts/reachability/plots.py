"""The agenda's figures. Each function draws from arrays and writes one PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .storage import atomic  # noqa: E402


def _save(fig, path: str, dpi: int) -> None:
    fig.tight_layout()
    with atomic(path) as tmp:  # a killed job leaves no half-drawn figure at the final path
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def _colors(n: int):
    return plt.get_cmap("viridis" if n > 10 else "tab10")(np.linspace(0, 1, n) if n > 10 else np.arange(n))


def loss_curves(path: str, loss: np.ndarray, conditions: list[str], title: str, dpi: int = 120,
                max_curves: int = 2000) -> None:
    """Every run's loss curve (light), and per condition the median curve (bold).
    `loss` is [C, T, R, steps]."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    steps = np.arange(1, loss.shape[-1] + 1)
    per_condition = max(1, max_curves // len(conditions))
    for c, (name, color) in enumerate(zip(conditions, _colors(len(conditions)))):
        curves = loss[c].reshape(-1, loss.shape[-1])
        ax.plot(steps, curves[:per_condition].T, color=color, alpha=0.12, lw=0.6)
        ax.plot(steps, np.nanmedian(curves, axis=0), color=color, lw=2.4, label=f"{name} (median)")
    ax.set(xlabel="Adam step", ylabel="loss (optimizer.loss: the MSE to the target by default)", yscale="log",
           title=title)
    ax.legend(fontsize=7, ncol=2 if len(conditions) > 4 else 1)
    _save(fig, path, dpi)


def final_mse_histogram(path: str, best: np.ndarray, conditions: list[str], title: str, dpi: int = 120) -> None:
    """Histogram of each target's best-of-restarts final MSE ([C, T]), log-spaced bins."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    finite = best[np.isfinite(best) & (best > 0)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (1e-6, 1.0)
    bins = np.geomspace(lo / 1.5, hi * 1.5, 30)
    for c, (name, color) in enumerate(zip(conditions, _colors(len(conditions)))):
        ax.hist(best[c][np.isfinite(best[c])], bins=bins, histtype="step", lw=1.6, color=color, label=name)
    ax.set(xscale="log", xlabel="best-of-restarts final MSE", ylabel="targets", title=title)
    ax.legend(fontsize=7, ncol=2 if len(conditions) > 4 else 1)
    _save(fig, path, dpi)


def cosine_by_position(path: str, cosine: np.ndarray, conditions: list[str], title: str, dpi: int = 120) -> None:
    """Mean per-position cosine of each target's best run ([C, T, S]) with ±1 std bars."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    positions = np.arange(cosine.shape[-1])
    width = 0.6 / max(1, len(conditions))
    for c, (name, color) in enumerate(zip(conditions, _colors(len(conditions)))):
        x = positions + (c - (len(conditions) - 1) / 2) * width
        ax.errorbar(x, np.nanmean(cosine[c], 0), yerr=np.nanstd(cosine[c], 0), fmt="o-", ms=3, lw=1,
                    capsize=2, color=color, label=name)
    ax.set(xlabel="position", ylabel="cosine(achieved, target)", title=title, xticks=positions)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.legend(fontsize=7, ncol=2 if len(conditions) > 4 else 1)
    _save(fig, path, dpi)


def summary(path: str, groups: dict[str, np.ndarray], dpi: int = 120) -> None:
    """The money plot: best final MSE of every condition on a log axis (box plots; an MSE of
    exactly 0, a recovered hard prompt, on the dotted line, so no condition drops out)."""
    labels = list(groups)
    finite = [v[np.isfinite(v)] for v in groups.values()]
    floor = _zero_floor(finite)
    data = [np.where(v == 0, floor, v) for v in finite]
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(labels)), 5))
    ax.boxplot(data, showfliers=True, flierprops={"markersize": 2})
    if any((v == 0).any() for v in finite):
        _mark_zero(ax, floor)
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=60, ha="right", fontsize=8)
    ax.set(yscale="log", ylabel="best-of-restarts final MSE", title="Reachability by condition")
    _save(fig, path, dpi)


def transition(path: str, fractions: list[float], best: np.ndarray, fit: dict | None = None, dpi: int = 120,
               label: str = "Exp 4", others: dict[str, tuple[list[float], np.ndarray]] | None = None) -> None:
    """Exp 4 (or 4p): final MSE against the fraction replaced; a light line per target ([F, T]),
    the median in bold, each target's fitted elbow as a tick (red: resolved by the measured
    fractions, grey: not), the median elbow with the elbows' interquartile range; and the median
    of each other basis that ran (`others`: {label: (fractions, best [F, T])}) dashed beside it."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = np.argsort(fractions)
    f, values = np.asarray(fractions)[order], best[order]
    ax.plot(f, values, color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(f, np.nanmedian(values, axis=1), color="black", lw=2.8, marker="o", label=f"{label}: median over targets")
    for (name, (theirs, their_best)), color in zip((others or {}).items(), ("tab:purple", "tab:green", "tab:orange")):
        at = np.argsort(theirs)
        ax.plot(np.asarray(theirs)[at], np.nanmedian(their_best[at], axis=1), color=color, lw=2, ls="--", marker="s",
                label=f"{name}: median over its targets")
    for t in (fit or {}).get("per_target", []):
        if np.isfinite(t["f0"]):
            ax.axvline(t["f0"], ymax=0.06, color="tab:red" if t["resolved"] else "0.6", lw=1.2)
    if fit and "f0_median" in fit:
        ax.axvline(fit["f0_median"], color="tab:red", ls="--", lw=1,
                   label=f"median elbow {fit['f0_median']:.2f} (median width "
                         + (f"{fit['median_width']:.3g})" if fit.get("width_upper_bound") is None
                            else f"< {fit['width_upper_bound']:.3g}: sharper than the grid resolves)"))
        ax.axvspan(*fit["f0_iqr"], color="tab:red", alpha=0.12, label="elbows, interquartile range")
    ax.set(xlabel="fraction replaced (Exp 4: dimensions; Exp 4p: principal directions)",
           ylabel="best-of-restarts final MSE", yscale="log",
           title=f"{label}: replacement (ticks: each target's fitted elbow)")
    ax.legend(fontsize=8)
    _save(fig, path, dpi)


def steering(path: str, by_method: dict[str, dict[float, dict]], kl: tuple[list, list] | None, dpi: int = 120) -> None:
    """Steering: per ε, the share of targets reached and the median relative best MSE of each
    method ({method: {ε: a condition's metrics}}); below, the next-token KL of the same ε
    applied to the residual directly ((ε, KL) of notebook 004's isotropic curve), if made."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    twin = top.twinx()
    for (method, rows), color in zip(by_method.items(), _colors(len(by_method))):
        eps = sorted(rows)
        top.plot(eps, [rows[e]["reached_fraction"] for e in eps], color=color, marker="o", label=f"{method}: reached")
        relative = [np.nanmedian(np.asarray(rows[e]["per_target"]["relative_best_final_mse"], dtype=float)) for e in eps]
        twin.plot(eps, relative, color=color, ls="--", marker="x", label=f"{method}: median best MSE / mean square")
    top.set(ylabel="share of targets reached", ylim=(-0.05, 1.05), title="Steering: can a prompt realise ε × RMS?")
    twin.set(ylabel="median relative best MSE", yscale="log")
    top.legend(loc="lower left", fontsize=8)
    twin.legend(loc="lower right", fontsize=8)
    if kl is not None:
        bottom.plot(kl[0], kl[1], color="black", marker="o", label="next-token KL, isotropic ε × RMS (notebook 004)")
        bottom.set(yscale="symlog", ylabel="KL at the perturbed token")
        bottom.legend(fontsize=8)
    else:
        bottom.text(0.5, 0.5, "perturbation curves not made (perturbation.enabled: false)", ha="center",
                    transform=bottom.transAxes)
    bottom.set(xlabel="ε (target = real + ε × RMS along the direction)")
    _save(fig, path, dpi)


def reachability_curves(path: str, alphas: list[float], best: np.ndarray, relative: np.ndarray, dpi: int = 120) -> None:
    """Exp 3: best final MSE against α, a light line per pair ([A, P]), the median in bold,
    the interpolation range [0, 1] shaded; below, the same relative to each target's mean
    square (what the findings judge: a mixture's power changes with α)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    order = np.argsort(alphas)
    a = np.asarray(alphas)[order]
    for ax, values, label in ((top, best[order], "best-of-restarts final MSE"),
                              (bottom, relative[order], "best MSE / mean square of the target")):
        ax.axvspan(0, 1, color="tab:green", alpha=0.1, label="interpolation, α ∈ [0, 1]")
        ax.plot(a, values, color="tab:blue", alpha=0.3, lw=0.8)
        ax.plot(a, np.nanmedian(values, axis=1), color="black", lw=2.8, marker="o", label="median over pairs")
        ax.set(ylabel=label, yscale="log")
    top.set_title("Experiment 3: reachability curve of each pair")
    bottom.set(xlabel="α (target = α A + (1 − α) B)")
    top.legend(fontsize=8)
    _save(fig, path, dpi)


def boxes(path: str, groups: dict[str, np.ndarray], ylabel: str, title: str, log: bool = False, dpi: int = 120) -> None:
    """One box per group (ablation variants, manifold cosines, KL per condition)."""
    labels = list(groups)
    data = [v[np.isfinite(v)] for v in groups.values()]
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(labels)), 4.5))
    ax.boxplot(data, showfliers=True, flierprops={"markersize": 2})
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=45 if len(labels) > 4 else 0, ha="right" if len(labels) > 4 else "center", fontsize=8)
    ax.set(ylabel=ylabel, title=title, yscale="log" if log else "linear")
    _save(fig, path, dpi)


def layer_sweep(path: str, sites: list[str], rows: dict[str, dict[str, tuple[float, float]]], dpi: int = 120) -> None:
    """Median cosine and median relative final MSE against the site, a line per experiment.
    `rows[experiment][site] = (median cosine, median relative MSE)`."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    x = np.arange(len(sites))
    for experiment, by_site in rows.items():
        top.plot(x, [by_site[s][0] for s in sites], marker="o", label=experiment)
        bottom.plot(x, [by_site[s][1] for s in sites], marker="o", label=experiment)
    top.set(ylabel="median cosine", title="Reachability against the site")
    bottom.set(ylabel="median final / initial MSE", yscale="log", xlabel="site")
    bottom.set_xticks(x, sites)
    top.legend()
    _save(fig, path, dpi)


def kl_curves(path: str, curves: dict[str, dict[str, list[float]]], epsilons: list[float], dpi: int = 120) -> None:
    """KL vs ε per site (the notebook's score): `curves[site][direction] = KL per ε`."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for (site, by_kind), color in zip(curves.items(), _colors(len(curves))):
        ax.plot(epsilons, by_kind["isotropic"], marker="o", color=color, label=f"{site} isotropic")
        ax.plot(epsilons, by_kind["toward_real"], marker="s", ls="--", color=color, label=f"{site} toward real")
    ax.set(xlabel="ε (× RMS of the residual at the token)", ylabel="KL(perturbed ‖ base)",
           title="Perturbation sensitivity")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path, dpi)


def placement(path: str, epsilons: list[float], curve: list[float], placed: dict[str, dict], site: str,
              dpi: int = 120) -> None:
    """The placement curve at the study's site (every position moved at once; the median KL),
    with each condition at (its median ε, its median measured KL) and, hollow, what the curve
    predicts there."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    eps, kl = np.asarray(epsilons, dtype=float), np.asarray(curve, dtype=float)
    keep = (eps > 0) & (kl > 0)
    ax.plot(eps[keep], kl[keep], color="black", marker="o", ms=3, label=f"random directions at {site} (median)")
    for (label, p), color in zip(placed.items(), _colors(len(placed))):
        iso = p["isotropic"]
        if iso["median_measured_kl"] and iso["median_measured_kl"] > 0:
            ax.scatter([iso["median_epsilon"]], [iso["median_measured_kl"]], color=color, label=label, zorder=3)
            if iso["median_predicted_kl"]:
                ax.scatter([iso["median_epsilon"]], [iso["median_predicted_kl"]], facecolors="none", edgecolors=color,
                           zorder=3)
    ax.set(xlabel="ε (× RMS) at every position", ylabel="KL(reference ‖ moved) at a position", xscale="log",
           yscale="log")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("Reachability errors on the perturbation curve (hollow: predicted)")
    _save(fig, path, dpi)


def across_models(path: str, rows: list[dict], axis: str, note: str = "", dpi: int = 120) -> None:
    """Median best final MSE, raw (top) and relative to the target's mean square (middle; log),
    and reached share (bottom) against the training step or the parameter count, a line per
    condition, with each value's interval as error bars. `rows` as comparison.model_rows gives
    them; `note` (differing step counts) is printed under the title."""
    key = "step" if axis == "step" else "n_parameters"
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True)
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    panels = ((top, "median_best_final_mse", "median_low", "median_high"),
              (middle, "median_relative_mse", "relative_low", "relative_high"),
              (bottom, "reached_fraction", "reached_low", "reached_high"))
    for condition, color in zip(conditions, _colors(len(conditions))):
        for ax, value, low, high in panels:
            line = sorted((r for r in rows if r["condition"] == condition and r[value] is not None), key=lambda r: r[key])
            y = np.array([r[value] for r in line], dtype=float)
            spread = np.array([[r[value] - (r[low] if r[low] is not None else r[value]) for r in line],
                               [(r[high] if r[high] is not None else r[value]) - r[value] for r in line]])
            ax.errorbar([r[key] for r in line], y, yerr=spread.reshape(2, -1), marker="o", capsize=3, color=color,
                        label=condition)
    top.set(yscale="log", ylabel="median best final MSE")
    top.set_title("Reachability across models" + (f"\n{note}" if note else ""), fontsize=10 if note else 12)
    middle.set(yscale="log", ylabel="median best MSE\n/ target mean square")
    bottom.set(ylabel="reached share", ylim=(-0.05, 1.05),
               xlabel="training step" if axis == "step" else "parameters")
    bottom.set_xscale("symlog" if axis == "step" else "log", **({"linthresh": 1000} if axis == "step" else {}))
    models = sorted({(r[key], r["model"]) for r in rows if r[key] is not None})  # each model named at its x
    bottom.set_xticks([x for x, _ in models], [f"{label}\n{x:,}" for x, label in models], fontsize=7)
    bottom.minorticks_off()
    bottom.margins(x=0.08)
    top.legend(fontsize=8)
    _save(fig, path, dpi)


def _zero_floor(values: list[np.ndarray]) -> float:
    """Where an MSE of exactly 0 is drawn on a log axis: a decade below the smallest positive one."""
    positive = np.concatenate([v[np.isfinite(v) & (v > 0)] for v in values] or [np.array([])])
    return positive.min() / 10 if positive.size else 1e-12


def _mark_zero(ax, floor: float) -> None:
    ax.axhline(floor, color="0.6", linestyle=":", linewidth=1)
    ax.annotate("MSE exactly 0", (0, floor), xycoords=("axes fraction", "data"), xytext=(4, 4),
                textcoords="offset points", fontsize=7, color="0.4")


def hard_vs_soft(path: str, rows: list[dict], dpi: int = 120) -> None:
    """Per target, the best MSE of the soft prompt, of its nearest-token projection and of each
    method's hard prompt (log scale; an MSE of exactly 0 on the dotted line), targets ordered
    by the soft prompt's MSE."""
    rows = sorted(rows, key=lambda r: (r["soft_mse"] is None, r["soft_mse"] or 0))
    x = np.arange(len(rows))
    methods = list(rows[0]["methods"]) if rows else []
    series = {"soft prompt (Exp 1)": ([r["soft_mse"] for r in rows], "o"),
              "its nearest tokens": ([r["projected_mse"] for r in rows], "s"),
              **{f"hard prompt ({m.upper()})": ([r["methods"][m]["mse"] for r in rows], marker)
                 for m, marker in zip(methods, "^vD<>")}}
    values = {k: np.array([np.nan if v is None else v for v in vs], dtype=float) for k, (vs, _) in series.items()}
    floor = _zero_floor(list(values.values()))
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(rows) + 3), 4.5))
    for label, (_, marker) in series.items():
        y = values[label]
        if np.isfinite(y).any():
            ax.plot(x, np.where(y == 0, floor, y), marker, label=label, alpha=0.8)
    if any((v == 0).any() for v in values.values()):
        _mark_zero(ax, floor)
    ax.set(yscale="log", xlabel="target (ordered by the soft prompt's MSE)", ylabel="best final MSE",
           title="What text reaches, against a soft prompt")
    ax.set_xticks(x, [str(r["target_id"]) for r in rows], fontsize=7)
    ax.legend(fontsize=8)
    _save(fig, path, dpi)


def ladder(path: str, sections: list[dict], threshold: float, dpi: int = 120) -> None:
    """The constraint ladder: per set of targets (a panel), each rung's relative best MSE target
    by target (dots; the median a bar; an MSE of exactly 0 on the dotted line), continuous rungs
    then text; the reached threshold dashed, each rung's share reached (and recovered) above."""
    fig, axes = plt.subplots(len(sections), 1, figsize=(8, 3.6 * len(sections)), squeeze=False)
    for ax, section in zip(axes[:, 0], sections):
        rungs = section["rungs"]
        values = [np.asarray(r["per_target"]["relative_best_mse"], dtype=float) for r in rungs]
        floor = _zero_floor(values)
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, max((len(v) for v in values), default=0))
        for i, (rung, v) in enumerate(zip(rungs, values)):
            color = "tab:orange" if rung["text"] else "tab:blue"
            shown = np.where(v == 0, floor, v)
            ax.plot(i + jitter[: len(v)], shown, "o", color=color, alpha=0.6, ms=4)
            if np.isfinite(v).any():
                ax.plot([i - 0.3, i + 0.3], [np.nanmedian(shown)] * 2, color="black", lw=2)
            m = rung["summary"]
            note = f"{m['reached_share']:.0%}" + (f"\n{m['exact_share']:.0%} exact" if "exact_share" in m else "")
            ax.annotate(note, (i, 1.0), xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=7)
        if any((v == 0).any() for v in values):
            _mark_zero(ax, floor)
        ax.axhline(threshold, color="tab:green", ls="--", lw=1)
        ax.set_xticks(range(len(rungs)), [r["label"] for r in rungs], fontsize=8, rotation=15)
        ax.set(yscale="log", ylabel="best MSE / mean square")
        ax.set_title(f"{section['label']}: {section['n_targets']} targets, best of {section['restarts']} restart(s) "
                     "(above: reached; blue continuous, orange text)", fontsize=9, pad=22)
    _save(fig, path, dpi)


def trajectories(path: str, label: str | None, found: dict | None, dpi: int = 120) -> None:
    """The research log's per-layer trajectories of one condition: the cosine to the target at
    every layer for the prompt (solid) and the text that made the target (dashed), for its best,
    median and worst targets, with the median over targets (black); None: no condition had
    prompt vectors to analyse (said on the figure)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    if found is None:
        ax.text(0.5, 0.5, "no analysed condition has prompt vectors", ha="center", transform=ax.transAxes)
        _save(fig, path, dpi)
        return
    layers = np.arange(len(found["prompt_median"]))
    for (name, target), color in zip(found["picked"].items(), ("tab:green", "tab:blue", "tab:red")):
        at = found["target_ids"].index(target)
        ax.plot(layers, found["prompt"][at], color=color, marker="o", ms=3, label=f"{name} target ({target}): prompt")
        if "text" in found:
            ax.plot(layers, found["text"][at], color=color, ls="--", label=f"{name} target ({target}): its text")
    ax.plot(layers, found["prompt_median"], color="black", lw=2, label="median over targets: prompt")
    if "text" in found:
        ax.plot(layers, found["text_median"], color="black", lw=2, ls="--", label="median over targets: text")
    ax.set_xticks(layers)
    ax.set(xlabel="layer L (hidden_states[L]; 0: the input)", ylabel="cos(residual at L, target), mean over positions",
           title=f"{label}: where along the depth the residual points the target's way")
    ax.legend(fontsize=7)
    _save(fig, path, dpi)


def _shades(rows: list[dict]) -> dict[str, dict[str, tuple]]:
    """A colour per (experiment, condition): one colour map per experiment, its conditions
    spread along it (light to dark in the table's order)."""
    maps = ["Blues", "Oranges", "Greens", "Purples", "Reds", "Greys", "YlOrBr", "BuGn"]
    labels: dict[str, list[str]] = {}
    for r in rows:
        names = labels.setdefault(r["experiment"], [])
        if r["label"] not in names:
            names.append(r["label"])
    return {experiment: {name: plt.get_cmap(maps[e % len(maps)])(0.75 if len(names) == 1 else
                                                                  0.35 + 0.6 * i / (len(names) - 1))
                         for i, name in enumerate(names)}
            for e, (experiment, names) in enumerate(labels.items())}


def _key(shades: dict[str, dict[str, tuple]]) -> list:
    """Legend entries: one per experiment (its conditions' range, light to dark), then the
    marker convention."""
    from matplotlib.lines import Line2D

    def entry(color, label, filled=True):
        return Line2D([], [], ls="", marker="o", markersize=6, markerfacecolor=color if filled else "none",
                      markeredgecolor=color if not filled else "0.3", label=label)

    out = []
    for names in shades.values():
        colors, first, last = list(names.values()), *[list(names)[i] for i in (0, -1)]
        label = first if len(names) == 1 else f"{first} … {last.split(' ', 2)[-1]} (light → dark)"
        out.append(entry(colors[len(colors) // 2], label))
    return out + [entry("0.5", "reached"), entry("0.5", "not reached", filled=False)]


def boundary(path: str, rows: list[dict], results: dict[str, dict], dpi: int = 120) -> None:
    """Per site (a row of panels) and distance (a column): every target's relative best MSE
    against its distance from the pool's residuals, coloured by experiment and condition,
    filled when reached; the fitted boundary (dashed) and its bootstrap interval (shaded).
    Rows: targets.csv's; results: boundary.json's per site."""
    from matplotlib.ticker import NullFormatter

    from .boundary import DISTANCES

    shades, sites = _shades(rows), list(results)
    fig, axes = plt.subplots(len(sites), len(DISTANCES), figsize=(13, 4.2 * len(sites)), squeeze=False)
    for row, site in zip(axes, sites):
        mine = [r for r in rows if r["site"] == site]
        relative = np.array([np.nan if r["relative_mse"] is None else r["relative_mse"] for r in mine])
        floor = _zero_floor([relative])
        for ax, name in zip(row, DISTANCES):
            y = np.where(relative == 0, floor, relative)
            for experiment, labels in shades.items():
                for label, color in labels.items():
                    for reached in (True, False):
                        chosen = [i for i, r in enumerate(mine) if r["label"] == label and r["reached"] == reached]
                        if chosen:
                            ax.scatter([mine[i][name] for i in chosen], y[chosen], s=22,
                                       facecolors=color if reached else "none", edgecolors="0.3" if reached else color,
                                       linewidths=0.4 if reached else 1.0)
            s = results[site][name]["pooled"]
            if s["boundary"] is not None:
                ax.axvline(s["boundary"], color="black", ls="--", lw=1)
                if None not in s["boundary_interval"]:
                    ax.axvspan(*s["boundary_interval"], color="0.5", alpha=0.15)
            if (relative == 0).any():
                _mark_zero(ax, floor)
            auc = "–" if s["auc"] is None else f"{s['auc']:.2f}"
            edge = "" if s["boundary"] is None else f", half reached at {s['boundary']:.3g} (dashed)"
            ax.set(xscale="log", yscale="log", xlabel=f"{name} distance from the pool's residuals",
                   ylabel="best MSE / mean square of the target", title=f"{site}, {name}: AUC {auc}{edge}")
            ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0, -1].legend(handles=_key(shades), fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    _save(fig, path, dpi)
