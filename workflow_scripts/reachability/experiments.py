"""The experiments: one record each, and every stage reads them from here (torch-free).

A record says everything the study needs to know about one experiment: its config key (and
results folder, and Snakemake wildcard value), how tables and figures name it, its conditions,
how its targets are made, which runs share their initial prompts, which model variant and which
method a condition runs with, whether its solutions are analysed, whether the layer sweep may
run it, the relations its settings keep with other experiments', and which lines of the
interpretation guide it answers. Adding an experiment is adding a record (a test registers a
toy one and a dry run plans its packs, aggregation and figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import targets as T

Targets = Callable[[str, list[int], np.ndarray, dict], list[np.ndarray]]  # (condition, ids, real, stats) -> targets


def exact_name(value: float) -> str:
    """`value` as short as it reads back exactly: 0.25 -> '0.25', 1.0 -> '1', but
    0.1000001 -> '0.1000001' (never rounded, so two values never share a name)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def condition_value(condition: str) -> float:
    """'a0.25' -> 0.25, 'f0.3' -> 0.3."""
    return float(condition[1:])


def fixed(name: str) -> Callable[[dict], list[str]]:
    """The conditions of an experiment with one condition."""
    return lambda spec: [name]


def valued(prefix: str, key: str) -> Callable[[dict], list[str]]:
    """One condition per value of the spec's list `key` ('a0.25' for α = 0.25)."""
    return lambda spec: [f"{prefix}{exact_name(v)}" for v in spec[key]]


@dataclass(frozen=True)
class Experiment:
    name: str  # config key, results folder and wildcard value
    label: str  # how tables, figures and the report name it
    conditions: Callable[[dict], list[str]]  # its config spec -> its condition names
    targets: Targets  # how a condition's targets are made from the pool's residuals
    count: str = "n_targets"  # the spec key that counts its targets (Exp 3 counts pairs)
    axis: str | None = None  # what a condition's value is ('α'): labels read 'Exp 3 α=0.5'
    shared_prompts: Callable[[str, str, int, int], tuple] | None = None  # (name, condition, target, restart) -> seed parts
    variant: Callable[[str], str | None] = lambda condition: None  # the model variant a condition runs on
    method: Callable[[str], str] = lambda condition: "soft"  # how a condition's runs move (methods.py)
    method_settings: Callable[[dict, str], dict] = lambda spec, condition: {}  # that method's settings (its own
    #                 `steps` among them, where it runs other than the step budget)
    analysed: bool = True  # its solutions get the manifold and functional analyses
    sweepable: bool = False  # the layer sweep may run it
    gaussian: bool = False  # its targets are drawn from the pool's per-position Gaussian (needs a large pool)
    sources: Callable[[int], list[int]] = lambda target: []  # the pool sequences a target is made from
    exp1: str = ""  # how it relates to Exp 1's targets: 'reuses' them, is 'compared' with Exp 1 when both
    #                 run, or 'requires' Exp 1 to run
    exp1_targets: Callable[[dict], int] = lambda spec: 0  # how many of Exp 1's targets its settings use
    exp1_relation: str = ""  # the error when they use more ({uses}, {real}: Exp 1's n_targets)
    findings: tuple = ()  # its lines of the interpretation guide: (a function of guide.py, its arguments)
    outputs: tuple[str, ...] = ()  # the rules that make its own tables and figures (rules/*.smk)

    def prompt_seed(self, condition: str, target: int, restart: int) -> tuple:
        """The identity a run's initial prompt is seeded from: its own, unless it shares one
        with the runs it is compared with pairwise."""
        if self.shared_prompts is not None:
            return self.shared_prompts(self.name, condition, target, restart)
        return ("prompt", self.name, condition, target, restart)

    def label_of(self, condition: str) -> str:
        """'Exp 1 real', 'Exp 3 α=0.5'."""
        return f"{self.label} {self.axis}={condition[1:]}" if self.axis else f"{self.label} {condition}"


def across_conditions(name: str, condition: str, target: int, restart: int) -> tuple:
    """Every condition of one target (and restart) starts from the same prompt."""
    return ("prompt", name, target, restart)


def as_exp1(name: str, condition: str, target: int, restart: int) -> tuple:
    """Exp 1's prompt for the same target and restart (the ablation is compared with it pairwise)."""
    return ("prompt", "experiment1", "real", target, restart)


ABLATED = {"no_ffn": "ffn", "no_attention": "attention"}
BASELINE = "experiment1"  # the real activations: the others reuse its targets or compare with it

REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    REGISTRY[experiment.name] = experiment
    return experiment


register(Experiment(
    "experiment1", "Exp 1", fixed("real"), T.real, sweepable=True, sources=lambda t: [t],
    findings=("all_converge", "experiment1", "real")))
register(Experiment(
    "experiment2a", "Exp 2a", fixed("matched"), T.distribution_matched_targets, sweepable=True, gaussian=True,
    findings=("similar_to", "Exp 2a ≈ Exp 1", ("experiment1", "real"), ("experiment2a", "matched"))))
register(Experiment(
    "experiment2b", "Exp 2b", fixed("isotropic"), T.isotropic_targets, sweepable=True,
    findings=("much_worse_or_similar", "Exp 2b much worse than 2a", "Exp 2b ≈ Exp 2a", ("experiment2a", "matched"),
              ("experiment2b", "isotropic"))))
register(Experiment(
    "experiment3", "Exp 3", valued("a", "alphas"), T.interpolated, count="n_pairs", axis="α",
    shared_prompts=across_conditions, exp1="reuses", exp1_targets=lambda spec: 2 * spec["n_pairs"],
    sources=lambda pair: list(T.pair_of(pair)),
    exp1_relation="needs {uses} of Exp 1's targets but experiments.experiment1.n_targets = {real}: raise it or lower "
                  "n_pairs", findings=("interpolation", "experiment3"),
    outputs=("plot_reachability_curves",)))
register(Experiment(
    "experiment4", "Exp 4", valued("f", "fractions"), T.replaced, axis="f", shared_prompts=across_conditions,
    sources=lambda t: [t],
    exp1="reuses", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="must not exceed experiments.experiment1.n_targets = {real}: Exp 4 corrupts Exp 1's targets",
    findings=("replacement", "experiment4"),
    outputs=("plot_transition",)))
register(Experiment(
    "ablation", "Ablation", lambda spec: [f"no_{c}" for c in spec["components"]], T.real, shared_prompts=as_exp1,
    variant=ABLATED.get, analysed=False, exp1="compared", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="must not exceed experiments.experiment1.n_targets = {real}: the ablation is compared target by "
                  "target with Exp 1", findings=("variants", "ablation", ("experiment1", "real")),
    outputs=("ablation_table", "plot_ablation")))
def same_tokens(name: str, condition: str, target: int, restart: int) -> tuple:
    """Every method of one target and restart starts from the same tokens (PEZ's, as they were
    before GCG joined: the seed of the condition once called 'text')."""
    return ("prompt", name, "text", target, restart)


register(Experiment(
    "hard_prompt", "Hard prompt", lambda spec: list(spec["methods"]), T.real, shared_prompts=same_tokens,
    method=lambda condition: condition, method_settings=lambda spec, condition: dict(spec.get(condition, {})),
    analysed=False, exp1="requires", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="needs as many of Exp 1's targets (experiments.experiment1: enabled, n_targets = {real}): hard "
                  "prompts are compared target by target with Exp 1's soft prompts",
    findings=("methods", "hard_prompt", ("experiment1", "real")),
    outputs=("hard_prompts", "plot_hard_prompts")))


def get(name: str) -> Experiment:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; known: {list(REGISTRY)}") from None


def names() -> list[str]:
    return list(REGISTRY)


def make_targets(name: str, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> np.ndarray:
    """Targets [len(ids), S, d] of one condition of an experiment, by its record's builder."""
    out = get(name).targets(condition, list(ids), residuals, stats)
    return np.stack(out).astype(np.float32) if out else np.empty((0, *residuals.shape[1:]), np.float32)
