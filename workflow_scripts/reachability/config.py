"""What a study config means, and the checks its JSON schema cannot express.

The schema (`schemas/config.schema.yaml`) checks keys, types and ranges; `check_config` adds
the relations between keys and, given the model's config.json, the model's own limits. Every
error names the key and the fix.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePath

from .sites import Site, SiteError, check_site
from .targets import EXPERIMENTS

FIXED_CONDITION = {"experiment1": "real", "experiment2a": "matched", "experiment2b": "isotropic"}


class ConfigError(ValueError):
    """A study config that cannot run."""


def site_of(config: dict) -> Site:
    return Site(config["site"]["kind"], int(config["site"]["layer"]))


def conditions(config: dict, experiment: str) -> list[str]:
    """Condition names of an experiment: 'real', 'matched', 'isotropic', 'a0.5', 'f0.3'."""
    spec = config["experiments"][experiment]
    if experiment == "experiment3":
        return [f"a{alpha:g}" for alpha in spec["alphas"]]
    if experiment == "experiment4":
        return [f"f{f:g}" for f in spec["fractions"]]
    if experiment == "ablation":
        return [f"no_{component}" for component in spec["components"]]
    return [FIXED_CONDITION[experiment]]


ABLATED = {"no_ffn": "ffn", "no_attention": "attention"}


def sites_of(entries: list[dict]) -> list[Site]:
    return [Site(e["kind"], int(e["layer"])) for e in entries]


def sweep_sites(config: dict) -> list[Site]:
    return sites_of(config["layer_sweep"]["sites"]) if config["layer_sweep"]["enabled"] else []


def perturbation_sites(config: dict) -> list[Site]:
    """The configured sites, plus the study's own site (where reachability errors are placed)."""
    sites = sites_of(config["perturbation"]["sites"])
    return sites + [site_of(config)] if site_of(config) not in sites else sites


def n_targets(config: dict, experiment: str) -> int:
    """Targets per condition (Exp 3 counts pairs)."""
    spec = config["experiments"][experiment]
    return spec["n_pairs"] if experiment == "experiment3" else spec["n_targets"]


def enabled_experiments(config: dict) -> list[str]:
    return [e for e in EXPERIMENTS if config["experiments"][e]["enabled"]]


def digest(value: object) -> str:
    """A short stable hash of JSON-able `value`."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def check_config(config: dict, model_config=None) -> None:
    """Raise ConfigError for relations the schema cannot check (model limits if given)."""
    exps = config["experiments"]
    pool = config["pool_size"]
    real = exps["experiment1"]["n_targets"]
    for name in ("experiment1", "experiment2a", "experiment2b", "experiment4", "ablation"):
        if exps[name]["n_targets"] > pool:
            raise ConfigError(
                f"experiments.{name}.n_targets = {exps[name]['n_targets']} is above "
                f"pool_size = {pool}: raise pool_size or lower n_targets"
            )
    if exps["experiment4"]["enabled"] and exps["experiment4"]["n_targets"] > real:
        raise ConfigError(
            f"experiments.experiment4.n_targets = {exps['experiment4']['n_targets']} must not exceed "
            f"experiments.experiment1.n_targets = {real}: Exp 4 corrupts Exp 1's targets"
        )
    if exps["experiment3"]["enabled"] and 2 * exps["experiment3"]["n_pairs"] > real:
        raise ConfigError(
            f"experiments.experiment3.n_pairs = {exps['experiment3']['n_pairs']} needs "
            f"{2 * exps['experiment3']['n_pairs']} of Exp 1's targets but "
            f"experiments.experiment1.n_targets = {real}: raise it or lower n_pairs"
        )
    if exps["ablation"]["enabled"] and exps["experiment1"]["enabled"] and exps["ablation"]["n_targets"] > real:
        raise ConfigError(
            f"experiments.ablation.n_targets = {exps['ablation']['n_targets']} must not exceed "
            f"experiments.experiment1.n_targets = {real}: the ablation is compared target by target with Exp 1"
        )
    sweep = config["layer_sweep"]
    if sweep["enabled"] and sweep["n_targets"] > pool:
        raise ConfigError(f"layer_sweep.n_targets = {sweep['n_targets']} is above pool_size = {pool}")
    perturb = config["perturbation"]
    if perturb["enabled"] and perturb["token_index"] >= config["seq_len"]:
        raise ConfigError(
            f"perturbation.token_index = {perturb['token_index']} is outside the sequence of "
            f"seq_len = {config['seq_len']} tokens: choose 0..{config['seq_len'] - 1}"
        )
    if perturb["enabled"] and perturb["n_sequences"] > pool:
        raise ConfigError(f"perturbation.n_sequences = {perturb['n_sequences']} is above pool_size = {pool}")
    build = config["model"]["build"]
    if build and not is_inside_workdir(config["model"]["name"]):
        raise ConfigError(
            f"model.name = {config['model']['name']!r} is where model.build writes the demo model: "
            f"it must be a relative path inside the working directory, without '..'"
        )
    if model_config is not None:
        check_model_limits(config, model_config)


def is_inside_workdir(path: str) -> bool:
    parts = PurePath(path).parts
    return bool(parts) and not PurePath(path).is_absolute() and ".." not in parts


def check_model_limits(config: dict, model_config) -> None:
    """Site layer and seq_len against the model's config.json (no weights needed)."""
    named = [("site", site_of(config))]
    named += [("layer_sweep.sites", s) for s in sweep_sites(config)]
    if config["perturbation"]["enabled"]:
        named += [("perturbation.sites", s) for s in sites_of(config["perturbation"]["sites"])]
    for key, site in named:
        try:
            check_site(site, model_config.num_hidden_layers)
        except SiteError as error:
            raise ConfigError(f"{key}: {error}") from None
    limit = int(model_config.max_position_embeddings)
    if config["seq_len"] > limit:
        raise ConfigError(
            f"seq_len = {config['seq_len']} is above the model's context of {limit} tokens: lower seq_len"
        )
