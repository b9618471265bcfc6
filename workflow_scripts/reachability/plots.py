"""The agenda's figures. Each function draws from arrays and writes one PNG."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig, path: str, dpi: int) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
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
    ax.set(xlabel="Adam step", ylabel="MSE to target", yscale="log", title=title)
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
    """The money plot: best final MSE of every condition on a log axis (box plots)."""
    labels = list(groups)
    data = [v[np.isfinite(v) & (v > 0)] for v in groups.values()]
    fig, ax = plt.subplots(figsize=(max(7, 0.45 * len(labels)), 5))
    ax.boxplot(data, showfliers=True, flierprops={"markersize": 2})
    ax.set_xticks(np.arange(1, len(labels) + 1), labels, rotation=60, ha="right", fontsize=8)
    ax.set(yscale="log", ylabel="best-of-restarts final MSE", title="Reachability by condition")
    _save(fig, path, dpi)


def transition(path: str, fractions: list[float], best: np.ndarray, fit: dict | None = None, dpi: int = 120) -> None:
    """Exp 4: final MSE against the fraction of dimensions replaced; a light line per target
    ([F, T]), the median in bold, and the fitted logistic with its elbow (interval shaded)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = np.argsort(fractions)
    f, values = np.asarray(fractions)[order], best[order]
    ax.plot(f, values, color="tab:blue", alpha=0.25, lw=0.8)
    ax.plot(f, np.nanmedian(values, axis=1), color="black", lw=2.8, marker="o", label="median")
    if fit:
        grid = np.linspace(f.min(), f.max(), 200)
        curve = fit["low"] + (fit["high"] - fit["low"]) / (1 + np.exp(-(grid - fit["f0"]) / fit["width"]))
        ax.plot(grid, 10 ** curve, color="tab:red", lw=1.8, label=f"logistic fit (width {fit['width']:.3g})")
        ax.axvline(fit["f0"], color="tab:red", ls="--", lw=1, label=f"elbow f0 = {fit['f0']:.2f}")
        ax.axvspan(*fit["f0_interval"], color="tab:red", alpha=0.12, label="elbow, 95 % interval")
    ax.set(xlabel="fraction of dimensions replaced", ylabel="best-of-restarts final MSE", yscale="log",
           title="Experiment 4: dimension replacement")
    ax.legend(fontsize=8)
    _save(fig, path, dpi)


def reachability_curves(path: str, alphas: list[float], best: np.ndarray, dpi: int = 120) -> None:
    """Exp 3: best final MSE against α, a light line per pair ([A, P]), the median in bold,
    the interpolation range [0, 1] shaded."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = np.argsort(alphas)
    a, values = np.asarray(alphas)[order], best[order]
    ax.axvspan(0, 1, color="tab:green", alpha=0.1, label="interpolation, α ∈ [0, 1]")
    ax.plot(a, values, color="tab:blue", alpha=0.3, lw=0.8)
    ax.plot(a, np.nanmedian(values, axis=1), color="black", lw=2.8, marker="o", label="median over pairs")
    ax.set(xlabel="α (target = α A + (1 − α) B)", ylabel="best-of-restarts final MSE", yscale="log",
           title="Experiment 3: reachability curve of each pair")
    ax.legend(fontsize=8)
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


def placement(path: str, epsilons: list[float], curve: list[float], points: dict[str, tuple[float, float]],
              site: str, dpi: int = 120) -> None:
    """The perturbation curve at the study's site, with each condition at (its ε, measured KL)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    eps, kl = np.asarray(epsilons, dtype=float), np.asarray(curve, dtype=float)
    keep = (eps > 0) & (kl > 0)  # log axes: ε = 0 has KL 0 by construction
    ax.plot(eps[keep], kl[keep], color="black", marker="o", label=f"isotropic perturbation at {site}")
    for (label, (e, k)), color in zip(points.items(), _colors(len(points))):
        if e > 0 and k > 0:
            ax.scatter([e], [k], color=color, label=label, zorder=3)
    ax.set(xlabel="ε (× RMS) at one position", ylabel="KL(reference ‖ moved) at that position", xscale="log",
           yscale="log")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title("Reachability errors on the perturbation curve")
    _save(fig, path, dpi)


def across_models(path: str, rows: list[dict], axis: str, dpi: int = 120) -> None:
    """Median best final MSE (top, log) and reached share (bottom) against the training step
    or the parameter count, a line per condition, with each value's interval as error bars.
    `rows` as comparison.model_rows gives them."""
    key = "step" if axis == "step" else "n_parameters"
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True)
    conditions = list(dict.fromkeys(r["condition"] for r in rows))
    for condition, color in zip(conditions, _colors(len(conditions))):
        line = sorted((r for r in rows if r["condition"] == condition and r["median_best_final_mse"] is not None),
                      key=lambda r: r[key])
        x = [r[key] for r in line]
        for ax, value, low, high in ((top, "median_best_final_mse", "median_low", "median_high"),
                                     (bottom, "reached_fraction", "reached_low", "reached_high")):
            y = np.array([r[value] for r in line], dtype=float)
            spread = np.array([[r[value] - (r[low] if r[low] is not None else r[value]) for r in line],
                               [(r[high] if r[high] is not None else r[value]) - r[value] for r in line]])
            ax.errorbar(x, y, yerr=spread, marker="o", capsize=3, color=color, label=condition)
    top.set(yscale="log", ylabel="median best final MSE", title="Reachability across models")
    bottom.set(ylabel="reached share", ylim=(-0.05, 1.05),
               xlabel="training step" if axis == "step" else "parameters")
    bottom.set_xscale("symlog" if axis == "step" else "log", **({"linthresh": 1000} if axis == "step" else {}))
    models = sorted({(r[key], r["model"]) for r in rows if r[key] is not None})  # each model named at its x
    bottom.set_xticks([x for x, _ in models], [f"{label}\n{x:,}" for x, label in models], fontsize=7)
    bottom.minorticks_off()
    bottom.margins(x=0.08)
    top.legend(fontsize=8)
    _save(fig, path, dpi)


def hard_vs_soft(path: str, rows: list[dict], dpi: int = 120) -> None:
    """Per target, the best MSE of the soft prompt, of its nearest-token projection and of
    the hard prompt (log scale), targets ordered by the soft prompt's MSE."""
    rows = sorted(rows, key=lambda r: r["soft_mse"])
    x = np.arange(len(rows))
    keys = (("soft_mse", "soft prompt (Exp 1)", "o"), ("projected_mse", "its nearest tokens", "s"),
            ("hard_mse", "hard prompt (PEZ)", "^"))
    values = {key: np.array([np.nan if r[key] is None else r[key] for r in rows], dtype=float) for key, _, _ in keys}
    positive = np.concatenate([v[v > 0] for v in values.values()])
    floor = positive.min() / 10 if positive.size else 1e-12  # where an MSE of exactly 0 is drawn
    fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(rows) + 3), 4.5))
    for key, label, marker in keys:
        y = values[key]
        if np.isfinite(y).any():
            ax.plot(x, np.where(y == 0, floor, y), marker, label=label, alpha=0.8)
    if any((v == 0).any() for v in values.values()):
        ax.axhline(floor, color="0.6", linestyle=":", linewidth=1)
        ax.annotate("MSE exactly 0", (0, floor), xycoords=("axes fraction", "data"),
                    xytext=(4, 4), textcoords="offset points", fontsize=7, color="0.4")
    ax.set(yscale="log", xlabel="target (ordered by the soft prompt's MSE)", ylabel="best final MSE",
           title="What text reaches, against a soft prompt")
    ax.set_xticks(x, [str(r["target_id"]) for r in rows], fontsize=7)
    ax.legend(fontsize=8)
    _save(fig, path, dpi)
