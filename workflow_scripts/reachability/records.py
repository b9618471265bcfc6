"""Where a study's files live, what each records about what made it, and what its readers expect.

Every HDF5 file carries, as attributes, the part of the config that decides what it holds:
its *record*. A writer writes the record of its own output; a reader builds the record it
expects of an input from the same functions — from the config it runs with and the input's
place in the study (its path: experiment, site, pack, steps) — and `storage.read_h5` compares
every field. So a file made for another model, site, shape, experiment, optimiser setting,
layout or step count, or one copied to the wrong path, is refused with the file, the field,
both values and the fix, never computed on. A compared model's files are the same paths
under its own prefix (`results/models/<label>/`).
"""

from __future__ import annotations

import re

from .study import layout, methods, site_of
from .pipeline import provenance
from .sites import Site

POOL = "results/pool/tokens.h5"
CACHE = "results/cache/{site}/pool_residuals.h5"
TARGETS = "results/targets/{site}/{experiment}/{pack}.h5"
RUNS = "results/{experiment}/runs/{site}/{pack}_s{steps}.h5"  # a pack, optimised for `steps`
EXTENDED = "results/{experiment}/runs_extended/{site}/{pack}_s{steps}.h5"  # a pack continued to the budget
EXPERIMENT_RUNS = "results/{experiment}/runs.h5"  # every run of an experiment at the study's site
METRICS = "results/{experiment}/metrics.json"
SOLUTIONS = "results/{experiment}/solutions.json"  # the analyses of an experiment's solutions
BUDGET = "results/step_budget.json"


def _pattern(template: str) -> re.Pattern:
    tail = template.removeprefix("results/")
    regex = re.escape(tail).replace(r"\{", "{").replace(r"\}", "}")
    return re.compile(r"(?:^|/)" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", regex) + "$")


PATTERNS = {name: _pattern(t) for name, t in (("extended", EXTENDED), ("runs", RUNS), ("targets", TARGETS),
                                              ("cache", CACHE), ("experiment_runs", EXPERIMENT_RUNS), ("pool", POOL))}


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
            "restarts": numbering.restarts, "pack": pack}


def pack_record(config: dict, experiment: str, site: str, pack: str, steps: int) -> dict:
    return {**targets_record(config, experiment, site, pack), "steps": int(steps), "lr": config["optimizer"]["lr"],
            "precision": config["engine"]["precision"], "methods": methods(config, experiment)}


def extended_record(config: dict, experiment: str, site: str, pack: str, steps: int) -> dict:
    return {**pack_record(config, experiment, site, pack, steps), "continued_from_steps": config["optimizer"]["steps"]}


def experiment_record(config: dict, experiment: str, steps: int) -> dict:
    """An experiment's aggregated runs (runs.h5), at the study's site and the step budget."""
    site = site_of(config).tag
    numbering = layout(config, experiment, site)
    return {**cache_record(config, site), "experiment": experiment, "conditions": list(numbering.conditions),
            "restarts": numbering.restarts, "steps": int(steps), "lr": config["optimizer"]["lr"],
            "precision": config["engine"]["precision"]}


def expected(config: dict, path: str, steps: int | None = None) -> dict:
    """The record a reader expects of the study file at `path` (`steps`: an experiment's
    runs.h5 is at the step budget, which its path does not say)."""
    kind, f = place_of(path)
    if kind == "pool":
        return pool_record(config)
    if kind == "cache":
        return cache_record(config, f["site"])
    if kind == "targets":
        return targets_record(config, f["experiment"], f["site"], f["pack"])
    if kind == "runs":
        return pack_record(config, f["experiment"], f["site"], f["pack"], int(f["steps"]))
    if kind == "extended":
        return extended_record(config, f["experiment"], f["site"], f["pack"], int(f["steps"]))
    if steps is None:
        raise ValueError(f"{path}: an experiment's runs are checked against the step budget; give it")
    return experiment_record(config, f["experiment"], steps)
