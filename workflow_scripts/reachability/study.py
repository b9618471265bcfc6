"""What a (validated) study config means: its site, its experiments' conditions and targets, how
their runs are numbered, and the sites of the sweep and the perturbations — all read from the
experiment registry (experiments.py), torch-free."""

from __future__ import annotations

from . import experiments
from .runs import Layout, RunId, method_records, split
from .sites import Site

AGENDA_POOL = 1000  # the agenda: Exp 2a's statistics from 1000+ real sequences


def site_of(config: dict) -> Site:
    return Site(config["site"]["kind"], int(config["site"]["layer"]))


def sites_of(entries: list[dict]) -> list[Site]:
    return [Site(e["kind"], int(e["layer"])) for e in entries]


def sweep_sites(config: dict) -> list[Site]:
    return sites_of(config["layer_sweep"]["sites"]) if config["layer_sweep"]["enabled"] else []


def perturbation_sites(config: dict) -> list[Site]:
    """The configured sites, plus the study's own site (its curve is drawn beside the others)."""
    sites = sites_of(config["perturbation"]["sites"])
    return sites + [site_of(config)] if site_of(config) not in sites else sites


def enabled_experiments(config: dict) -> list[str]:
    """The enabled experiments, in the registry's order."""
    return [e for e in experiments.names() if config["experiments"].get(e, {}).get("enabled")]


def analysed(config: dict) -> list[str]:
    """The enabled experiments whose solutions are analysed (and whose targets the boundary reads)."""
    return [e for e in enabled_experiments(config) if experiments.get(e).analysed]


def boundary_tables(config: dict, where: str) -> dict:
    """What a targets table reads: its sites, and the experiments and [targets, restarts] of
    each there (the study's, at its site; or the layer sweep's, at its sites)."""
    if where == "study":
        names = analysed(config)
        return {"sites": [site_of(config).tag], "experiments": names,
                "shape": {e: [n_targets(config, e), config["experiments"][e]["restarts"]] for e in names}}
    sweep = config["layer_sweep"]
    return {"sites": [s.tag for s in sweep_sites(config)], "experiments": list(sweep["experiments"]),
            "shape": {e: [sweep["n_targets"], sweep["restarts"]] for e in sweep["experiments"]}}


def conditions(config: dict, experiment: str) -> list[str]:
    """Condition names of an experiment: 'real', 'matched', 'isotropic', 'a0.5', 'f0.3', ... and,
    for each method beyond the soft prompt, 'real/pez', ..."""
    return experiments.get(experiment).all_conditions(config["experiments"][experiment])


def n_targets(config: dict, experiment: str) -> int:
    """Targets per condition (Exp 3 counts pairs)."""
    return config["experiments"][experiment][experiments.get(experiment).count]


def own_settings(config: dict, experiment: str) -> dict:
    """An experiment's own settings (its record's keys beyond the common ones): what its targets
    are made with."""
    spec = config["experiments"][experiment]
    return {k: spec[k] for k in experiments.get(experiment).settings if k in spec}


def own_steps(config: dict, experiment: str) -> int | None:
    """The steps an experiment sets for itself, at every site; None: the study's step budget."""
    return config["experiments"].get(experiment, {}).get("steps")


def uses_experiment_spec(config: dict, experiment: str, site_tag: str) -> bool:
    """At the study's site an enabled experiment runs as configured; anywhere else (the layer
    sweep's sites) it runs with the sweep's targets and restarts."""
    return site_tag == site_of(config).tag and config["experiments"][experiment]["enabled"]


def layout(config: dict, experiment: str, site_tag: str) -> Layout:
    """How the experiment's runs at a site are numbered (see runs.py)."""
    if uses_experiment_spec(config, experiment, site_tag):
        return Layout(tuple(conditions(config, experiment)), config["experiments"][experiment]["restarts"])
    return Layout(tuple(conditions(config, experiment)), config["layer_sweep"]["restarts"])


def targets_at(config: dict, experiment: str, site_tag: str) -> int:
    """How many targets the experiment has at a site (Exp 3: pairs)."""
    if uses_experiment_spec(config, experiment, site_tag):
        return n_targets(config, experiment)
    return config["layer_sweep"]["n_targets"]


def groups(runs: list[RunId]) -> dict[tuple[str | None, str], list[int]]:
    """A pack's runs by (model variant, method) — the ablation's component, PEZ or GCG — each
    group optimised in its own batches."""
    out: dict[tuple[str | None, str], list[int]] = {}
    for i, run in enumerate(runs):
        base, method = split(run.condition)
        out.setdefault((experiments.get(run.experiment).variant(base), method), []).append(i)
    return out


def methods(config: dict, experiment: str) -> dict[str, dict]:
    """How each condition's runs move: the method's name and its settings (config `methods`; a
    record of the pack)."""
    def settings(method: str) -> dict:
        per_position = method_records()[method]["per_position"]  # the inversion: one step per position
        return {"method": method, **config["methods"].get(method, {}), **({"steps": config["seq_len"]} if per_position else {})}

    return {c: settings(split(c)[1]) for c in conditions(config, experiment)}


def size(config: dict, vocab_size: int | None = None) -> dict[str, int]:
    """How much optimisation a study asks for at most (every experiment at its site, the layer
    sweep, every compared model; Exp 1's budget extended): runs, run-steps (a forward and a
    backward each) and candidate forwards (a forward each): GCG's, and where the vocabulary's size
    is known the exact inversion's (every token, or its top_k, at every position, one position of
    S each: V (or k) sequences' worth per run; a compared model counted at this vocabulary)."""
    from .comparison import model_study

    steps, sweep = config["optimizer"]["extend_steps"] or config["optimizer"]["steps"], config["layer_sweep"]
    where = [(e, n_targets(config, e), config["experiments"][e]["restarts"]) for e in enabled_experiments(config)]
    where += [(e, sweep["n_targets"], sweep["restarts"]) for s in sweep_sites(config) if s != site_of(config)
              for e in sweep["experiments"]]
    out = {"runs": 0, "run_steps": 0, "candidate_forwards": 0}
    for experiment, targets, restarts in where:
        own, budget = methods(config, experiment), own_steps(config, experiment) or steps
        for condition in conditions(config, experiment):
            runs = targets * restarts
            settings = own[condition]
            out["runs"] += runs
            out["run_steps"] += runs * settings.get("steps", budget)
            out["candidate_forwards"] += runs * settings.get("steps", budget) * settings.get("candidates", 0)
            if settings["method"] == "inversion" and vocab_size:  # every token, or the top_k the gradient ranks
                out["candidate_forwards"] += runs * min(settings.get("top_k") or vocab_size, vocab_size)
    for entry in config["compare"]["models"]:
        for key, value in size(model_study(config, entry), vocab_size).items():
            out[key] += value
    return out


def method_names(config: dict, experiment: str) -> list[str]:
    """The methods an experiment's conditions run (the registry's names)."""
    return sorted({m["method"] for m in methods(config, experiment).values()})


def pool_warnings(config: dict, experiment: str) -> list[str]:
    """What a reader of an experiment's metrics should know about its pool."""
    record = experiments.get(experiment)
    if record.gaussian and config["pool_size"] < AGENDA_POOL:
        return [f"{record.label}'s per-position statistics come from pool_size = {config['pool_size']} sequences; "
                f"the agenda asks for at least {AGENDA_POOL}"]
    return []


def ladder_joins(config: dict) -> dict[str, tuple[str, str]]:
    """The experiments whose targets are Exp 1's real targets unchanged (the text experiment), by
    the section of the ladder they join: Exp 1's real, when it runs."""
    baseline = experiments.BASELINE
    if baseline not in enabled_experiments(config):
        return {}
    return {name: (baseline, "real") for name in enabled_experiments(config) if name != baseline
            and real_text(config, name)}


def real_text(config: dict, experiment: str) -> bool:
    """Whether every target of an experiment is a pool sequence's own residuals, on the study's
    model (target t is sequence t): where a text method can recover its text exactly."""
    record = experiments.get(experiment)
    spec = config["experiments"][experiment]
    return record.targets is experiments.T.real and all(record.variant(b) is None for b in record.conditions(spec))


def ladder_experiments(config: dict) -> list[str]:
    """The experiments the constraint ladder reads: those with runs in a set of targets that more
    than one method runs on (an experiment's own conditions, or Exp 1's real targets joined by the
    experiments that reuse them); none: no ladder."""
    from .ladder import sections

    names = enabled_experiments(config)
    found = sections({n: conditions(config, n) for n in names}, ladder_joins(config))
    chosen = {experiment for members in found.values() for experiment, _ in members.values()}
    return [n for n in names if n in chosen]
