import json
import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.logging import logger
from snakemake.utils import min_version, validate

min_version("9.0")

# The library lives beside the rule scripts. Snakemake *appends* a script's folder to its
# search path, so an installed `reachability` (a non-editable install, another clone's
# editable one, an older version) would win there: this process puts the checkout's library
# first, and so does every rule script, in its first lines (sys.path.insert(0, scriptdir)).
LIBRARY = str(Path(workflow.basedir) / "workflow_scripts")
sys.path.insert(0, LIBRARY)
from reachability import comparison  # noqa: E402
from reachability import config as study  # noqa: E402
from reachability.pipeline import code_digest  # noqa: E402
from reachability.runs import pack_bounds, pack_name  # noqa: E402

study.expand_site_names(config)  # TransformerLens names -> {kind, layer}
validate(config, "../schemas/config.schema.yaml")


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
        )
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(
            model["name"], revision=model["revision"], local_files_only=True
        )
    except (OSError, ValueError):
        return None


study.resolve_last_layers(config, getattr(model_config(), "num_hidden_layers", None))
study.check_config(config, model_config())
study.check_dataset(config, local_path)
comparison.check_comparison(config, model_config)


SITE = study.site_of(config).tag
EXPERIMENTS = study.enabled_experiments(config)
# the ablation's runs are on another model, hard prompts are tokens already: no
# manifold/functional analysis of them
ANALYSED = [e for e in EXPERIMENTS if e not in ("ablation", "hard_prompt")]
POOL = "results/pool/tokens.h5"
CACHE = "results/cache/{site}/pool_residuals.h5"
# A pack is a range of an experiment's runs at a site, numbered target-major (runs.py),
# optimised for a number of steps.
TARGETS = "results/targets/{site}/{experiment}/{pack}.h5"
RUNS = "results/{experiment}/runs/{site}/{pack}_s{steps}.h5"
# The step budget (the agenda: if Exp 1's curves still fall, more steps everywhere): Exp 1's
# packs at the study's site run the configured steps and decide (a checkpoint); the analyses
# then ask for every other pack at the budget, and for Exp 1's continued to it from their
# saved state. A decision that does not change asks for the same files: nothing reruns.
EXTENDED = "results/{experiment}/runs_extended/{site}/{pack}_s{steps}.h5"
BUDGET = "results/step_budget.json"
EXTENDING = (
    config["optimizer"]["extend_steps"] is not None and "experiment1" in EXPERIMENTS
)
# Readers of the decision depend on its content (a param), not its time stamp: rewritten with
# the same decision (another metrics option, say), it reruns nothing.
BUDGET_INPUT = [ancient(BUDGET)] if EXTENDING else []
# The budget's status on every start, dry runs too (a compared model's module names its file)
if EXTENDING:
    here = str(workflow.modifier.modify_path(BUDGET))
    status = study.budget_status(here, config["optimizer"])
    logger.info(status if here == BUDGET else f"{status} ({here})")


wildcard_constraints:
    experiment=r"experiment(1|2a|2b|3|4)|ablation|hard_prompt",
    site=r"(hs|block)\d+",
    pack=r"\d+-\d+",
    steps=r"\d+",


def check_hub_for_every_model():
    """Before any job: each model's (the study's and every compared one's) hub needs can be met."""
    study.check_hub(config, model_config() is not None, Path(POOL).exists())
    for entry in config["compare"]["models"]:
        theirs = comparison.model_study(config, entry)
        pool = Path(comparison.folder(entry["label"])) / "pool" / "tokens.h5"
        study.check_hub(
            theirs, model_config(theirs["model"]) is not None, pool.exists()
        )


def code(script):
    """The library code that `script` runs, as a param. A change to any module it imports
    makes the outputs stale (Snakemake's code trigger sees only the script)."""
    return code_digest(Path(LIBRARY) / script, Path(LIBRARY) / "reachability")


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
    return EXTENDING and experiment == "experiment1" and site == SITE


def step_budget():
    """The decided number of steps (an IncompleteCheckpointException until it is decided:
    Snakemake then plans what depends on it once Exp 1 has run)."""
    if not EXTENDING:
        return config["optimizer"]["steps"]
    with open(checkpoints.step_budget.get().output.budget) as f:
        return json.load(f)["steps"]


PLATEAU_SETTINGS = ("plateau_tail", "plateau_tolerance", "plateau_fraction")


def budget_record():
    """The step budget and why: the checkpoint's decision, else the configured steps."""
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
    with open(checkpoints.step_budget.get().output.budget) as f:
        decided = json.load(f)
    return {k: decided[k] for k in ("steps", "reason")}


def final_run_files(experiment, site=SITE):
    """The packs an analysis reads, at the step budget: Exp 1's deciding packs continued to
    it when it is larger than the configured steps, every other pack optimised for it.
    """
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


def final_outputs():
    outputs = [
        f"results/{experiment}/{name}"
        for experiment in EXPERIMENTS
        for name in (
            "metrics.json",
            "loss_curves.png",
            "final_mse_histogram.png",
            "cosine_by_position.png",
        )
    ]
    if EXTENDING:  # the decision itself: a failed or deleted one is made again on the next run
        outputs.append(BUDGET)
    if EXPERIMENTS:
        outputs += [
            "results/summary.png",
            "results/comparison.md",
            "results/findings.md",
        ]
    if "experiment3" in EXPERIMENTS:
        outputs.append("results/experiment3/reachability_curves.png")
    if "experiment4" in EXPERIMENTS:
        outputs.append("results/experiment4_transition.png")
    if "ablation" in EXPERIMENTS and "experiment1" in EXPERIMENTS:
        outputs += ["results/ablation.png", "results/ablation.md"]
    if "hard_prompt" in EXPERIMENTS:
        outputs += [
            "results/hard_prompt/hard_prompts.md",
            "results/hard_prompt/hard_vs_soft.png",
        ]
    if config["compare"]["models"]:
        outputs += [
            "results/compare/models.md",
            "results/compare/reachability_across_models.png",
        ]
    if config["layer_sweep"]["enabled"]:
        outputs += ["results/layer_sweep.png", "results/layer_sweep.md"]
    if config["analysis"]["enabled"] and ANALYSED:
        outputs += [
            "results/embedding_manifold.png",
            "results/embedding_manifold.md",
            "results/functional_reachability.png",
            "results/functional_reachability.md",
        ]
    if config["perturbation"]["enabled"]:
        outputs += ["results/perturbation/kl_vs_epsilon.png"]
        if config["analysis"]["enabled"] and ANALYSED:
            outputs += [
                "results/perturbation/placement.png",
                "results/perturbation/placement.md",
            ]
    return outputs
