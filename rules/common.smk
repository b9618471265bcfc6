import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import min_version, validate

min_version("9.0")

# The library lives beside the rule scripts. Snakemake *appends* a script's folder to its
# search path, so an installed `reachability` (a non-editable install, another clone's
# editable one, an older version) would win there: this process puts the checkout's library
# first, and so does every rule script, in its first lines (sys.path.insert(0, scriptdir)).
LIBRARY = str(Path(workflow.basedir) / "workflow_scripts")
sys.path.insert(0, LIBRARY)
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


def model_config():
    """The model's config.json if it is available without network, else None (then the
    first job that loads the model checks the same limits)."""
    build = config["model"]["build"]
    if build:
        return SimpleNamespace(
            num_hidden_layers=build["num_layers"],
            max_position_embeddings=build["max_positions"],
        )
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(
            config["model"]["name"],
            revision=config["model"]["revision"],
            local_files_only=True,
        )
    except (OSError, ValueError):
        return None


study.resolve_last_layers(config, getattr(model_config(), "num_hidden_layers", None))
study.check_config(config, model_config())
study.check_dataset(config, local_path)


SITE = study.site_of(config).tag
EXPERIMENTS = study.enabled_experiments(config)
# the ablation's runs are on another model: no manifold/functional analysis of them
ANALYSED = [e for e in EXPERIMENTS if e != "ablation"]
POOL = "results/pool/tokens.h5"
CACHE = "results/cache/{site}/pool_residuals.h5"
# A pack is a range of an experiment's runs at a site, numbered target-major (runs.py).
TARGETS = "results/targets/{site}/{experiment}/{pack}.h5"
RUNS = "results/{experiment}/runs/{site}/{pack}.h5"


wildcard_constraints:
    experiment=r"experiment(1|2a|2b|3|4)|ablation",
    site=r"(hs|block)\d+",
    pack=r"\d+-\d+",


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


def pack_files(pattern, experiment, site=SITE):
    return [
        pattern.format(experiment=experiment, site=site, pack=pack)
        for pack in packs(experiment, site)
    ]


def run_files(experiment, site=SITE):
    """Every run pack of an experiment at a site."""
    return pack_files(RUNS, experiment, site)


def target_files(experiment):
    """The target files of an experiment's packs at the study's site."""
    return pack_files(TARGETS, experiment)


def layout_of(wildcards):
    """The numbering of the pack's runs, as a param: a change renumbers (reruns) the packs."""
    layout = study.layout(config, wildcards.experiment, wildcards.site)
    return {"conditions": list(layout.conditions), "restarts": layout.restarts}


def sweep_run_files():
    """The layer sweep's packs; at the study's own site these are the experiment's packs."""
    sweep = config["layer_sweep"]
    return [
        path
        for site in study.sweep_sites(config)
        for experiment in sweep["experiments"]
        for path in run_files(experiment, site.tag)
    ]


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
    if EXPERIMENTS:
        outputs += ["results/summary.png", "results/comparison.md"]
    if "experiment4" in EXPERIMENTS:
        outputs.append("results/experiment4_transition.png")
    if "ablation" in EXPERIMENTS and "experiment1" in EXPERIMENTS:
        outputs += ["results/ablation.png", "results/ablation.md"]
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
