"""What a study config means, and the checks its JSON schema cannot express.

The schema (`schemas/config.schema.yaml`) checks keys, types and ranges; `check_config` adds
the relations between keys and, given the model's config.json, the model's own limits. Every
error names the key and the fix.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import socket
from collections.abc import Callable
from pathlib import Path, PurePath
from urllib.parse import urlparse

from .runs import Layout, RunId
from .sites import Site, SiteError, check_site, site_entry
from .targets import EXPERIMENTS

FIXED_CONDITION = {"experiment1": "real", "experiment2a": "matched", "experiment2b": "isotropic"}


class ConfigError(ValueError):
    """A study config that cannot run."""


def _site_entries(config: dict):
    """(key, list or dict holding it, index or key) of every site entry of a config."""
    yield "site", config, "site"
    for section in ("layer_sweep", "perturbation"):
        for i, _ in enumerate(config.get(section, {}).get("sites", []) or []):
            yield f"{section}.sites[{i}]", config[section]["sites"], i


def expand_site_names(config: dict) -> None:
    """TransformerLens names (e.g. blocks.5.hook_resid_post) -> {kind, layer}, in place, before
    the schema checks the config."""
    for key, holder, where in _site_entries(config):
        if isinstance(holder.get(where) if isinstance(holder, dict) else holder[where], str):
            try:
                holder[where] = site_entry(holder[where])
            except SiteError as error:
                raise ConfigError(f"{key}: {error}") from None


def resolve_last_layers(config: dict, n_layers: int | None) -> None:
    """layer: last -> the model's number of blocks, in place."""
    for key, holder, where in _site_entries(config):
        entry = holder[where]
        if entry["layer"] == "last":
            if n_layers is None:
                raise ConfigError(f"{key}.layer: last needs the model's config.json, which is not available here "
                                  f"(no local copy, no network): give the layer as a number")
            entry["layer"] = n_layers


def site_of(config: dict) -> Site:
    return Site(config["site"]["kind"], int(config["site"]["layer"]))


def exact_name(value: float) -> str:
    """`value` as short as it reads back exactly: 0.25 -> '0.25', 1.0 -> '1', but
    0.1000001 -> '0.1000001' (never rounded, so two values never share a name)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def conditions(config: dict, experiment: str) -> list[str]:
    """Condition names of an experiment: 'real', 'matched', 'isotropic', 'a0.5', 'f0.3'."""
    spec = config["experiments"][experiment]
    if experiment == "experiment3":
        return [f"a{exact_name(alpha)}" for alpha in spec["alphas"]]
    if experiment == "experiment4":
        return [f"f{exact_name(f)}" for f in spec["fractions"]]
    if experiment == "ablation":
        return [f"no_{component}" for component in spec["components"]]
    if experiment == "hard_prompt":
        return ["text"]
    return [FIXED_CONDITION[experiment]]


ABLATED = {"no_ffn": "ffn", "no_attention": "attention"}


def variants(runs: list[RunId]) -> dict[str | None, list[int]]:
    """A pack's runs by model variant (the ablation's component, else None): each variant is
    optimised in its own batches."""
    out: dict[str | None, list[int]] = {}
    for i, run in enumerate(runs):
        out.setdefault(ABLATED.get(run.condition), []).append(i)
    return out


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


def uses_experiment_spec(config: dict, experiment: str, site_tag: str) -> bool:
    """At the study's site an enabled experiment runs as configured; anywhere else (the layer
    sweep's sites) it runs with the sweep's targets and restarts."""
    return site_tag == site_of(config).tag and config["experiments"][experiment]["enabled"]


def layout(config: dict, experiment: str, site_tag: str) -> Layout:
    """How the experiment's runs at a site are numbered (see runs.py)."""
    if uses_experiment_spec(config, experiment, site_tag):
        spec = config["experiments"][experiment]
        return Layout(tuple(conditions(config, experiment)), spec["restarts"])
    return Layout((FIXED_CONDITION[experiment],), config["layer_sweep"]["restarts"])


def targets_at(config: dict, experiment: str, site_tag: str) -> int:
    """How many targets the experiment has at a site (Exp 3: pairs)."""
    if uses_experiment_spec(config, experiment, site_tag):
        return n_targets(config, experiment)
    return config["layer_sweep"]["n_targets"]


def enabled_experiments(config: dict) -> list[str]:
    return [e for e in EXPERIMENTS if config["experiments"][e]["enabled"]]


def digest(value: object) -> str:
    """A short stable hash of JSON-able `value`."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def non_finite(value, key: str = "") -> list[str]:
    """The dotted keys of every float in a config that is NaN or infinite (YAML's .nan, .inf)."""
    if isinstance(value, dict):
        return [k for name, v in value.items() for k in non_finite(v, f"{key}.{name}" if key else str(name))]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in non_finite(v, f"{key}[{i}]")]
    return [key] if isinstance(value, float) and not math.isfinite(value) else []


def check_config(config: dict, model_config=None) -> None:
    """Raise ConfigError for relations the schema cannot check (model limits if given)."""
    bad = non_finite(config)
    if bad:
        raise ConfigError(f"{', '.join(bad)}: must be a finite number (not .nan or .inf): set a finite value")
    exps = config["experiments"]
    pool = config["pool_size"]
    real = exps["experiment1"]["n_targets"]
    for name in ("experiment1", "experiment2a", "experiment2b", "experiment4", "ablation", "hard_prompt"):
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
    if exps["hard_prompt"]["enabled"] and (not exps["experiment1"]["enabled"] or exps["hard_prompt"]["n_targets"] > real):
        raise ConfigError(
            f"experiments.hard_prompt.n_targets = {exps['hard_prompt']['n_targets']} needs as many of Exp 1's "
            f"targets (experiments.experiment1: enabled, n_targets = {real}): hard prompts are compared target "
            f"by target with Exp 1's soft prompts"
        )
    extend = config["optimizer"]["extend_steps"]
    if extend is not None and extend <= config["optimizer"]["steps"]:
        raise ConfigError(f"optimizer.extend_steps = {extend} must exceed optimizer.steps = "
                          f"{config['optimizer']['steps']} (or be null: no step budget to decide)")
    sweep = config["layer_sweep"]
    if sweep["enabled"] and sweep["n_targets"] > pool:
        raise ConfigError(f"layer_sweep.n_targets = {sweep['n_targets']} is above pool_size = {pool}")
    if sweep["enabled"] and site_of(config) in sweep_sites(config):
        for name in sweep["experiments"]:
            spec = exps[name]
            if spec["enabled"] and (spec["n_targets"] < sweep["n_targets"] or spec["restarts"] < sweep["restarts"]):
                raise ConfigError(
                    f"layer_sweep reads experiments.{name}'s runs at the study's site {site_of(config)}, but "
                    f"layer_sweep.n_targets = {sweep['n_targets']} and layer_sweep.restarts = {sweep['restarts']} "
                    f"exceed that experiment's n_targets = {spec['n_targets']} or restarts = {spec['restarts']}: "
                    f"lower the sweep's, or raise the experiment's"
                )
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
    d_model = getattr(model_config, "hidden_size", None)
    uses_2a = config["experiments"]["experiment2a"]["enabled"] or (
        config["layer_sweep"]["enabled"] and "experiment2a" in config["layer_sweep"]["experiments"])
    if uses_2a and d_model is not None and config["pool_size"] < d_model + 1:
        raise ConfigError(
            f"pool_size = {config['pool_size']} is too small for Exp 2a: each position's covariance over "
            f"{config['pool_size']} sequences in {d_model} dimensions is rank-deficient (it needs at least "
            f"{d_model + 1}; the agenda asks for 1000 or more): raise pool_size, or disable experiment2a"
        )
    limit = int(model_config.max_position_embeddings)
    if config["seq_len"] > limit:
        raise ConfigError(
            f"seq_len = {config['seq_len']} is above the model's context of {limit} tokens: lower seq_len"
        )


def offline_message(name: str, revision: str | None, error: object) -> str:
    """What to do when a model is neither a local directory nor reachable on the hub."""
    rev = f" at revision {revision!r}" if revision else ""
    return (
        f"could not load model {name!r}{rev}: it is not a local directory, and the Hugging Face hub "
        f"could not provide it (offline, a wrong id, or a missing revision) and no cached copy "
        f"exists. Fix: set model.name to a local directory holding config.json and *.safetensors "
        f"(e.g. made by `hf download {name} --local-dir DIR` on a machine with network), or set "
        f"HF_HOME to a cache that holds it, or HF_ENDPOINT to a reachable mirror. ({error})"
    )


def local_data_files(config: dict, resolve: Callable[[str], str] = str) -> list[str]:
    """The local files `dataset.data_files` names (globs expanded; URLs left out), resolved."""
    files = config["dataset"]["data_files"]
    if files is None:
        return []
    patterns = [files] if isinstance(files, str) else files
    return sorted({f for p in patterns if "://" not in p for f in glob.glob(resolve(p))})


def check_dataset(config: dict, resolve: Callable[[str], str] = str) -> None:
    """Local data files must exist, and the split must be one that plain files have."""
    files = config["dataset"]["data_files"]
    if files is None:
        return
    patterns = [files] if isinstance(files, str) else files
    missing = [p for p in patterns if "://" not in p and not glob.glob(resolve(p))]
    if missing:
        raise ConfigError(
            f"dataset.data_files: {missing} matches no file (a relative path is read from the working "
            f"directory, else from the workflow's folder): correct the path"
        )
    split = config["dataset"]["split"]
    if split.split("[")[0] != "train":
        raise ConfigError(
            f"dataset.split = {split!r}, but data files given by dataset.data_files form one split, "
            f"'train' (as `datasets` names it): set dataset.split: train"
        )


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Can this machine open a connection to the Hugging Face hub (HF_ENDPOINT if set)?"""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout_s).close()
    except OSError:
        return False
    return True


def check_hub(config: dict, model_is_local: bool, pool_exists: bool) -> None:
    """Before any job runs: what the study still needs from the hub must be reachable, else
    say so now (instead of a job retrying the hub for a minute and failing)."""
    needs = []
    if not model_is_local:
        needs.append(offline_message(config["model"]["name"], config["model"]["revision"], "hub unreachable"))
    dataset = config["dataset"]
    remote = dataset["data_files"] is None and not Path(dataset["path"]).exists()
    if not pool_exists and remote and os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("1", "true", "yes"):
        needs.append(
            f"dataset.path = {dataset['path']!r} is loaded from the Hugging Face hub. Fix: set dataset.path "
            f"to a local format ('text', 'json', 'parquet') with dataset.data_files pointing at your files, "
            f"or set HF_HOME to a cache that holds the dataset and HF_DATASETS_OFFLINE=1, or HF_ENDPOINT "
            f"to a mirror"
        )
    if needs and not hub_reachable():
        raise ConfigError("the Hugging Face hub is not reachable from this machine, and the study needs it:\n- "
                          + "\n- ".join(needs))


AGENDA_POOL = 1000  # the agenda: Exp 2a's statistics from 1000+ real sequences


def pool_warnings(config: dict, experiment: str) -> list[str]:
    """What a reader of an experiment's metrics should know about its pool."""
    if experiment == "experiment2a" and config["pool_size"] < AGENDA_POOL:
        return [f"Exp 2a's per-position statistics come from pool_size = {config['pool_size']} sequences; the agenda "
                f"asks for at least {AGENDA_POOL}"]
    return []


def budget_status(path: str, optimizer: dict) -> str:
    """One line on the step budget: pending until Exp 1 has decided it, then the decision."""
    if not Path(path).exists():
        return (f"step budget: pending. Exp 1 runs {optimizer['steps']} steps first; if its loss curves still "
                f"fall, every experiment runs {optimizer['extend_steps']} (the agenda's rule), else {optimizer['steps']}")
    from .storage import read_json

    budget = read_json(path)
    return f"step budget: {budget['steps']} steps. {budget['reason']}"
