"""The checks a study config must pass beyond its JSON schema, before any job (torch-free).

The schema (`schemas/config.schema.yaml`, with each experiment's and each method's section
added from their registries: `schema`) checks keys, types and ranges and fills in defaults
(`validate`); here come the site names it cannot read (TransformerLens aliases, `layer: last`),
every float's finiteness, the relations between keys — the experiments' own with each other,
from the registry, which the caller passes in — and, given the model's config.json, the model's
own limits. Every error names the key and the fix.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path, PurePath

import yaml

from .runs import method_records
from .sites import SiteError, check_site, site_entry
from .study import site_of, sites_of, size, sweep_sites


class ConfigError(ValueError):
    """A study config that cannot run."""


SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"  # the study's, in the checkout
MAX_LR = 100.0
OUTPUT_TREES = ("results", "resources")  # where a study writes; nothing outside them is ever replaced
BUILT = "built_by_reachability.json"  # in a model folder the workflow built (model.build): its spec


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


def non_finite(value, key: str = "") -> list[str]:
    """The dotted keys of every float in a config that is NaN or infinite (YAML's .nan, .inf)."""
    if isinstance(value, dict):
        return [k for name, v in value.items() for k in non_finite(v, f"{key}.{name}" if key else str(name))]
    if isinstance(value, list):
        return [k for i, v in enumerate(value) for k in non_finite(v, f"{key}[{i}]")]
    return [key] if isinstance(value, float) and not math.isfinite(value) else []


def schema(path: str | Path, registry) -> dict:
    """The study's schema: the file's, with each experiment's section from its record, each
    method's settings from its class, and the experiments the layer sweep and the comparison
    may name."""
    out = yaml.safe_load(Path(path).read_text())
    top = out["properties"]
    top["experiments"]["properties"] = registry.schema()
    top["methods"]["properties"] = {name: {"type": "object", "additionalProperties": False, "default": {},
                                           "properties": m["settings"]} for name, m in method_records().items()}
    swept = [n for n in registry.names() if registry.get(n).sweepable]
    top["layer_sweep"]["properties"]["experiments"]["items"] = {"enum": swept}
    top["compare"]["properties"]["experiments"]["items"] = {"enum": registry.names()}
    return out


def validate(config: dict, schema: dict) -> None:
    """Check `config` against `schema`, filling in every default (in place), as Snakemake's
    validate does with a schema file: the first error names its key."""
    from jsonschema import Draft202012Validator, validators

    def with_defaults(validator, properties, instance, subschema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance, subschema)

    for error in validators.extend(Draft202012Validator, {"properties": with_defaults})(schema).iter_errors(config):
        key = ".".join(str(k) for k in error.absolute_path) or "the config"
        raise ConfigError(f"{key}: {error.message}: correct it (schemas/config.schema.yaml and each record's own keys "
                          f"say what is allowed)")


def validated(config: dict, registry, path: str | Path = SCHEMA) -> dict:
    """`config`, in place: its site names read, checked against the study's schema (each
    record's section added), every default filled in. (Relations and the model's limits are
    `check_config`'s.)"""
    expand_site_names(config)
    validate(config, schema(path, registry))
    return config


def check_experiments(config: dict, registry) -> None:
    """Every experiment known; its targets within the pool; the relations it keeps with Exp 1."""
    specs, pool = config["experiments"], config["pool_size"]
    unknown = sorted(set(specs) - set(registry.names()))
    if unknown:
        raise ConfigError(f"experiments.{unknown[0]} is not an experiment this tool knows ({registry.names()}): "
                          f"correct the name")
    baseline = specs[registry.BASELINE]
    real = baseline["n_targets"]
    for name, spec in specs.items():
        record = registry.get(name)
        if record.count == "n_targets" and spec["n_targets"] > pool:
            raise ConfigError(f"experiments.{name}.n_targets = {spec['n_targets']} is above pool_size = {pool}: "
                              f"raise pool_size or lower n_targets")
        missing = [path for path in record.inputs(spec) if spec["enabled"] and not Path(path).is_file()]
        if missing:
            key = next((k for k, v in spec.items() if v == missing[0]), "")
            raise ConfigError(f"experiments.{name}.{key} = {missing[0]} is not a file (relative paths are read from the "
                              f"directory Snakemake runs in): give the path of the file")
        beyond = [p for p in spec.get("positions", []) if p >= config["seq_len"]]
        if beyond:
            raise ConfigError(f"experiments.{name}.positions holds {beyond[0]}, beyond seq_len = {config['seq_len']}: "
                              f"positions count from 0")
        if spec["enabled"]:
            try:
                record.consistent(spec, config)
            except ValueError as error:
                raise ConfigError(f"experiments.{name}.{error}") from None
        if not spec["enabled"] or record.exp1 == "":
            continue
        uses = record.exp1_targets(spec)
        broken = (uses > real and (record.exp1 != "compared" or baseline["enabled"])) or (
            record.exp1 == "requires" and not baseline["enabled"])
        if broken:
            raise ConfigError(f"experiments.{name}.{record.count} = {spec[record.count]} "
                              + record.exp1_relation.format(uses=uses, real=real))


def check_sections(config: dict) -> None:
    """The optimiser's budget, the layer sweep, the perturbation and the built model's folder."""
    pool = config["pool_size"]
    if config["optimizer"]["lr"] > MAX_LR:
        raise ConfigError(f"optimizer.lr = {config['optimizer']['lr']:g} is above {MAX_LR:g}: Adam moves every "
                          f"coordinate of the prompt by about lr per step, far beyond any scale the model has seen; "
                          f"use a step size such as the agenda's 0.01")
    extend = config["optimizer"]["extend_steps"]
    if extend is not None and extend <= config["optimizer"]["steps"]:
        raise ConfigError(f"optimizer.extend_steps = {extend} must exceed optimizer.steps = "
                          f"{config['optimizer']['steps']} (or be null: no step budget to decide)")
    baseline = config["experiments"].get("experiment1", {})
    halted = [m for m in baseline.get("methods", []) if not method_records()[m]["resumes"]]
    if extend is not None and baseline.get("enabled") and halted:
        raise ConfigError(f"experiments.experiment1.methods = {baseline['methods']}: {halted} cannot continue from a "
                          f"saved state, which Exp 1's runs do when its step budget extends (optimizer.extend_steps = "
                          f"{extend}); run them on Exp 1's targets through experiments.hard_prompt, or set "
                          f"optimizer.extend_steps: null")
    if extend is not None and baseline.get("enabled") and baseline.get("steps") is not None:
        raise ConfigError(f"experiments.experiment1.steps = {baseline['steps']}: Exp 1 decides the step budget at "
                          f"optimizer.steps (optimizer.extend_steps = {extend}); set optimizer.steps instead, or "
                          f"optimizer.extend_steps: null to give each experiment its own steps")
    sweep = config["layer_sweep"]
    if sweep["enabled"] and sweep["n_targets"] > pool:
        raise ConfigError(f"layer_sweep.n_targets = {sweep['n_targets']} is above pool_size = {pool}")
    if sweep["enabled"] and site_of(config) in sweep_sites(config):
        for name in sweep["experiments"]:
            spec = config["experiments"][name]
            if spec["enabled"] and (spec["n_targets"] < sweep["n_targets"] or spec["restarts"] < sweep["restarts"]):
                raise ConfigError(
                    f"layer_sweep reads experiments.{name}'s runs at the study's site {site_of(config)}, but "
                    f"layer_sweep.n_targets = {sweep['n_targets']} and layer_sweep.restarts = {sweep['restarts']} "
                    f"exceed that experiment's n_targets = {spec['n_targets']} or restarts = {spec['restarts']}: "
                    f"lower the sweep's, or raise the experiment's")
    perturb = config["perturbation"]
    if perturb["enabled"] and perturb["token_index"] >= config["seq_len"]:
        raise ConfigError(f"perturbation.token_index = {perturb['token_index']} is outside the sequence of "
                          f"seq_len = {config['seq_len']} tokens: choose 0..{config['seq_len'] - 1}")
    if perturb["enabled"] and perturb["n_sequences"] > pool:
        raise ConfigError(f"perturbation.n_sequences = {perturb['n_sequences']} is above pool_size = {pool}")
    if config["model"]["build"]:
        check_built_model_folder(config["model"]["name"])


def check_config(config: dict, registry, model_config=None) -> None:
    """Raise ConfigError for what the schema cannot check (the model's limits, given its config)."""
    bad = non_finite(config)
    if bad:
        raise ConfigError(f"{', '.join(bad)}: must be a finite number (not .nan or .inf): set a finite value")
    check_experiments(config, registry)
    check_sections(config)
    if model_config is not None:
        check_model_limits(config, model_config, registry)


def size_line(config: dict, model_config=None) -> str:
    """The study's size, said before any job, and refused above max_run_steps / max_cache_gib
    (each named, with the flag that raises it)."""
    s = size(config, getattr(model_config, "vocab_size", None))
    work = s["run_steps"] + s["candidate_forwards"] / 2
    d_model = getattr(model_config, "hidden_size", None)
    sites = {site_of(config), *sweep_sites(config)}
    cache = config["pool_size"] * config["seq_len"] * (8 + 4 * len(sites) * (d_model or 0)) / 2**30
    line = (f"study size: {s['runs']:,} runs, at most {s['run_steps']:,} run-steps and {s['candidate_forwards']:,} "
            f"candidate forwards (GCG, the inversion); token pool and residual caches {cache:.3g} GiB"
            + ("" if d_model else " (the residuals not counted: the model's config.json is not available here)")
            + "; `python benchmarks/plan.py --configfile <this config>` projects its time")
    if work > config["max_run_steps"]:
        raise ConfigError(f"{line}. That is above max_run_steps = {config['max_run_steps']:.3g} (a candidate forward "
                          f"counting half): check restarts, n_targets, steps and the condition lists, or raise it "
                          f"with --config max_run_steps={work:.3g}")
    if cache > config["max_cache_gib"]:
        raise ConfigError(f"{line}. That is above max_cache_gib = {config['max_cache_gib']:.3g}: check pool_size, "
                          f"or raise it with --config max_cache_gib={cache:.3g}")
    return line


def is_inside_workdir(path: str) -> bool:
    parts = PurePath(path).parts
    return bool(parts) and not PurePath(path).is_absolute() and ".." not in parts


def check_built_model_folder(name: str) -> None:
    """model.build writes (and Snakemake first deletes) the folder model.name: it must lie in the
    study's own output trees, and be absent or a model this workflow built — never a folder of
    the repository or of the user's."""
    inside = is_inside_workdir(name) and PurePath(name).parts[0] in OUTPUT_TREES and len(PurePath(name).parts) > 1
    if not inside:
        raise ConfigError(f"model.name = {name!r} is where model.build writes the demo model (replacing what is "
                          f"there): it must be a folder under {' or '.join(f'{t}/' for t in OUTPUT_TREES)} of the "
                          f"working directory, e.g. resources/demo-model")
    folder = Path(name)
    if folder.exists() and not (folder / BUILT).is_file():
        raise ConfigError(f"model.name = {name!r} exists and is not a model this workflow built (it has no {BUILT}); "
                          f"model.build would delete it: choose another folder for the built model, or move this one")


def check_model_limits(config: dict, model_config, registry=None) -> None:
    """Site layers, the pool's statistics and seq_len against the model's config.json (no weights)."""
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
    swept = config["layer_sweep"]["experiments"] if config["layer_sweep"]["enabled"] else []
    for name, spec in config["experiments"].items() if registry else ():
        record = registry.get(name)
        if spec["enabled"] and d_model:
            try:
                record.check(spec, d_model)
            except ValueError as error:
                raise ConfigError(str(error)) from None
        if record.gaussian and (spec["enabled"] or name in swept) and d_model and config["pool_size"] < d_model + 1:
            raise ConfigError(
                f"pool_size = {config['pool_size']} is too small for {record.label}: each position's covariance over "
                f"{config['pool_size']} sequences in {d_model} dimensions is rank-deficient (it needs at least "
                f"{d_model + 1}; the agenda asks for 1000 or more): raise pool_size, or disable {name}")
    vocabulary, top_k = getattr(model_config, "vocab_size", None), config["methods"]["gcg"]["top_k"]
    runs_gcg = any(spec["enabled"] and "gcg" in spec["methods"] for spec in config["experiments"].values())
    if vocabulary and runs_gcg and top_k > vocabulary:
        raise ConfigError(f"methods.gcg.top_k = {top_k} is above the model's vocabulary of {vocabulary} tokens: lower it")
    limit = int(model_config.max_position_embeddings)
    if config["seq_len"] > limit:
        raise ConfigError(f"seq_len = {config['seq_len']} is above the model's context of {limit} tokens: lower seq_len")
