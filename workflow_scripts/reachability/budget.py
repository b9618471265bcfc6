"""The step budget: Exp 1 decides whether every experiment needs more steps (the agenda's rule).

"If Experiment 1 shows that 2000 steps isn't enough (loss curves still declining), increase to
5000 everywhere": the checkpoint `step_budget` reads Exp 1's loss curves, asks the plateau
verdict (metrics.plateau_verdict: only the plateau settings decide it) and writes the decision
and why; every start of Snakemake says where it stands.
"""

from __future__ import annotations

from pathlib import Path

from .metrics import plateau_verdict
from .storage import read_json


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


def status(path: str, optimizer: dict) -> str:
    """One line on the step budget: pending until Exp 1 has decided it, then the decision."""
    if not Path(path).exists():
        return (f"step budget: pending. Exp 1 runs {optimizer['steps']} steps first; if its loss curves still "
                f"fall, every experiment runs {optimizer['extend_steps']} (the agenda's rule), else {optimizer['steps']}")
    budget = read_json(path)
    return f"step budget: {budget['steps']} steps. {budget['reason']}"
