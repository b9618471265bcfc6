"""Run the real Snakefile in a scratch directory, as users do."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def demo_config(**changes) -> dict:
    """demo.yaml with `changes` applied; keys are dotted paths ('optimizer.steps')."""
    config = yaml.safe_load((ROOT / "demo.yaml").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return config


DELETE = object()


def study_runs(config: dict) -> dict[str, int]:
    """Each enabled experiment's runs at the study's site, from the registry and the config:
    targets x conditions (across methods) x restarts."""
    from reachability import study

    config = validated(config)
    site = study.site_of(config).tag
    return {e: study.targets_at(config, e, site) * study.layout(config, e, site).runs_per_target
            for e in study.enabled_experiments(config)}


def study_packs(config: dict) -> int:
    """How many optimisation packs the study's own model plans: its experiments at its site and the
    layer sweep's at each other site."""
    from reachability import study
    from reachability.runs import pack_bounds

    config, per_job = validated(config), config["engine"]["runs_per_job"]
    packs = sum(len(pack_bounds(n, per_job)) for n in study_runs(config).values())
    for site in study.sweep_sites(config):
        if site != study.site_of(config):
            packs += sum(len(pack_bounds(study.targets_at(config, e, site.tag) * study.layout(config, e, site.tag)
                                         .runs_per_target, per_job)) for e in config["layer_sweep"]["experiments"])
    return packs


def validated(config: dict) -> dict:
    """`config` as the Snakefile takes it: site names read, checked against the schema and each
    record's section, every default filled in (in place)."""
    from reachability import experiments, validation

    return validation.validated(config, experiments)

AGENDA_ONLY = {  # the demo without the beyond-the-agenda analyses (fewer jobs, same agenda numbers)
    "experiments.ablation.enabled": False, "layer_sweep.enabled": False,
    "analysis.enabled": False, "perturbation.enabled": False,
    "experiments.hard_prompt.enabled": False, "compare.models": [], "experiments.prefix_steering.enabled": False,
    "experiments.experiment4p.enabled": False,
}


def snakemake_command(workdir: Path, config: dict, *args: str) -> list[str]:
    """The command line that runs the Snakefile in `workdir` with `config` (written there)."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "study.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--configfile", str(path), *args]


def snakemake(workdir: Path, config: dict, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_command(workdir, config, *args), capture_output=True, text=True, timeout=timeout)


def planned_jobs(result: subprocess.CompletedProcess) -> dict[str, int]:
    """Rule -> job count from a dry run's 'Job stats' table ({} when nothing is to be done)."""
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    counts.pop("total", None)
    return {rule: int(n) for rule, n in counts.items()}


def planned_outputs(result: subprocess.CompletedProcess, rule: str) -> list[str]:
    """The output files of every job of `rule` in a dry run."""
    text = result.stdout + result.stderr
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", text)
    outs = []
    for block in blocks:
        if re.match(rf"(?:local)?rule {rule}:", block.strip()):
            match = re.search(r"^\s+output: (.+)$", block, flags=re.M)
            if match:
                outs += [o.strip() for o in match.group(1).split(",")]
    return outs
