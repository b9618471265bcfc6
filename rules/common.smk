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
POOL = "results/pool/tokens.h5"
CACHE = f"results/cache/{SITE}/pool_residuals.h5"


wildcard_constraints:
    experiment="experiment(1|2a|2b|3|4)",
    condition=r"real|matched|isotropic|a-?[0-9.e+-]+|f[0-9.e+-]+",
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


def shard_files(experiment):
    """Every run shard of an experiment: condition x restart x target block."""
    spec = config["experiments"][experiment]
    blocks = target_blocks(
        study.n_targets(config, experiment), config["engine"]["runs_per_job"]
    )
    return [
        f"results/{experiment}/runs/{condition}/r{restart}_{block_name(*block)}.h5"
        for condition in study.conditions(config, experiment)
        for restart in range(spec["restarts"])
        for block in blocks
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
    return outputs
