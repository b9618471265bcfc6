"""Where a study's files live, what each records about what made it, and what its readers expect.

Every file a later rule reads carries the part of the config that decides what it holds: its
*record* (HDF5: as attributes; JSON: a `record` key; CSV: a sidecar, storage.py). A writer
writes the record of its own output; a reader builds the record it expects of an input from
the same functions — from the config it runs with, the input's place in the study (its path:
experiment, site, pack, steps) and, for what comes after Exp 1's decision, the step budget — and
`storage.check_record` compares every field. So a file made for another model, site, shape,
experiment, optimiser setting, layout, step count or analysis setting, or one copied to the
wrong path, is refused with the file, the field, both values and the fix, never computed on. A
compared model's files are the same paths under its own prefix (`results/models/<label>/`).
"""

from __future__ import annotations

import re

from . import experiments
from .job import digest
from .storage import read_csv, read_json
from .sites import Site
from .study import (analysed, boundary_tables, ladder_experiments, layout, methods, own_settings, own_steps,
                    perturbation_sites, site_of)

POOL = "results/pool/tokens.h5"
CACHE = "results/cache/{site}/pool_residuals.h5"
TARGETS = "results/targets/{site}/{experiment}/{pack}.h5"
RUNS = "results/{experiment}/runs/{site}/{pack}_s{steps}.h5"  # a pack, optimised for `steps`
EXTENDED = "results/{experiment}/runs_extended/{site}/{pack}_s{steps}.h5"  # a pack continued to the budget
EXPERIMENT_RUNS = "results/{experiment}/runs.h5"  # every run of an experiment at the study's site
METRICS = "results/{experiment}/metrics.json"
SOLUTIONS = "results/{experiment}/solutions.json"  # the analyses of an experiment's solutions
HARD_PROMPTS = "results/{experiment}/hard_prompts.json"
BUDGET = "results/step_budget.json"
FINDINGS = "results/findings.json"
LAYER_SWEEP = "results/layer_sweep.json"
TABLE = {"study": "results/targets.csv", "sweep": "results/layer_sweep/targets.csv"}  # + a .record.json sidecar
BOUNDARY = {"study": "results/boundary.json", "sweep": "results/layer_sweep/boundary.json"}
KL_CURVES = "results/perturbation/kl_vs_epsilon.json"
PLACEMENT_CURVE = "results/perturbation/placement_curve.json"
PLACEMENT = "results/perturbation/placement.json"
COMPARED = "results/compare/models.json"
LADDER = "results/ladder.json"


def provenance(config: dict, site: Site | None = None) -> dict:
    """What made a file: the config parts every stage must agree on, and for files at a site
    (residuals, targets, runs) that site. The token pool has no site."""
    out = {
        "model": config["model"]["name"],
        "revision": config["model"]["revision"],
        "seq_len": config["seq_len"],
        "pool_size": config["pool_size"],
        "dataset": digest(config["dataset"]),
    }
    return out if site is None else {**out, "site": str(site)}


def config_hash(config: dict) -> str:
    """Hash of everything that changes the numbers (not plots, batch size or job sizes)."""
    return digest({
        **provenance(config, Site(config["site"]["kind"], int(config["site"]["layer"]))),
        "dataset": config["dataset"],
        "optimizer": config["optimizer"],
        "precision": config["engine"]["precision"],
        "experiments": config["experiments"],
    })


PLATEAU_SETTINGS = ("plateau_tail", "plateau_tolerance", "plateau_fraction")  # all the step budget depends on


def _pattern(template: str) -> re.Pattern:
    tail = template.removeprefix("results/")
    regex = re.escape(tail).replace(r"\{", "{").replace(r"\}", "}")
    return re.compile(r"(?:^|/)" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex) + "$")


PATTERNS = {name: _pattern(t) for name, t in (
    ("extended", EXTENDED), ("runs", RUNS), ("targets", TARGETS), ("cache", CACHE),
    ("experiment_runs", EXPERIMENT_RUNS), ("pool", POOL), ("metrics", METRICS), ("solutions", SOLUTIONS),
    ("hard_prompts", HARD_PROMPTS), ("sweep_table", TABLE["sweep"]), ("sweep_boundary", BOUNDARY["sweep"]),
    ("budget", BUDGET), ("findings", FINDINGS), ("layer_sweep", LAYER_SWEEP), ("table", TABLE["study"]),
    ("boundary", BOUNDARY["study"]), ("kl_curves", KL_CURVES), ("placement_curve", PLACEMENT_CURVE),
    ("placement", PLACEMENT), ("compared", COMPARED), ("ladder", LADDER))}  # the more specific paths first: the first match wins


def place_of(path: str) -> tuple[str, dict[str, str]]:
    """(kind of file, the fields its path holds) of a study file's path."""
    for kind, pattern in PATTERNS.items():
        found = pattern.search(str(path))
        if found:
            return kind, found.groupdict()
    raise ValueError(f"{path} is not a path of a study file")


def pool_record(config: dict) -> dict:
    return provenance(config)


def cache_record(config: dict, site: str) -> dict:
    return provenance(config, Site.from_tag(site))


def targets_record(config: dict, experiment: str, site: str, pack: str) -> dict:
    """A pack's targets depend on the pack's runs: the experiment's conditions and restarts
    number them (runs.py)."""
    numbering = layout(config, experiment, site)
    return {**cache_record(config, site), "experiment": experiment, "conditions": list(numbering.conditions),
            "restarts": numbering.restarts, "pack": pack, "settings": own_settings(config, experiment)}


def optimised(config: dict, experiment: str) -> dict:
    """How an experiment's runs were optimised, beside their steps: what decides its packs' numbers."""
    return {"lr": config["optimizer"]["lr"], "loss": loss_setting(config), "precision": config["engine"]["precision"],
            "methods": methods(config, experiment)}


def loss_setting(config: dict) -> dict:
    """The objective as it decides the numbers: the MSE's weight only where there is one."""
    loss = config["optimizer"]["loss"]
    return {"kind": "mse"} if loss["kind"] == "mse" else dict(loss)


def pack_record(config: dict, experiment: str, site: str, pack: str, steps: int) -> dict:
    return {**targets_record(config, experiment, site, pack), "steps": int(steps), **optimised(config, experiment)}


def extended_record(config: dict, experiment: str, site: str, pack: str, steps: int) -> dict:
    return {**pack_record(config, experiment, site, pack, steps), "continued_from_steps": config["optimizer"]["steps"]}


def experiment_record(config: dict, experiment: str, steps: int) -> dict:
    """An experiment's aggregated runs (runs.h5), at the study's site and the step budget `steps`
    (or the experiment's own steps, where it sets them)."""
    site, steps = site_of(config).tag, own_steps(config, experiment) or steps
    numbering = layout(config, experiment, site)
    return {**cache_record(config, site), "experiment": experiment, "conditions": list(numbering.conditions),
            "restarts": numbering.restarts, "settings": own_settings(config, experiment), "steps": int(steps),
            **optimised(config, experiment)}


def metrics_record(config: dict, experiment: str, steps: int) -> dict:
    return {**experiment_record(config, experiment, steps), "metrics": config["metrics"]}


def solutions_record(config: dict, experiment: str, steps: int) -> dict:
    return {**experiment_record(config, experiment, steps), "analysis": config["analysis"]}


def budget_record(config: dict) -> dict:
    """The step-budget decision: Exp 1's packs it read (at the configured steps), the steps it
    chooses between and the plateau settings that choose."""
    baseline = experiments.BASELINE
    return {**experiment_record(config, baseline, config["optimizer"]["steps"]),
            "n_targets": config["experiments"][baseline]["n_targets"],
            "extend_steps": config["optimizer"]["extend_steps"],
            "plateau": {k: config["metrics"][k] for k in PLATEAU_SETTINGS}}


def study_record(config: dict, steps: int, *sections: str) -> dict:
    """A summary over the study's experiments at its site and the step budget, decided also by
    the config's `sections`."""
    return {**cache_record(config, site_of(config).tag), "experiments": [
        e for e in experiments.names() if config["experiments"].get(e, {}).get("enabled")], "steps": int(steps),
        **{section: config[section] for section in sections}}


def table_record(config: dict, where: str, steps: int) -> dict:
    """targets.csv: the study's ('study') or the layer sweep's ('sweep') targets, sites and runs."""
    return {**provenance(config), "where": where, "tables": boundary_tables(config, where), "steps": int(steps),
            "metrics": config["metrics"]}


def layer_sweep_record(config: dict, steps: int) -> dict:
    return {**provenance(config), "layer_sweep": config["layer_sweep"], "steps": int(steps),
            "metrics": config["metrics"]}


def kl_curves_record(config: dict) -> dict:
    return {**provenance(config), "perturbation": config["perturbation"],
            "sites": [s.tag for s in perturbation_sites(config)]}


def placement_record(config: dict, steps: int) -> dict:
    return {**study_record(config, steps, "perturbation"), "experiments": analysed(config)}


def ladder_record(config: dict, steps: int) -> dict:
    """The ladder: the experiments it reads, each with its record, and the reached threshold."""
    return {**study_record(config, steps), "ladder": {e: experiment_record(config, e, steps) for e in
                                                      ladder_experiments(config)}, "metrics": config["metrics"]}


def compared_record(config: dict) -> dict:
    from .comparison import compared_models

    return {**provenance(config), "compare": config["compare"], "models": compared_models(config),
            "findings": config["findings"]}


def expected(config: dict, path: str, steps: int | None = None) -> dict:
    """The record a reader expects of the study file at `path`; `steps`, the step budget, for
    the files made after Exp 1's decision (its path does not say it)."""
    kind, f = place_of(path)
    fixed = {"pool": lambda: pool_record(config), "cache": lambda: cache_record(config, f["site"]),
             "targets": lambda: targets_record(config, f["experiment"], f["site"], f["pack"]),
             "runs": lambda: pack_record(config, f["experiment"], f["site"], f["pack"], int(f["steps"])),
             "extended": lambda: extended_record(config, f["experiment"], f["site"], f["pack"], int(f["steps"])),
             "budget": lambda: budget_record(config), "kl_curves": lambda: kl_curves_record(config),
             "compared": lambda: compared_record(config)}
    if kind in fixed:
        return fixed[kind]()
    if steps is None:
        raise ValueError(f"{path} is made at the step budget, which its path does not say: give it")
    at_budget = {
        "experiment_runs": lambda: experiment_record(config, f["experiment"], steps),
        "metrics": lambda: metrics_record(config, f["experiment"], steps),
        "solutions": lambda: solutions_record(config, f["experiment"], steps),
        "hard_prompts": lambda: experiment_record(config, f["experiment"], steps),
        "findings": lambda: study_record(config, steps, "metrics", "findings"),
        "table": lambda: table_record(config, "study", steps),
        "sweep_table": lambda: table_record(config, "sweep", steps),
        "boundary": lambda: {**table_record(config, "study", steps), "findings": config["findings"]},
        "sweep_boundary": lambda: {**table_record(config, "sweep", steps), "findings": config["findings"]},
        "layer_sweep": lambda: layer_sweep_record(config, steps),
        "placement_curve": lambda: placement_record(config, steps),
        "placement": lambda: placement_record(config, steps),
        "ladder": lambda: ladder_record(config, steps),
    }
    return at_budget[kind]()


def load(config: dict, path: str, steps: int | None = None):
    """A study's JSON file (a dict) or CSV file (its text), refused unless its record is the one
    this step expects of its place (`steps`: the step budget, for files made after Exp 1's
    decision)."""
    read = read_csv if str(path).endswith(".csv") else read_json
    return read(path, expect=expected(config, path, steps))
