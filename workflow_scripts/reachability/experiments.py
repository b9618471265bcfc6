"""The experiments: one record each, and every stage reads them from here (torch-free).

A record says everything the study needs to know about one experiment: its config key (and
results folder, and Snakemake wildcard value), how tables and figures name it, its own config
keys with their defaults (added to the schema before validation), its conditions, how its
targets are made (a builder of targets.py, given the experiment's settings), which runs share
their initial prompts, which model variant a condition runs on, whether its solutions are
analysed, whether the layer sweep may run it, the relations its settings keep with Exp 1's,
which lines of the interpretation guide it answers (functions of guide.py) and which rules
draw its own tables and figures. Every experiment also has `methods` (methods.py: soft, PEZ,
GCG, a norm-bounded prompt, …): each method is an axis of its conditions ('real' for the soft
prompt, 'real/pez' for PEZ). Adding an experiment is adding a record (and its builder); a
job digests only the records it runs (job.code_digest), so an unused record reruns nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import guide
from . import targets as T
from .runs import SOFT, joined, method_records, split

Builder = Callable[[dict, str, list[int], np.ndarray, dict], list[np.ndarray]]  # (its settings, condition, ids,
#                                                                      the pool's residuals, their statistics) -> targets


def exact_name(value: float) -> str:
    """`value` as short as it reads back exactly: 0.25 -> '0.25', 1.0 -> '1', but
    0.1000001 -> '0.1000001' (never rounded, so two values never share a name)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def condition_value(condition: str) -> float:
    """'a0.25' -> 0.25, 'f0.3/pez' -> 0.3."""
    return float(split(condition)[0][1:])


def fixed(name: str) -> Callable[[dict], list[str]]:
    """The conditions of an experiment with one condition."""
    return lambda spec: [name]


def valued(prefix: str, key: str) -> Callable[[dict], list[str]]:
    """One condition per value of the spec's list `key` ('a0.25' for α = 0.25)."""
    return lambda spec: [f"{prefix}{exact_name(v)}" for v in spec[key]]


def values(minimum: float | None = None, maximum: float | None = None, default: list | None = None) -> dict:
    """The schema of a list of distinct numbers (Exp 3's α, Exp 4's f)."""
    bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
    return {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"type": "number", **bounds},
            "default": default}


def count(default: int, description: str = "") -> dict:
    return {"type": "integer", "minimum": 1, "default": default, **({"description": description} if description else {})}


@dataclass(frozen=True)
class Line:
    """One line of the interpretation guide an experiment answers: a function of guide.py, called
    with the metrics, the findings settings, the experiments' labels, this experiment's name and
    `args`."""

    judge: Callable
    args: tuple = ()


@dataclass(frozen=True)
class Experiment:
    name: str  # config key, results folder and wildcard value
    label: str  # how tables, figures and the report name it
    conditions: Callable[[dict], list[str]]  # its settings -> its conditions (before the methods axis)
    targets: Builder  # how a condition's targets are made from the pool's residuals
    settings: dict = field(default_factory=dict)  # its own config keys beyond enabled, count, restarts and
    #                 methods: {key: JSON schema with a default}
    enabled: bool = True  # on by default
    n: int = 100  # targets (Exp 3: pairs) by default
    restarts: int = 5  # restarts by default
    methods: tuple[str, ...] = (SOFT,)  # the methods its conditions run by default
    count: str = "n_targets"  # the config key that counts its targets (Exp 3 counts pairs)
    axis: str | None = None  # what a condition's value is ('α'): labels read 'Exp 3 α=0.5'
    shared_prompts: Callable[[str, str, int, int], tuple] | None = None  # (name, condition, target, restart) ->
    #                 seed parts of a soft start, shared with the runs it is compared with pairwise
    text_seed: str | None = None  # whose random tokens its text methods start from (default: its own)
    variant: Callable[[str], str | None] = lambda condition: None  # the model variant a condition runs on
    analysed: bool = True  # its solutions get the manifold and functional analyses
    sweepable: bool = False  # the layer sweep may run it
    gaussian: bool = False  # its targets are drawn from the pool's per-position Gaussian (needs a large pool)
    sources: Callable[[int], list[int]] = lambda target: []  # the pool sequences a target is made from
    exp1: str = ""  # how it relates to Exp 1's targets: 'reuses' them, is 'compared' with Exp 1 when both
    #                 run, or 'requires' Exp 1 to run
    exp1_targets: Callable[[dict], int] = lambda spec: 0  # how many of Exp 1's targets its settings use
    exp1_relation: str = ""  # the error when they use more ({uses}, {real}: Exp 1's n_targets)
    findings: tuple[Line, ...] = ()  # its lines of the interpretation guide
    outputs: tuple[str, ...] = ()  # the rules that make its own tables and figures (rules/*.smk)
    inputs: Callable[[dict], list[str]] = lambda spec: []  # files its settings name that its targets read
    check: Callable[[dict, int], object] = lambda spec, d_model: None  # its settings against the model's
    #                 width, before any job (raises ValueError naming the key)
    consistent: Callable[[dict, dict], object] = lambda spec, config: None  # its settings against the study's
    #                 (seq_len, its methods), before any job (raises ValueError naming the key)
    prompt: Callable[[dict, int], tuple[int, list[int]]] | None = None  # (spec, seq_len) -> the prompt's
    #                 length P and the positions scored, when a real text follows the prompt (prefix steering)
    forward: bool = False  # its targets need a forward of the model (composed texts), not only the pool's residuals

    def schema(self) -> dict:
        """Its config section: every key, type and default (the study's schema gets it from here)."""
        own = {"enabled": {"type": "boolean", "default": self.enabled},
               self.count: count(self.n), "restarts": count(self.restarts, "random restarts per target"),
               "steps": {"type": ["integer", "null"], "minimum": 1, "default": None,
                         "description": "its own number of steps (the research log's per-experiment counts); null: "
                                        "the study's step budget"},
               "methods": {"type": "array", "minItems": 1, "uniqueItems": True, "default": list(self.methods),
                           "items": {"enum": list(method_records())},
                           "description": "how its runs move (methods.py); each method is an axis of its conditions"},
               **self.settings}
        return {"type": "object", "additionalProperties": False, "default": {}, "properties": own}

    def all_conditions(self, spec: dict) -> list[str]:
        """Its conditions across its methods, method-major: 'real', then 'real/pez', …"""
        return [joined(c, m) for m in spec.get("methods", [SOFT]) for c in self.conditions(spec)]

    def make(self, spec: dict, condition: str, ids: list[int], residuals: np.ndarray, stats: dict) -> np.ndarray:
        """Targets [len(ids), S, d] of one condition (every method of a condition has the same targets)."""
        out = self.targets(spec, split(condition)[0], list(ids), residuals, stats)
        return np.stack(out).astype(np.float32) if out else np.empty((0, *residuals.shape[1:]), np.float32)

    def prompt_seed(self, condition: str, target: int, restart: int) -> tuple:
        """The identity a run's initial state is seeded from. A text method (starting from random
        tokens) starts from the tokens of its target and restart that every text method of the
        experiment shares; any other from the soft prompt's start — its own, unless it shares one
        with the runs it is compared with pairwise."""
        base, method = split(condition)
        if method_records()[method]["begins"] == "tokens":
            return ("prompt", self.text_seed or self.name, "text", target, restart)
        if self.shared_prompts is not None:
            return self.shared_prompts(self.name, base, target, restart)
        return ("prompt", self.name, base, target, restart)

    def label_of(self, condition: str) -> str:
        """'Exp 1 real', 'Exp 3 α=0.5', 'Exp 1 real (PEZ)'; a condition that the label already
        names is not repeated ('Norm ball', not 'Norm ball ball')."""
        base, method = split(condition)
        if self.axis:
            text = f"{self.label} {self.axis}={base[1:]}"
        else:
            text = self.label if base.lower() in self.label.lower().split() else f"{self.label} {base.replace('_', ' ')}"
        return text if method == SOFT else f"{text} ({method_records()[method]['label']})"


def across_conditions(name: str, condition: str, target: int, restart: int) -> tuple:
    """Every condition of one target (and restart) starts from the same prompt."""
    return ("prompt", name, target, restart)


def as_exp1(name: str, condition: str, target: int, restart: int) -> tuple:
    """Exp 1's prompt for the same target and restart (the ablation is compared with it pairwise)."""
    return ("prompt", "experiment1", "real", target, restart)


PRESENTATION = ("label", "axis", "findings", "outputs")  # how a record is shown, not what its runs are: a job
#                                   that only makes or runs its targets does not digest these (job.code_digest)
ABLATED = {"no_ffn": "ffn", "no_attention": "attention"}
BASELINE = "experiment1"  # the real activations: the others reuse its targets or compare with it
EXP1_TEXT = "hard_prompt"  # whose tokens text methods on Exp 1's targets start from: the experiment that drew
#                            them first (so its numbers carry over, and every text run of a target pairs up)
REGISTRY: dict[str, Experiment] = {}


def register(experiment: Experiment) -> Experiment:
    REGISTRY[experiment.name] = experiment
    return experiment


register(Experiment(
    "experiment1", "Exp 1", fixed("real"), T.real, sweepable=True, sources=lambda t: [t], text_seed=EXP1_TEXT,
    findings=(Line(guide.all_converge, ("real",)), Line(guide.methods_against_soft))))
register(Experiment(
    "experiment2a", "Exp 2a", fixed("matched"), T.distribution_matched_targets, sweepable=True, gaussian=True,
    findings=(Line(guide.similar_to, ("Exp 2a ≈ Exp 1", ("experiment1", "real"), ("experiment2a", "matched"))),
              Line(guide.methods_against_soft))))
register(Experiment(
    "experiment2b", "Exp 2b", fixed("isotropic"), T.isotropic_targets, sweepable=True,
    findings=(Line(guide.much_worse_or_similar, ("Exp 2b much worse than 2a", "Exp 2b ≈ Exp 2a",
                                                 ("experiment2a", "matched"), ("experiment2b", "isotropic"))),
              Line(guide.methods_against_soft))))
register(Experiment(
    "experiment3", "Exp 3", valued("a", "alphas"), T.interpolated, n=20, count="n_pairs", axis="α",
    settings={"alphas": values(default=[-0.5, 0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0])},
    shared_prompts=across_conditions, exp1="reuses", exp1_targets=lambda spec: 2 * spec["n_pairs"],
    sources=lambda pair: list(T.pair_of(pair)),
    exp1_relation="needs {uses} of Exp 1's targets but experiments.experiment1.n_targets = {real}: raise it or lower "
                  "n_pairs", findings=(Line(guide.interpolation), Line(guide.methods_against_soft)),
    outputs=("plot_reachability_curves",)))
register(Experiment(
    "experiment4", "Exp 4", valued("f", "fractions"), T.replaced, n=50, restarts=3, axis="f",
    settings={"fractions": values(0, 1, [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])},
    shared_prompts=across_conditions, sources=lambda t: [t],
    exp1="reuses", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="must not exceed experiments.experiment1.n_targets = {real}: Exp 4 corrupts Exp 1's targets",
    findings=(Line(guide.replacement), Line(guide.methods_against_soft)),
    outputs=("plot_transition",)))
register(Experiment(
    "experiment4p", "Exp 4p", valued("f", "fractions"), T.replaced_principal, enabled=False, n=20, restarts=2, axis="f",
    settings={"fractions": values(0, 1, [0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])},
    shared_prompts=across_conditions, sources=lambda t: [t],
    exp1="reuses", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="must not exceed experiments.experiment1.n_targets = {real}: Exp 4p corrupts Exp 1's targets",
    findings=(Line(guide.replacement), Line(guide.methods_against_soft)),
    outputs=("plot_transition",)))  # the research log's basis: the pool's principal directions, not coordinates
register(Experiment(
    "steering", "Steering", valued("e", "epsilons"), T.steered, enabled=False, n=20, restarts=2, axis="ε",
    settings={"epsilons": values(0, None, [0, 0.25, 0.5, 1.0, 2.0, 4.0]),
              "positions": {"type": "array", "uniqueItems": True, "items": {"type": "integer", "minimum": 0},
                            "default": [], "description": "the positions steered (empty: every position)"},
              "direction": {"type": ["string", "null"], "minLength": 1, "default": None,
                            "description": "a steering vector [d_model] (.npy or .pt); null: a random unit "
                                           "direction per target (the notebook's isotropic ones)"}},
    shared_prompts=across_conditions, sources=lambda t: [t],
    exp1="reuses", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="must not exceed experiments.experiment1.n_targets = {real}: steering moves Exp 1's targets",
    inputs=lambda spec: [spec["direction"]] if spec["direction"] else [],
    check=lambda spec, d_model: T.steering_direction(spec["direction"], d_model) if spec["direction"] else None,
    findings=(Line(guide.steering_realised), Line(guide.methods_against_soft)),
    outputs=("plot_steering",)))  # notebook 004's ε, reached
register(Experiment(
    "prefix_steering", "Prefix", valued("e", "epsilons"), T.prefixed, enabled=False, n=20, restarts=2, axis="ε",
    settings={"prefix_length": {"type": "integer", "minimum": 1, "default": 10,
                                "description": "P: the prompt's positions; the rest of the sequence is a real text"},
              "epsilons": values(0, None, [0, 0.5, 1.0, 2.0]),
              "positions": {"type": "array", "uniqueItems": True, "items": {"type": "integer", "minimum": 0},
                            "default": [], "description": "the text positions scored (P..seq_len-1; empty: all)"}},
    shared_prompts=across_conditions, sources=lambda t: [t], analysed=False, forward=True,
    consistent=T.check_prefix, prompt=T.prefix_layout,
    findings=(Line(guide.all_converge, ("e0",)), Line(guide.steering_realised), Line(guide.methods_against_soft)),
    outputs=("plot_steering",)))  # how well a prefix controls the state of the text after it (the research log)
register(Experiment(
    "ablation", "Ablation", lambda spec: [f"no_{c}" for c in spec["components"]], T.real, n=50, restarts=3,
    settings={"components": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": ["ffn", "attention"]},
                             "default": ["ffn", "attention"],
                             "description": "the research log's Exp 4: Exp 1's targets under a model without FFN or "
                                            "attention"}},
    shared_prompts=as_exp1, text_seed=EXP1_TEXT, variant=lambda condition: ABLATED.get(condition), analysed=False,
    exp1="compared", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="must not exceed experiments.experiment1.n_targets = {real}: the ablation is compared target by "
                  "target with Exp 1",
    findings=(Line(guide.against, ("{label} reaches better than the full model", "better",
                                   lambda condition: ("experiment1", "real"), None, ("{condition}", "full model"),
                                   ", and they share their initial prompts")),),
    outputs=("ablation_table", "plot_ablation")))
register(Experiment(
    "hard_prompt", "Text", fixed("text"), T.real, n=50, restarts=3, methods=("pez", "gcg"),
    text_seed=EXP1_TEXT, shared_prompts=as_exp1, analysed=False, exp1="requires", exp1_targets=lambda spec: spec["n_targets"],
    exp1_relation="needs as many of Exp 1's targets (experiments.experiment1: enabled, n_targets = {real}): hard "
                  "prompts are compared target by target with Exp 1's soft prompts",
    findings=(Line(guide.methods_against_soft, (("experiment1", "real"),)),),
    outputs=("hard_prompts", "plot_hard_prompts")))


def get(name: str) -> Experiment:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown experiment {name!r}; known: {list(REGISTRY)}") from None


def names() -> list[str]:
    return list(REGISTRY)


def schema() -> dict:
    """Every experiment's config section, for the study's schema."""
    return {name: record.schema() for name, record in REGISTRY.items()}
