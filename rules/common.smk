import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.logging import logger
from snakemake.utils import min_version

min_version("9.0")

# The library lives beside the rule scripts. Snakemake *appends* a script's folder to its
# search path, so an installed `reachability` (a non-editable install, another clone's
# editable one, an older version) would win there: this process puts the checkout's library
# first, and so does every rule script, in its first lines (sys.path.insert(0, scriptdir)).
LIBRARY = str(Path(workflow.basedir) / "workflow_scripts")
sys.path.insert(0, LIBRARY)
from reachability import budget, comparison, experiments, probes, study, validation
from reachability import experiments as registry
from reachability.job import code_digest
from reachability.records import (
    PLATEAU_SETTINGS,
    BUDGET,
    CACHE,
    EXPERIMENT_RUNS,
    EXTENDED,
    METRICS,
    POOL,
    RUNS,
    SOLUTIONS,
    TARGETS,
    loss_setting,
)
from reachability.runs import pack_bounds, pack_name

# The config: site names read, the schema (keys, types, ranges, defaults), then every relation
# the schema cannot state, the model's own limits (its config.json, where available), the
# local dataset files and the compared models, each error naming its key and the fix.
validation.validated(
    config, experiments, Path(workflow.basedir) / "schemas" / "config.schema.yaml"
)


def local_path(path):
    """A relative input path, from the working directory, else from the workflow's folder."""
    if Path(path).is_absolute() or Path(path).exists():
        return path
    return str(Path(workflow.basedir) / path)


def model_config(model=config["model"]):
    """The model's config.json if it is available without network, else None (then the
    first job that loads the model checks the same limits)."""
    build = model["build"]
    if build:
        return SimpleNamespace(
            num_hidden_layers=build["num_layers"],
            max_position_embeddings=build["max_positions"],
            hidden_size=build["hidden_size"],
            vocab_size=build["vocab_size"],
        )
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(
            model["name"], revision=model["revision"], local_files_only=True
        )
    except (OSError, ValueError):
        return None


validation.resolve_last_layers(
    config, getattr(model_config(), "num_hidden_layers", None)
)
validation.check_config(config, experiments, model_config())
logger.info(validation.size_line(config, model_config()))
probes.check_dataset(config, local_path)
comparison.check_comparison(config, experiments, model_config)


SITE = study.site_of(config).tag
EXPERIMENTS = study.enabled_experiments(config)
BASELINE = experiments.BASELINE  # Exp 1: it decides the step budget
ANALYSED = study.analysed(config)
BOUNDARY = config["boundary"]["enabled"] and bool(ANALYSED)
# the experiments the constraint ladder compares methods on (none: no ladder)
LADDER = study.ladder_experiments(config)
BOUNDED = sorted(
    {*ANALYSED, *config["layer_sweep"]["experiments"]}
)  # what a boundary rule may read
# The step budget (the agenda: if Exp 1's curves still fall, more steps everywhere): Exp 1's
# packs at the study's site run the configured steps and decide (a checkpoint); the analyses
# then ask for every other pack at the budget, and for Exp 1's continued to it from their
# saved state. A decision that does not change asks for the same files: nothing reruns.
EXTENDING = budget.extending(config)
# Readers of the decision depend on its content (a param), not its time stamp: rewritten with
# the same decision (another metrics option, say), it reruns nothing.
BUDGET_INPUT = [ancient(BUDGET)] if EXTENDING else []
# The budget's status on every start, dry runs too (a compared model's module names its file)
if EXTENDING:
    here = str(workflow.modifier.modify_path(BUDGET))
    status = budget.status(here, config)
    logger.info(status if here == BUDGET else f"{status} ({here})")


wildcard_constraints:
    experiment="|".join(experiments.names()),
    site=r"(hs|block)\d+",
    pack=r"\d+-\d+",
    steps=r"\d+",


def check_hub_for_every_model():
    """Before any job: each model's (the study's and every compared one's) hub needs can be met."""
    probes.check_hub(config, model_config() is not None, Path(POOL).exists())
    for entry in config["compare"]["models"]:
        theirs = comparison.model_study(config, entry)
        pool = Path(comparison.folder(entry["label"])) / "pool" / "tokens.h5"
        probes.check_hub(
            theirs, model_config(theirs["model"]) is not None, pool.exists()
        )


def code(script, experiments=(), methods=(), runs_only=False):
    """The library code that `script` runs, as a param: the modules it imports and, of the
    registries, the records of `experiments` (`runs_only`: without how they are shown) and the
    classes of `methods`, with what they use (job.code_digest). A change to code the job runs
    makes its outputs stale; a change to any other record, builder or method does not
    (Snakemake's code trigger sees only the script)."""
    dropped = registry.PRESENTATION if runs_only else ()
    roots = [("experiments", e, dropped) for e in experiments]
    roots += [("methods", m) for m in methods]
    return code_digest(
        Path(LIBRARY) / script, Path(LIBRARY) / "reachability", tuple(roots)
    )


def experiment_code(script, methods=(), runs_only=False):
    """`code` for the jobs of one experiment (its wildcard), with its record and the methods its
    conditions run (`methods=True`) or the ones named."""
    return lambda w: code(
        script,
        [w.experiment],
        study.method_names(config, w.experiment) if methods is True else methods,
        runs_only,
    )


def canonical(value):
    """`value` with dict keys sorted, so reordering a config file is no reason to rerun
    (Snakemake compares params as written)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    return value


def model_files():
    """The model directory when the workflow builds it (demo), else nothing to wait for."""
    return [config["model"]["name"]] if config["model"]["build"] else []


def remote_data_files():
    """The entries of dataset.data_files that are URLs (local files are inputs of extract_pool)."""
    files = config["dataset"]["data_files"] or []
    return [f for f in ([files] if isinstance(files, str) else files) if "://" in f]


def having(rule):
    """The experiments whose records name a rule, as a wildcard constraint for it (so it
    serves those experiments, and no other)."""
    return (
        "|".join(n for n in experiments.names() if rule in experiments.get(n).outputs)
        or "^$"
    )


def label(wildcards):
    """The registry's label of a job's experiment (the HTML report's category)."""
    return experiments.get(wildcards.experiment).label


def metrics_of(*names):
    """The metrics.json files of experiments."""
    return [METRICS.format(experiment=e) for e in names]


def packs(experiment, site=SITE):
    """The pack names of an experiment's runs at a site."""
    n_runs = (
        study.targets_at(config, experiment, site)
        * study.layout(config, experiment, site).runs_per_target
    )
    return [
        pack_name(*b) for b in pack_bounds(n_runs, config["engine"]["runs_per_job"])
    ]


def pack_files(pattern, experiment, site=SITE, steps=None):
    steps = config["optimizer"]["steps"] if steps is None else steps
    return [
        pattern.format(experiment=experiment, site=site, pack=pack, steps=steps)
        for pack in packs(experiment, site)
    ]


def run_files(experiment, site=SITE, steps=None):
    """Every run pack of an experiment at a site, optimised for `steps` (default: the
    configured steps)."""
    return pack_files(RUNS, experiment, site, steps)


def decides_budget(experiment, site):
    """Exp 1 at the study's site decides the step budget (when one is to be decided)."""
    return EXTENDING and experiment == BASELINE and site == SITE


def budget_record(experiment=""):
    """The step budget and why: an experiment's own steps where it sets them, else the
    checkpoint's decision, else the configured steps."""
    own = study.own_steps(config, experiment)
    if own:
        return {
            "steps": own,
            "reason": f"its own steps (experiments.{experiment}.steps)",
        }
    if not EXTENDING:
        why = (
            "Exp 1 is disabled"
            if config["optimizer"]["extend_steps"] is not None
            else "optimizer.extend_steps is null"
        )
        return {
            "steps": config["optimizer"]["steps"],
            "reason": f"the configured steps ({why}: no budget to decide)",
        }
    decided = budget.read_decision(checkpoints.step_budget.get().output.budget, config)
    return {k: decided[k] for k in ("steps", "reason")}


def step_budget():
    """The decided number of steps (an IncompleteCheckpointException until it is decided:
    Snakemake then plans what depends on it once Exp 1 has run)."""
    return budget_record()["steps"]


def budget_steps(wildcards):
    """The step budget, as a param of a rule that makes or reads files at it (its inputs hold
    BUDGET_INPUT: a param may wait for a checkpoint only through an input). A reader passes it
    for every file it opens; the record of an experiment that sets its own steps takes those
    (records.experiment_record), so one number serves files of every experiment."""
    return step_budget()


def final_run_files(experiment, site=SITE):
    """The packs an analysis reads, at the step budget: Exp 1's deciding packs continued to
    it when it is larger than the configured steps, every other pack optimised for it (or for
    the experiment's own steps, where it sets them).
    """
    own = study.own_steps(config, experiment)
    if own:  # the experiment's own steps: it does not wait for the budget
        return run_files(experiment, site, own)
    steps = step_budget()
    if decides_budget(experiment, site) and steps > config["optimizer"]["steps"]:
        return pack_files(EXTENDED, experiment, site, steps)
    return run_files(experiment, site, steps)


def target_files(experiment):
    """The target files of an experiment's packs at the study's site."""
    return pack_files(TARGETS, experiment)


def layout_of(wildcards):
    """The numbering of the pack's runs, as a param: a change renumbers (reruns) the packs."""
    layout = study.layout(config, wildcards.experiment, wildcards.site)
    return {"conditions": list(layout.conditions), "restarts": layout.restarts}


def sweep_run_files(wildcards):
    """The layer sweep's packs; at the study's own site these are the experiment's packs."""
    sweep = config["layer_sweep"]
    return [
        path
        for site in study.sweep_sites(config)
        for experiment in sweep["experiments"]
        for path in final_run_files(experiment, site.tag)
    ]


def boundary_inputs(where):
    tables = study.boundary_tables(config, where)
    return {
        "caches": [CACHE.format(site=s) for s in tables["sites"]],
        "runs": lambda w: [
            p
            for s in tables["sites"]
            for e in tables["experiments"]
            for p in final_run_files(e, s)
        ],
        "targets": [
            p
            for s in tables["sites"]
            for e in tables["experiments"]
            for p in pack_files(TARGETS, e, s)
        ],
    }


def compared_metrics():
    """Each compared model's metrics.json files: {label: [path, ...]}. The study's own model
    joins with the compared experiments it runs."""
    chosen = config["compare"]["experiments"]
    return {
        m["label"]: [
            f"{m['folder']}{e}/metrics.json"
            for e in chosen
            if m["folder"] != "results/" or e in EXPERIMENTS
        ]
        for m in comparison.compared_models(config)
    }


def compared_budgets():
    """Each compared model's step-budget decision, where it makes one: {label: path}."""
    theirs = comparison.studies(config)
    return {
        m["label"]: f"{m['folder']}{Path(BUDGET).name}"
        for m in comparison.compared_models(config)
        if budget.extending(theirs[m["label"]])
    }


def final_outputs():
    """What the study makes, from the rules' own outputs: every experiment's metrics and
    figures and the rules its record names, the summaries, and each enabled analysis."""
    outputs = [BUDGET] if EXTENDING else []  # a lost decision is made again next run
    outputs += expand(rules.plot_experiment.output, experiment=EXPERIMENTS)
    outputs += expand(rules.aggregate.output.metrics, experiment=EXPERIMENTS)
    for name in EXPERIMENTS:
        record = experiments.get(name)
        if (
            record.exp1 != "compared" or BASELINE in EXPERIMENTS
        ):  # compared only when Exp 1 runs
            for (
                maker
            ) in record.outputs:  # the names of the rules that make its own files
                outputs += expand(getattr(rules, maker).output, experiment=name)
    if EXPERIMENTS:
        outputs += [*rules.plot_summary.output, *rules.conditions_table.output]
        outputs += list(rules.findings.output)
    if LADDER:
        outputs += [*rules.ladder.output, *rules.plot_ladder.output]
    if config["compare"]["models"]:
        outputs += [*rules.compare_models.output, *rules.plot_models.output]
    if config["layer_sweep"]["enabled"]:
        outputs += [*rules.layer_sweep.output, *rules.plot_layer_sweep.output]
        if config["boundary"]["enabled"]:
            outputs += [*rules.sweep_boundary.output, *rules.plot_sweep_boundary.output]
    if BOUNDARY:
        outputs += [
            *rules.targets_table.output,
            *rules.boundary.output,
            *rules.plot_boundary.output,
        ]
    if config["analysis"]["enabled"] and ANALYSED:
        outputs += [*rules.analysis_summary.output, *rules.plot_analysis.output]
    if config["perturbation"]["enabled"]:
        outputs += list(rules.plot_perturbation.output)
        if config["analysis"]["enabled"] and ANALYSED:
            outputs += [*rules.place_errors.output, *rules.plot_placement.output]
    return outputs
