"""The step budget: Exp 1 decides whether every experiment needs more steps (the agenda's rule).

"If Experiment 1 shows that 2000 steps isn't enough (loss curves still declining), increase to
5000 everywhere": the checkpoint `step_budget` reads Exp 1's loss curves, asks the plateau
verdict (metrics.plateau_verdict: only the plateau settings decide it) and writes the decision
and why; every start of Snakemake says where it stands.
"""

from __future__ import annotations

from pathlib import Path

from .experiments import BASELINE
from .metrics import plateau_verdict
from .records import budget_record, cache_record
from .study import site_of
from .storage import FIX, ProvenanceMismatch, UnreadableFile, read_json


def decide(loss, optimizer: dict, plateau: dict) -> dict:
    """The decision from every Exp 1 run's loss curve [runs, steps]: the steps, whether it
    extended, and why."""
    verdict = plateau_verdict(loss, plateau["plateau_tail"], plateau["plateau_tolerance"], plateau["plateau_fraction"])
    more = verdict["needs_more_steps"]
    reason = (f"Exp 1 at {optimizer['steps']} steps: {verdict['fraction_still_improving']:.0%} of its runs still fell "
              f"more than {verdict['tolerance']:.0%} over the last {verdict['tail_fraction']:.0%} of their steps "
              f"({'above' if more else 'not above'} the threshold of {verdict['fraction_threshold']:.0%})")
    return {"steps": optimizer["extend_steps"] if more else optimizer["steps"], "base_steps": optimizer["steps"],
            "extend_steps": optimizer["extend_steps"], "extended": more, "reason": reason, "plateau": verdict}


def extending(config: dict) -> bool:
    """Whether a study decides a step budget: extend_steps set and Exp 1 enabled."""
    return config["optimizer"]["extend_steps"] is not None and config["experiments"][BASELINE]["enabled"]


def steps_of(config: dict, path: str) -> int:
    """A study's step budget: its decision at `path` where it decides one, else the configured steps."""
    return read_decision(path, config)["steps"] if extending(config) else config["optimizer"]["steps"]


def read_decision(path: str, config: dict) -> dict:
    """The decision at `path`, refused unless it was made for this study's Exp 1 packs, steps and
    plateau settings (its record) and says what its own verdict implies (its content)."""
    decision = read_json(path, expect=budget_record(config))
    implied = decision["extend_steps"] if decision["plateau"]["needs_more_steps"] else decision["base_steps"]
    if decision["base_steps"] != config["optimizer"]["steps"] or decision["steps"] != implied:
        raise UnreadableFile(f"{path} says steps = {decision['steps']}, but its own verdict (needs more steps: "
                             f"{decision['plateau']['needs_more_steps']}) chooses {implied}: it was edited after it "
                             f"was written. {FIX}")
    return decision


def current(path: str, config: dict) -> dict | None:
    """The decision at `path` if it is current; None if it is this study's but was made for other
    Exp 1 packs, steps or plateau settings (the checkpoint decides again: its inputs or params
    changed too); refused if it is another study's (model, revision, site or pool) or edited."""
    read_json(path, expect=cache_record(config, site_of(config).tag))
    try:
        return read_decision(path, config)
    except ProvenanceMismatch:
        return None


def status(path: str, config: dict) -> str:
    """One line on the step budget: pending until Exp 1 has decided it (again, when its settings
    changed), then the decision."""
    optimizer = config["optimizer"]
    budget = current(path, config) if Path(path).exists() else None
    if budget is None:
        return (f"step budget: pending{' (to be decided again)' if Path(path).exists() else ''}. Exp 1 runs "
                f"{optimizer['steps']} steps first; if its loss curves still fall, every experiment runs "
                f"{optimizer['extend_steps']} (the agenda's rule), else {optimizer['steps']} — except those that "
                f"set their own steps")
    return f"step budget: {budget['steps']} steps. {budget['reason']}"
