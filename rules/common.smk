import sys
from pathlib import Path
from types import SimpleNamespace

from snakemake.utils import min_version, validate

min_version("9.0")

# The library lives beside the scripts; Snakemake adds that folder to each script's path.
sys.path.insert(0, str(Path(workflow.basedir) / "workflow_scripts"))
from reachability import config as study  # noqa: E402
from reachability.runs import block_name, target_blocks  # noqa: E402

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


study.check_config(config, model_config())

SITE = study.site_of(config).tag
EXPERIMENTS = study.enabled_experiments(config)
# the ablation's runs are on another model: no manifold/functional analysis of them
ANALYSED = [e for e in EXPERIMENTS if e != "ablation"]
POOL = "results/pool/tokens.h5"
CACHE = "results/cache/{site}/pool_residuals.h5"
TARGETS = "results/targets/{site}/{experiment}/{condition}/{block}.h5"
RUNS = "results/{experiment}/runs/{site}/{condition}/r{restart}_{block}.h5"


wildcard_constraints:
    experiment=r"experiment(1|2a|2b|3|4)|ablation",
    condition=r"real|matched|isotropic|no_ffn|no_attention|a-?[0-9.e+-]+|f[0-9.e+-]+",
    site=r"(hs|block)\d+",
    restart=r"\d+",
    block=r"t\d+-\d+",


def canonical(value):
    """`value` with dict keys sorted, so reordering a config file is no reason to rerun
    (Snakemake compares params as written)."""
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value)}
    return value


def model_files():
    """The model directory when the workflow builds it (demo), else nothing to wait for."""
    return [config["model"]["name"]] if config["model"]["build"] else []


def data_files():
    files = config["dataset"]["data_files"]
    if files is None:
        return None
    return (
        [local_path(f) for f in files] if isinstance(files, list) else local_path(files)
    )


def shard_files(experiment, site=SITE, n_targets=None, restarts=None):
    """Every run shard of an experiment at a site: condition x restart x target block
    (the experiment's own n_targets and restarts unless given, as the layer sweep does).
    """
    n_targets = n_targets or study.n_targets(config, experiment)
    restarts = restarts or config["experiments"][experiment]["restarts"]
    blocks = target_blocks(n_targets, config["engine"]["runs_per_job"])
    return [
        RUNS.format(
            experiment=experiment,
            site=site,
            condition=condition,
            restart=restart,
            block=block_name(*block),
        )
        for condition in study.conditions(config, experiment)
        for restart in range(restarts)
        for block in blocks
    ]


def target_files(experiment):
    """The target blocks of an experiment at the study's site."""
    blocks = target_blocks(
        study.n_targets(config, experiment), config["engine"]["runs_per_job"]
    )
    return [
        TARGETS.format(
            site=SITE, experiment=experiment, condition=condition, block=block_name(*b)
        )
        for condition in study.conditions(config, experiment)
        for b in blocks
    ]


def sweep_shard_files():
    """The layer sweep's shards; at the study's own site it reads the experiment's shards
    when they cover the sweep's targets and restarts, instead of computing them again.
    """
    sweep = config["layer_sweep"]
    paths = []
    for site in study.sweep_sites(config):
        for experiment in sweep["experiments"]:
            spec = config["experiments"][experiment]
            covered = (
                site.tag == SITE
                and experiment in EXPERIMENTS
                and spec["n_targets"] >= sweep["n_targets"]
                and spec["restarts"] >= sweep["restarts"]
            )
            paths += (
                shard_files(experiment)
                if covered
                else shard_files(
                    experiment, site.tag, sweep["n_targets"], sweep["restarts"]
                )
            )
    return paths


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
