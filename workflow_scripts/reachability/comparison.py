"""The study across models: each compared model's config, and the table across them."""

from __future__ import annotations

import copy
import re

COMPARED_OFF = ("layer_sweep", "analysis", "perturbation")


def module_name(label: str) -> str:
    """A Snakemake module (and rule-name prefix) for a compared model's label."""
    return "model_" + re.sub(r"\W", "_", label) + "_"


def folder(label: str) -> str:
    """Where a compared model's results go: its module moves `results/` here."""
    return f"results/models/{label}/"


def model_study(config: dict, entry: dict) -> dict:
    """The config a compared model runs: the study's, with the entry's model and site, only
    compare.experiments enabled, and no layer sweep, analyses or perturbation."""
    out = copy.deepcopy(config)
    model = out["model"]
    model["name"] = entry.get("name", model["name"])
    model["revision"] = entry.get("revision", model["revision"])
    if "build" in entry:  # a built (demo) model: the keys that differ
        model["build"] = {**(model["build"] or {}), **entry["build"]}
    elif "name" in entry:  # a model of its own name is loaded, never built
        model["build"] = None
    out["site"] = copy.deepcopy(entry.get("site", config["site"]))
    chosen = config["compare"]["experiments"]
    for experiment, spec in out["experiments"].items():
        spec["enabled"] = experiment in chosen
    for section in COMPARED_OFF:
        out[section]["enabled"] = False
    out["compare"] = {**out["compare"], "models": []}
    return out


def studies(config: dict) -> dict[str, dict]:
    """Every compared model's study config by label, the study's own first (its own config)."""
    own = own_label(config)
    return {own: config, **{e["label"]: model_study(config, e) for e in config["compare"]["models"]}}


def own_label(config: dict) -> str:
    """The study's own model in the comparison: compare.label, else its revision, else the
    last part of its name."""
    model = config["model"]
    return config["compare"]["label"] or model["revision"] or model["name"].rstrip("/").split("/")[-1]


def compared_models(config: dict) -> list[dict]:
    """Every model of the comparison, the study's own first: label, results folder, revision,
    training step (from `step`, else a revision 'stepN', else None)."""
    own = {"label": own_label(config), "revision": config["model"]["revision"]}
    out = []
    for entry in [own, *config["compare"]["models"]]:
        revision = entry.get("revision", config["model"]["revision"])
        match = re.fullmatch(r"step(\d+)", revision or "")
        step = entry.get("step", int(match.group(1)) if match else None)
        where = "results/" if entry is own else folder(entry["label"])
        out.append({"label": entry["label"], "folder": where, "revision": revision, "step": step})
    return out


def check_comparison(config: dict, registry, model_config=None) -> None:
    """Labels unique (each is a folder), built models apart from each other, a training step
    for every model when the axis is the step; and every compared model's own config checked
    as its module will check it (`model_config(model)`: its config.json where available),
    with the entry named in the error."""
    from .validation import ConfigError, check_config, resolve_last_layers

    if not config["compare"]["models"]:
        return
    chosen = config["compare"]["experiments"]
    needing = [e for e in chosen if registry.get(e).exp1 == "requires"]
    if needing and registry.BASELINE not in chosen:
        raise ConfigError(f"compare.experiments = {chosen}: {needing} are compared with Exp 1's soft prompts, "
                          f"add {registry.BASELINE}")
    models = compared_models(config)
    labels = [m["label"] for m in models]
    if len(set(labels)) < len(labels) or len({module_name(x) for x in labels}) < len(labels):
        raise ConfigError(f"compare: model labels {labels} must be distinct (the study's own is "
                          f"compare.label, else its revision or name); each names a folder")
    built = [config["model"]["name"]] if config["model"]["build"] else []
    built += [model_study(config, e)["model"]["name"] for e in config["compare"]["models"] if "build" in e]
    if len(set(built)) < len(built):
        raise ConfigError(f"compare.models: each built model needs its own name (model directories {built})")
    for i, entry in enumerate(config["compare"]["models"]):
        theirs = model_study(config, entry)
        own = model_config(theirs["model"]) if model_config else None
        try:
            resolve_last_layers(theirs, getattr(own, "num_hidden_layers", None))
            check_config(theirs, registry, own)
        except ConfigError as error:
            raise ConfigError(f"compare.models[{i}] (label {entry['label']}): {error}") from None
    if config["compare"]["axis"] == "step":
        unknown = [m["label"] for m in models if m["step"] is None]
        if unknown:
            raise ConfigError(f"compare.axis: step needs each model's training step; {unknown} have no revision "
                              f"stepN: give the revision (model.revision for the study's own), a `step`, "
                              f"or use axis: parameters")


def model_rows(models: list[dict], loaded: list[list[dict]], settings: dict) -> list[dict]:
    """One row per (model, condition): median best final MSE — raw, and relative to each
    target's mean square, which puts models on one footing (a checkpoint's final norm has its
    own gain: targets twice as large at equal relative error read four times worse raw) — and
    the reached share, each with its interval (bootstrap; Clopper-Pearson). `loaded[i]` holds
    model i's metrics.json files; `settings` is the config's `findings` section."""
    from .findings import median_interval, reached_interval
    from .results import label_conditions

    rows = []
    for model, metrics in zip(models, loaded):
        for condition, summary in label_conditions(metrics).items():
            median, low, high = median_interval(summary["per_target"]["best_final_mse"], settings)
            relative, rel_low, rel_high = median_interval(summary["per_target"]["relative_best_final_mse"], settings)
            share, share_low, share_high = reached_interval(summary["per_target"]["reached"])
            rows.append({
                "model": model["label"], "revision": model["revision"], "step": model["step"],
                "n_parameters": metrics[0]["provenance"].get("n_parameters"),
                "site": metrics[0]["provenance"]["site"], "condition": condition,
                "n_targets": summary["n_targets"], "median_best_final_mse": median, "median_low": low,
                "median_high": high, "median_relative_mse": relative, "relative_low": rel_low,
                "relative_high": rel_high, "reached_fraction": share, "reached_low": share_low,
                "reached_high": share_high, "steps": metrics[0]["provenance"]["step_budget"]["steps"],
            })
    return rows


def steps_note(rows: list[dict]) -> str:
    """What a reader must know when the models ran different numbers of steps (each model's
    own Exp 1 decides its step budget), else ''."""
    steps = {r["model"]: r["steps"] for r in rows}
    if len(set(steps.values())) <= 1:
        return ""
    return "the models ran different step counts (each one's own Exp 1 decided its budget): " + ", ".join(
        f"{m} {s}" for m, s in steps.items())


def _number(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def markdown_table(rows: list[dict], axis: str) -> str:
    """The comparison as a Markdown table, ordered by the axis."""
    key = "step" if axis == "step" else "n_parameters"
    lines = [
        "| model | step | parameters | site | steps run | condition | targets | median best MSE [interval] "
        "| median relative MSE [interval] | reached [interval] |",
        "|---|---:|---:|---|---:|---|---:|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r[key] is None, r[key] or 0, r["condition"])):
        lines.append(
            f"| {r['model']} | {_number(r['step'], 'd')} | {_number(r['n_parameters'], ',d')} | {r['site']} | "
            f"{r['steps']} | {r['condition']} | {r['n_targets']} | {_number(r['median_best_final_mse'], '.3g')} "
            f"[{_number(r['median_low'], '.3g')}, {_number(r['median_high'], '.3g')}] | "
            f"{_number(r['median_relative_mse'], '.3g')} [{_number(r['relative_low'], '.3g')}, "
            f"{_number(r['relative_high'], '.3g')}] | "
            f"{r['reached_fraction']:.2f} [{r['reached_low']:.2f}, {r['reached_high']:.2f}] |"
        )
    return "\n".join(lines) + "\n"
