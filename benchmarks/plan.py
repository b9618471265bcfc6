"""The jobs Snakemake would run for a config, how long they would take and how much of the
device they would use — and, with `--validate`, how long they did.

The job list and its dependencies come from the workflow itself (a dry run of the Snakefile
in an empty folder); each optimisation pack's runs and batches come from the library functions
its rule script uses. Every number comes from a rate table that `engine_benchmark.py --out`
wrote on the device it describes: run-steps/s by method, layer, precision, batch size and how
the step ran, fixed seconds per batch, FLOPs per run-step (torch's FLOP counter), the device's
matmul peak, job start-ups; and what `--measure` and `--record` add on that machine: Snakemake's
own DAG building, and each rule's job time in a whole DAG run.

  python benchmarks/plan.py --configfile config.yaml
  python benchmarks/plan.py --configfile config.yaml --rates my_h100.json --cores 4 --resources gpu=2
  python benchmarks/plan.py --configfile config.yaml --measure rates.json  # measure this plan's rates here
  python benchmarks/plan.py --configfile demo.yaml --validate              # measure rates here, run it, compare

Each row names its source and how it got it: measured (a row of the table), interpolated
(between batch sizes in log B, between layers), extrapolated (beyond the measured batches or
layers, other GCG candidate counts), estimated (a method priced from another's rows), or
missing (nothing to price it from: left out of the totals, and said). A pack holds the device
for the weights' transfer plus, per batch, its fixed cost (warm-up, capture, final evaluation)
and steps x B / rate; beside its time, its FLOPs and the fraction of the device's peak that
reaches. Two totals:

  lower bound  the first job's start-up, then every GPU job's time on the device, back to back
  expected     the DAG scheduled as Snakemake runs it: `--cores` jobs at once, `--resources gpu`
               GPU jobs at once, one job on a GPU device at a time (the pool), CPU jobs on the
               critical path (pool, targets, the step-budget checkpoint, aggregation, plots),
               each job's start-up, and Snakemake's own DAG building (measured on the device's
               machine, never here) at the start and again after the checkpoint
"""

from __future__ import annotations

import argparse
import datetime
import heapq
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow_scripts"))

from reachability import experiments, study, validation
from reachability.comparison import model_study, module_name
from reachability.runs import batch_sizes, parse_pack
from reachability.sites import Site
from reachability.storage import write_table

DEFAULT_RATES = ROOT / "benchmarks" / "rates" / "h200_2026-12-04.json"  # this engine, measured
KINDS = ("measured", "interpolated", "extrapolated", "estimated", "missing")  # how a number was got, best first


def worst(*kinds: str) -> str:
    return max(kinds, key=KINDS.index)


@dataclass
class Job:
    """One job of the dry run, and what the plan makes of it."""

    jobid: int
    rule: str  # as the workflow names it (a compared model's prefix included)
    wildcards: dict[str, str]
    inputs: list[str]
    outputs: list[str]
    gpu: bool
    after: set[int] = field(default_factory=set)  # jobids it waits for
    cpu_s: float = 0.0  # start-up and CPU work, before any device claim
    device_s: float = 0.0  # time holding the device
    runs: int = 0
    run_steps: int = 0
    batches: list[int] = field(default_factory=list)
    groups: list[tuple] = field(default_factory=list)  # a pack's batches: (method, steps, runs, settings)
    layer: int = 0
    optimising_s: float = 0.0  # of device_s, the steps themselves (what a longer budget scales)
    source: str = ""  # what priced it
    kind: str = "measured"  # how (KINDS): the worst of its parts
    unmeasured: list[str] = field(default_factory=list)  # its batches with no row of their own: method:layer:B
    gflop: float | None = None  # a pack's FLOPs (None: not counted)


def dry_run(config: dict, workdir: Path) -> tuple[str, float]:
    """The dry run's text, and how long Snakemake took to build the DAG."""
    configfile = workdir / "plan.yaml"
    configfile.write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                             str(workdir), "--configfile", str(configfile), "--dry-run"], capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"the dry run failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return result.stdout, time.perf_counter() - start


def parse_jobs(text: str) -> list[Job]:
    """Every job block of a dry run, with its dependencies (an input that another job outputs)."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", text):
        rule = re.match(r"\s*(?:local)?rule (\w+):", block)
        if not rule:
            continue

        def field_of(name):
            found = re.search(rf"^\s+{name}: (.+)$", block, flags=re.M)
            return found.group(1) if found else ""

        wildcards = dict(w.split("=", 1) for w in field_of("wildcards").split(", ") if "=" in w)
        jobs.append(Job(int(field_of("jobid")), rule.group(1), wildcards,
                        [x.strip() for x in field_of("input").split(",") if x.strip()],
                        [x.strip() for x in field_of("output").split(",") if x.strip()],
                        bool(re.search(r"\bgpu=[1-9]", field_of("resources")))))
    made_by = {out: job.jobid for job in jobs for out in job.outputs}
    for job in jobs:
        job.after = {made_by[i] for i in job.inputs if i in made_by}
    return jobs


def mode_of(row: dict) -> str:
    """How a measured row ran: captured, eager, or mixed (its two timings ran differently)."""
    return row.get("ran", "captured" if row["capture"] else "eager")


class Rates:
    """Seconds and FLOPs from a rate table, each with its source and how it was got (KINDS)."""

    def __init__(self, table: dict) -> None:
        self.table = table
        # rows that ran one way: a "mixed" row (one timing eager, the other captured) is neither rate
        self.rows = [r for r in table.get("rows", []) if mode_of(r) in ("captured", "eager")]
        self.fixed_costs = any("fixed_s" in r for r in self.rows)
        self.device = table.get("device", "device not yet measured")

    def _curve(self, method: str, precision: str, mode: str, layer: int) -> tuple[np.ndarray, str, str] | None:
        """(batch, rate, fixed) rows of the measured layer nearest `layer`, rates rescaled to it,
        how, and its kind."""
        rows = [r for r in self.rows if r.get("method", "soft") == method and r["precision"] == precision
                and mode_of(r) == mode]
        layers = sorted({r["layer"] for r in rows})
        if not layers:
            return None
        below, above = [m for m in layers if m <= layer], [m for m in layers if m >= layer]
        if layer in layers:
            used, how, kind = [(layer, 1.0)], f"layer {layer}", "measured"
        elif below and above:  # per-run-step time linear in the layer between the two measured
            a, b = below[-1], above[0]
            w = (layer - a) / (b - a)
            used, how, kind = [(a, 1 - w), (b, w)], f"between layers {a} and {b}", "interpolated"
        else:
            nearest = below[-1] if below else above[0]
            used, how, kind = [(nearest, layer / nearest)], f"layer {nearest} scaled by blocks", "extrapolated"
        batches = sorted({r["batch"] for r in rows if r["layer"] in dict(used)} & set.intersection(
            *({r["batch"] for r in rows if r["layer"] == m} for m, _ in used)))
        if not batches:
            return None
        points = []
        for b in batches:
            step_time = sum(w / next(r for r in rows if r["layer"] == m and r["batch"] == b)["run_steps_per_s"]
                            for m, w in used)
            fixed = max(next(r for r in rows if r["layer"] == m and r["batch"] == b).get("fixed_s", 0.0) for m, _ in used)
            points.append((b, 1 / step_time, fixed))
        return np.array(points, dtype=float), how, kind

    def estimate(self, method: str, precision: str, mode: str, layer: int,
                 batch: int) -> tuple[float, float, str, str] | None:
        """(run-steps/s, fixed seconds, source, kind) for one batch, or None without rows."""
        found = self._curve(method, precision, mode, layer)
        if found is None:
            return None
        points, how, kind = found
        b, rate, fixed = points.T
        if batch in b:
            at, value = f"B={batch}", float(rate[list(b).index(batch)])
        elif batch < b[0]:
            at, value, kind = f"B={batch} below the smallest ({b[0]:.0f}): its step time", rate[0] * batch / b[0], \
                "extrapolated"
        elif batch > b[-1]:
            at, value, kind = f"B={batch} above the largest ({b[-1]:.0f}): its rate", rate[-1], "extrapolated"
        else:
            at, value = f"B={batch} in log B", float(np.interp(np.log(batch), np.log(b), rate))
            kind = worst(kind, "interpolated")
        fixed_s = float(np.interp(np.log(batch), np.log(b), fixed))
        return float(value), fixed_s, f"{method} {mode} {precision}, {how}, {at}", kind

    def batch_seconds(self, method: str, layer: int, precision: str, batch: int, captured: bool, steps: int,
                      candidates: int | None = None, seq_len: int = 20) -> tuple[float, float, str, str]:
        """(seconds on the device, of them optimising, source, kind) of one batch. A GCG table
        measured at other candidates is rescaled by (2 + candidates) / (2 + its candidates)."""
        notes, scale, kind = [], 1.0, "measured"
        if method == "inversion" and not any(r.get("method") == method for r in self.rows):
            if not candidates:
                raise LookupError("no inversion rows, and the model's vocabulary size is not known here")
            return self.inversion_from_soft(layer, precision, batch, steps, candidates, seq_len)
        if method == "gcg":
            measured = {r.get("candidates") for r in self.rows if r.get("method") == "gcg"}
            if not measured:
                return self.gcg_from_soft(layer, precision, batch, captured, steps, candidates or 512, seq_len)
            if candidates and candidates not in measured:
                near = min(measured, key=lambda c: abs(c - candidates))
                scale, kind = (2 + candidates) / (2 + near), "extrapolated"
                notes.append(f"measured at {near} candidates, scaled to {candidates}")
        if method != "soft" and not any(r.get("method", "soft") == method for r in self.rows):
            notes.append(f"no {method} rows: the soft-prompt rate, a lower bound")
            method, kind = "soft", "estimated"
        runs, other = ("captured", "eager") if captured else ("eager", "captured")  # the step the config runs
        own, instead = (self.estimate(method, precision, m, layer, batch) for m in (runs, other))
        if not (own or instead):
            raise LookupError(f"no {method} {precision} rows that ran captured or eager")
        if own is None:
            notes.append(f"no {runs} rows: the {other} rate")
        elif instead and instead[0] > own[0]:  # large batches: a replay saves few launches (H200)
            notes.append(f"the {other} step would be faster: {instead[0]:,.0f} run-steps/s")
        rate, fixed, source, how = own or instead
        if not self.fixed_costs:
            notes.append("no fixed cost per batch in the table")
        optimising = steps * batch / rate * scale
        return optimising + fixed, optimising, "; ".join([f"{source} ({rate / scale:,.0f} run-steps/s)", *notes]), \
            worst(kind, how)

    def gcg_from_soft(self, layer: int, precision: str, batch: int, captured: bool, steps: int, candidates: int,
                      seq_len: int, chunk: int = 8192) -> tuple[float, float, str, str]:
        """A GCG batch priced from soft-prompt rows (none measured for GCG): per step, the one-hot
        gradient at the batch's soft rate, and `candidates` forwards per run, each of the positions
        from the one it changes on ((S + 1) / 2S of a sequence), at half the soft rate of a batch of
        `chunk` (a forward is about half a forward-and-backward): an estimate."""
        gradient, _, _, _ = self.batch_seconds("soft", layer, precision, batch, captured, steps)
        sequences = min(chunk, batch * candidates)
        forwards, _, source, _ = self.batch_seconds("soft", layer, precision, sequences, captured, 1)
        per_forward = forwards / sequences / 2 * (seq_len + 1) / (2 * seq_len)
        optimising = gradient + steps * batch * candidates * per_forward
        return optimising, optimising, (f"no gcg rows: the one-hot gradient at the soft rate and {candidates} "
                                        f"forwards from the changed position on per run-step at half the soft rate "
                                        f"of a {chunk}-sequence batch ({source})"), "estimated"

    def inversion_from_soft(self, layer: int, precision: str, batch: int, steps: int, candidates: int, seq_len: int,
                            chunk: int = 8192) -> tuple[float, float, str, str]:
        """An exact-inversion batch priced from soft-prompt rows (none measured for it): per step
        (a position), its `candidates` (the vocabulary, or top_k) and then the chosen token run one
        position on the run's cached prefix, each 1/S of a sequence's forward at half the eager soft
        rate of a batch of `chunk` sequences (it is never captured): an estimate."""
        sequences = min(chunk, batch * candidates)
        forwards, _, source, _ = self.batch_seconds("soft", layer, precision, sequences, False, 1)
        optimising = steps * batch * (candidates + 1) * forwards / sequences / 2 / seq_len
        return optimising, optimising, (f"no inversion rows: {candidates} + 1 one-position forwards per run-step at "
                                        f"1/{seq_len} of half the soft rate of a {chunk}-sequence batch ({source})"), \
            "estimated"

    def gflop(self, method: str, layer: int, candidates: int | None = None) -> tuple[float, str] | None:
        """(GFLOP per run-step, kind) from the table's FLOP counts: linear in the layer (between
        counted layers, or scaled by blocks), GCG's rescaled to other candidates as its time is."""
        rows = [f for f in self.table.get("flops", []) if f["method"] == method]
        if method == "gcg" and rows and candidates not in {f.get("candidates") for f in rows}:
            near = min({f.get("candidates") for f in rows}, key=lambda c: abs(c - candidates))
            found = self.gflop("gcg", layer, near)
            return (found[0] * (2 + candidates) / (2 + near), "extrapolated") if found else None
        rows = [f for f in rows if method != "gcg" or f.get("candidates") == candidates]
        by_layer = dict(sorted((f["layer"], f["gflop_per_run_step"]) for f in rows))
        if not by_layer:
            return None
        if layer in by_layer:
            return by_layer[layer], "measured"
        layers = list(by_layer)
        if layers[0] < layer < layers[-1]:
            return float(np.interp(layer, layers, list(by_layer.values()))), "interpolated"
        nearest = min(layers, key=lambda m: abs(m - layer))
        return by_layer[nearest] * layer / nearest, "extrapolated"

    def peak_tflops(self, precision: str) -> float | None:
        return self.table.get("peak_tflops", {}).get(precision)

    def dag_building(self, jobs: int) -> tuple[float, str]:
        """Snakemake's DAG building for a plan of `jobs` jobs: measured on the table's machine for
        a plan of its own, scaled by jobs; not measured: 0, and said."""
        dag = self.table.get("dag_building")
        if not dag:
            return 0.0, "not measured on this table's machine: left out"
        kind = "measured" if dag["jobs"] == jobs else "extrapolated"
        scaled = ", scaled by jobs" if kind != "measured" else ""
        return dag["seconds"] * jobs / dag["jobs"], f"{kind}: {dag['seconds']:.1f} s for {dag['jobs']} jobs " \
                                                    f"({dag['config']}){scaled}"


def job_config(config: dict, rule: str, site_tag: str | None) -> tuple[str, dict, str]:
    """A job's rule as the workflow names it once, the config of its model and how to label
    it: a compared model's rules carry its module's prefix (compare.models), its site is the job's."""
    for entry in config["compare"]["models"]:
        if rule.startswith(module_name(entry["label"])):
            theirs = model_study(config, entry)
            if site_tag:  # its only site ('layer: last' is resolved by its own model)
                theirs["site"] = {"kind": Site.from_tag(site_tag).kind, "layer": Site.from_tag(site_tag).layer}
            return rule.removeprefix(module_name(entry["label"])), theirs, entry["label"]
    return rule, config, ""


def vocabulary_size(config: dict) -> int | None:
    """The study model's vocabulary: a built model's setting, else its config.json where it is on
    this machine (the hub's cache, or a folder), else None (said where it is needed)."""
    if config["model"].get("build"):
        return int(config["model"]["build"]["vocab_size"])
    try:
        from transformers import AutoConfig

        found = AutoConfig.from_pretrained(config["model"]["name"], revision=config["model"]["revision"],
                                           local_files_only=True)
    except (OSError, ValueError):
        return None
    return int(getattr(found, "vocab_size", 0)) or None


def shape(job: Job, config: dict) -> None:
    """An optimisation pack's runs, run-steps and batches, as its rule script will batch them."""
    rule, cfg, _ = job_config(config, job.rule, job.wildcards.get("site"))
    if rule != "optimise_pack":
        return
    w = job.wildcards
    runs = study.layout(cfg, w["experiment"], w["site"]).runs(w["experiment"], *parse_pack(w["pack"]))
    settings = study.methods(cfg, w["experiment"])
    for (_, name), members in study.groups(runs).items():  # model variants and methods batch apart
        own = settings[runs[members[0]].condition]
        steps = own.get("steps", int(w["steps"]))  # GCG runs its own steps; the pack, the study's or its experiment's
        job.groups += [(name, steps, b, own) for b in batch_sizes(len(members), cfg["engine"]["batch_size"])]
    job.batches = [b for _, _, b, _ in job.groups]
    job.runs, job.run_steps = len(runs), sum(steps * b for _, steps, b, _ in job.groups)
    job.layer = Site.from_tag(w["site"]).layer


def price(job: Job, config: dict, rates: Rates, captured: bool) -> None:
    """A job's start-up (CPU work before any claim), device time and FLOPs, and where they came
    from. A CPU job or a GPU job other than a pack takes its rule's measured whole-job time."""
    startup = rates.table.get("startup", {})
    rule, cfg, _ = job_config(config, job.rule, job.wildcards.get("site"))
    measured = rates.table.get("jobs", {}).get(rule)
    if not job.gpu:
        if rule == "all" or measured is not None:
            job.cpu_s, job.source = measured or 0.0, "this rule's job in a whole run"
        elif "cpu_job_s" in startup:
            job.cpu_s, job.source, job.kind = startup["cpu_job_s"], "a CPU job's start-up (its work unmeasured)", \
                "estimated"
        else:
            job.source, job.kind = "no CPU job time in the table", "missing"
        return
    job.cpu_s = startup.get("cpu_s", 0.0)
    job.device_s = startup.get("device_s", 0.0)  # the weights to the device
    if rule != "optimise_pack":
        if measured is None:
            job.source, job.kind = "no measured job: its start-up only", "missing"
        else:
            job.device_s = max(measured - job.cpu_s, job.device_s)
            job.source = "this rule's whole job less its start-up"
        return
    sources, kinds, flops = [], [], []
    for name, steps, b, own in job.groups:
        candidates = own.get("candidates")
        if name == "inversion":  # every token of the vocabulary, or the top_k the gradient ranks first
            vocabulary = vocabulary_size(cfg)
            candidates = min(own.get("top_k") or vocabulary, vocabulary) if vocabulary else own.get("top_k")
        try:
            seconds, optimising, source, kind = rates.batch_seconds(
                name, job.layer, cfg["engine"]["precision"], b, captured, steps, candidates, cfg["seq_len"])
        except LookupError as missing:
            seconds, optimising, source, kind = 0.0, 0.0, f"{missing}: B={b} not priced", "missing"
        if kind != "measured":
            job.unmeasured.append(f"{name}:{job.layer}:{b}")
        job.device_s += seconds
        if "steps" not in own and not study.own_steps(cfg, job.wildcards["experiment"]):  # what a longer step
            #                         budget scales (not GCG's own steps, nor an experiment's own)
            job.optimising_s += optimising
        sources.append(source)
        kinds.append(kind)
        counted = rates.gflop(name, job.layer, own.get("candidates")) if kind != "missing" else None
        flops.append(steps * b * counted[0] if counted else None)  # a pack's FLOPs: all its batches', or none
    job.source, job.kind = " | ".join(dict.fromkeys(sources)), worst(*kinds)
    job.gflop = None if None in flops else sum(flops)


def checkpoint_jobs(jobs: list[Job], config: dict) -> list[Job]:
    """The step-budget checkpoint of each model, as the real run has it: after that model's
    Exp 1 packs at its site, before everything the decision gates (the other packs, and all
    that waits for them or for the aggregation). The dry run lists the plan with the budget
    off, so these edges are added here."""
    by_id = {j.jobid: j for j in jobs}
    children: dict[int, set[int]] = {j.jobid: set() for j in jobs}
    for j in jobs:
        for a in j.after:
            children[a].add(j.jobid)

    def closure(start: set[int], step) -> set[int]:
        seen, todo = set(start), list(start)
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    added, next_id = [], max(by_id) + 1
    for prefix, cfg in [("", config)] + [(module_name(e["label"]), model_study(config, e))
                                         for e in config["compare"]["models"]]:
        if cfg["optimizer"]["extend_steps"] is None or not cfg["experiments"][experiments.BASELINE]["enabled"]:
            continue
        packs = [j for j in jobs if j.rule == prefix + "optimise_pack"]
        deciding = {j.jobid for j in packs if j.wildcards["experiment"] == experiments.BASELINE
                    and (prefix or j.wildcards["site"] == study.site_of(cfg).tag)}
        gated = {j.jobid for j in packs} - deciding
        gated |= {j.jobid for j in jobs if j.rule == prefix + "aggregate"}
        after = closure(gated, lambda i: children[i])
        before = closure(deciding, lambda i: by_id[i].after)
        upstream_only = closure(gated, lambda i: by_id[i].after) - before
        budget = Job(next_id, prefix + "step_budget", {}, [], [], False, after=set(deciding))
        next_id += 1
        for i in (after | upstream_only) - before:
            by_id[i].after.add(budget.jobid)
        added.append(budget)
    return added


def schedule(jobs: list[Job], cores: int, gpu_slots: float, devices: float, snakemake_s: float,
             checkpoints: int) -> float:
    """The makespan of Snakemake's greedy run: ready jobs start in jobid order while cores (one
    each) and gpu slots allow; a GPU job, after its start-up, waits for a free device and holds
    it for its device time. Snakemake's DAG building comes first, and again after a checkpoint."""
    waiting = {j.jobid: set(j.after) for j in jobs}
    by_id = {j.jobid: j for j in jobs}
    free_cores, free_slots, free_devices = cores, gpu_slots, devices
    events: list[tuple[float, int, str, int]] = []  # (time, order, kind, jobid)
    queue_for_device: list[int] = []
    t, order, done = snakemake_s, 0, set()
    running: set[int] = set()

    def start_ready() -> None:
        nonlocal free_cores, free_slots, order
        for i in sorted(i for i, deps in waiting.items() if not deps and i not in running and i not in done):
            job = by_id[i]
            if free_cores < 1 or (job.gpu and free_slots < 1):
                continue
            free_cores -= 1
            free_slots -= job.gpu
            running.add(i)
            order += 1
            heapq.heappush(events, (t + job.cpu_s, order, "ready_for_device" if job.gpu else "finish", i))

    start_ready()
    while events:
        t, _, kind, i = heapq.heappop(events)
        job = by_id[i]
        if kind == "ready_for_device":
            queue_for_device.append(i)
        else:
            if job.gpu:
                free_devices += 1
                free_slots += 1
            free_cores += 1
            running.discard(i)
            done.add(i)
            if job.rule.endswith("step_budget") and checkpoints:
                t += snakemake_s  # the DAG is built again once the decision is known
            for deps in waiting.values():
                deps.discard(i)
        while queue_for_device and free_devices >= 1:
            free_devices -= 1
            order += 1
            nxt = queue_for_device.pop(0)
            heapq.heappush(events, (t + by_id[nxt].device_s, order, "finish", nxt))
        start_ready()
    return t


def fraction_of_peak(gflop: float | None, seconds: float, peak: float | None) -> str:
    return f"{gflop / 1e3 / seconds / peak:.1%}" if gflop is not None and seconds > 0 and peak else "-"


def merges(jobs: list[Job], rates: Rates) -> list[str]:
    """What each GPU job of several outputs (the residual caches) saves against one job per
    output: the start-ups (CPU, before the claim), the weights' transfer and a forward each."""
    startup, lines = rates.table.get("startup", {}), []
    for rule in sorted({j.rule for j in jobs if j.gpu and len(j.outputs) > 1}):
        merged = [j for j in jobs if j.rule == rule]
        fewer = sum(len(j.outputs) - 1 for j in merged)
        lines.append(f"{rule}: {sum(len(j.outputs) for j in merged)} outputs in {len(merged)} job(s), one model load "
                     f"and one forward each: {fewer} fewer start-ups ({fewer * startup.get('cpu_s', 0.0):.0f} s before "
                     f"the claim) and {fewer * merged[0].device_s:.0f} s less on the device than one job per output")
    return lines


def report(jobs: list[Job], rates: Rates, config: dict, plan: dict) -> None:
    engine, peak = config["engine"], rates.peak_tflops(config["engine"]["precision"])
    print(f"rates: {rates.device}; {rates.table.get('engine', '')} ({rates.table.get('date', 'undated')}); "
          f"peak {f'{peak:,.1f} TFLOP/s' if peak else 'not measured'} ({engine['precision']})")
    print(f"precision {engine['precision']}, capture {engine['capture']}, runs_per_job {engine['runs_per_job']}, "
          f"batch_size {engine['batch_size']}, {config['optimizer']['steps']} steps\n")
    print("| rule | job | runs | run-steps | batches | device s | TFLOP | of peak | start-up s | priced from |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for j in jobs:
        if j.gpu:
            label = " ".join(j.wildcards.values()) or "-"
            tflop = f"{j.gflop / 1e3:,.4g}" if j.gflop is not None else "-"
            print(f"| {j.rule} | {label} | {j.runs:,} | {j.run_steps:,} | {' + '.join(map(str, j.batches)) or '-'} "
                  f"| {j.device_s:,.1f} | {tflop} | {fraction_of_peak(j.gflop, j.device_s, peak)} | {j.cpu_s:.1f} "
                  f"| {j.kind}: {j.source} |")
    cpu = [j for j in jobs if not j.gpu and not j.rule == "all"]
    packs = [j for j in jobs if j.rule.endswith("optimise_pack")]
    others = [j for j in jobs if j.gpu and j not in packs]
    pack_s = sum(j.device_s for j in packs)
    shares = {k: sum(j.device_s for j in packs if j.kind == k) / pack_s for k in KINDS if pack_s}
    print(f"\n{len(packs)} optimisation jobs, {sum(j.runs for j in packs):,} runs, "
          f"{sum(j.run_steps for j in packs):,} run-steps: {pack_s / 60:.1f} min on the device, "
          + ", ".join(f"{share:.0%} {k}" for k, share in shares.items() if share))
    unmeasured = sorted({point for j in packs for point in j.unmeasured})
    if unmeasured:
        print(f"rows missing from the table (method:layer:B; priced as each row says): {' '.join(unmeasured)}")
    missing = [j for j in packs if j.kind == "missing"]
    if missing:
        print(f"unpriced: {len(missing)} pack(s) without a row to price them from, left out of the totals: "
              + "; ".join(f"{' '.join(j.wildcards.values())}: {j.source}" for j in missing))
    counted = [j for j in packs if j.gflop is not None]
    if counted:
        flop = sum(j.gflop for j in counted)
        at_peak = f"; at the peak that is {flop / 1e3 / peak / 60:.1f} min" if peak else ""
        print(f"FLOPs of {len(counted)} of {len(packs)} packs: {flop / 1e6:,.4g} PFLOP in "
              f"{sum(j.device_s for j in counted) / 60:.1f} min, "
              f"{fraction_of_peak(flop, sum(j.device_s for j in counted), peak)} of the peak{at_peak}")
    by_kind = {k: [j for j in cpu if j.kind == k] for k in KINDS}
    print(f"{len(others)} other GPU jobs: {sum(j.device_s for j in others) / 60:.1f} min on the device; {len(cpu)} CPU "
          f"jobs: {sum(j.cpu_s for j in cpu) / 60:.1f} min of CPU in all ("
          + ", ".join(f"{len(v)} {k}" for k, v in by_kind.items() if v) + "); Snakemake's DAG building: "
          f"{plan['snakemake_source']}")
    for line in merges(jobs, rates):
        print(line)
    for name, (expected, lower) in plan["outcomes"].items():
        print(f"{name}: expected {expected / 60:.1f} min on one {rates.device} (the DAG scheduled: start-ups, "
              f"CPU jobs on the critical path, Snakemake's own DAG building); lower bound {lower / 60:.1f} min (the "
              f"first start-up, then the device busy without a gap)")


def extended(jobs: list[Job], budgets: list[Job], factor: float) -> list[Job]:
    """The jobs if Exp 1 extends: its deciding packs continue (a continuation each, after the
    decision, before whatever read them), every other pack runs `factor` times the steps."""
    out = [replace(j, after=set(j.after)) for j in jobs]
    deciding = set().union(*(b.after for b in budgets))
    next_id = max(j.jobid for j in out) + 1
    continuation = {}
    for j in out:
        if j.rule.endswith("optimise_pack") and j.jobid not in deciding:
            j.device_s += j.optimising_s * (factor - 1)
            j.run_steps = int(j.run_steps * factor)
            j.gflop = j.gflop and j.gflop * factor
        if j.jobid in deciding:
            budget = next(b.jobid for b in budgets if j.jobid in b.after)
            extra = j.optimising_s * (factor - 1)
            continuation[j.jobid] = Job(next_id, j.rule.replace("optimise_pack", "extend_pack"), j.wildcards, [], [],
                                        True, after={budget}, cpu_s=j.cpu_s, device_s=j.device_s - j.optimising_s + extra,
                                        runs=j.runs, run_steps=int(j.run_steps * (factor - 1)), batches=j.batches,
                                        source=f"the pack's own rate, continued ({j.source})", kind=j.kind,
                                        gflop=j.gflop and j.gflop * (factor - 1))
            next_id += 1
    for j in out:
        j.after |= {continuation[i].jobid for i in j.after & set(continuation) if j.rule not in
                    {b.rule for b in budgets}}
    return out + list(continuation.values())


def totals(jobs: list[Job], rates: Rates, cores: int, gpu_slots: float, devices: float, snakemake_s: float,
           checkpoints: int) -> tuple[float, float]:
    """(expected, lower bound) seconds of a job list."""
    lower = rates.table.get("startup", {}).get("cpu_s", 0.0) + sum(j.device_s for j in jobs if j.gpu)
    return schedule(jobs, cores, gpu_slots, devices, snakemake_s, checkpoints), lower


def listed(config: dict) -> tuple[list[Job], list[Job], float]:
    """The config's jobs (packs shaped), its checkpoints, and how long Snakemake took to build
    the DAG here (a measurement of this machine, for `--measure`; never in a projection)."""
    with tempfile.TemporaryDirectory() as workdir:
        listing = {**config, "optimizer": {**config["optimizer"], "extend_steps": None}}
        text, snakemake_s = dry_run(listing, Path(workdir))
    jobs = parse_jobs(text)
    for job in jobs:
        shape(job, config)
    return jobs, checkpoint_jobs(jobs, config), snakemake_s


def project(config: dict, rates: Rates, cores: int, gpu_slots: float, devices: float) -> dict:
    """Jobs priced, and the plan's totals for each outcome of the step budget."""
    jobs, budgets, _ = listed(config)
    captured = config["engine"]["capture"] and not rates.device.lower().startswith("cpu")
    for job in jobs + budgets:
        price(job, config, rates, captured)
    every = jobs + budgets
    snakemake_s, source = rates.dag_building(len(jobs))
    steps, extend = config["optimizer"]["steps"], config["optimizer"]["extend_steps"]
    outcomes = {"the configured steps": totals(every, rates, cores, gpu_slots, devices, snakemake_s, len(budgets))}
    if budgets:
        outcomes[f"if Exp 1 extends to {extend} steps"] = totals(
            extended(every, budgets, extend / steps), rates, cores, gpu_slots, devices, snakemake_s, len(budgets))
    return {"jobs": every, "outcomes": outcomes, "snakemake_s": snakemake_s, "snakemake_source": source}


def points(jobs: list[Job], seq_len: int = 20) -> list[str]:
    """Every (method, layer, batch) the packs run, as engine_benchmark's --points, in order of
    the work each prices, most first: run-steps x layers, a GCG run-step its gradient and each
    candidate's forward of (S + 1) / 2S of the positions (a forward: half a run-step)."""
    work: dict[str, float] = {}
    for j in jobs:
        for name, steps, b, own in j.groups:
            point = f"{name}:{j.layer}:{b}"
            per_step = 1 + own.get("candidates", 0) * (seq_len + 1) / (4 * seq_len)
            work[point] = work.get(point, 0.0) + steps * b * j.layer * per_step
    return sorted(work, key=work.get, reverse=True)


def measure(config: dict, configfile: Path, out: Path, steps: int, also: list[str] = ()) -> None:
    """This config's rate table, measured on this machine into `out`, which is rewritten as each
    number is measured: first Snakemake's DAG building for the config (its dry run, timed), then
    the engine at every (method, layer, batch) its packs run, most work first, with one thread
    as a job runs, then the points of `also` (other methods' rows, where time is left); so a
    measurement cut short holds what prices most of the plan."""
    jobs, _, seconds = listed(config)
    write_table(out, {"dag_building": {"seconds": seconds, "jobs": len(jobs), "config": configfile.name,
                                      "machine": platform.node()}})
    candidates = {own["candidates"] for j in jobs for _, _, _, own in j.groups if "candidates" in own}
    command = [sys.executable, str(ROOT / "benchmarks" / "engine_benchmark.py"), "--configfile", str(configfile),
               "--points", *dict.fromkeys([*points(jobs, config["seq_len"]), *also]), "--precisions", config["engine"]["precision"],
               "--steps", str(steps), "--reference-steps", "5", "--threads", "1", "--out", str(out), "--append",
               *(["--candidates", str(max(candidates))] if candidates else [])]
    if config["engine"]["device"] == "cpu":
        command += ["--device", "cpu"]
    command += ["--capture", "on" if config["engine"]["capture"] else "off"]
    subprocess.run(command, check=True, stdout=sys.stderr)


def job_seconds(log: str) -> dict[str, list[float]]:
    """Each finished job's wall seconds by rule, from a Snakemake run's log (the time stamp
    before a job's block and before its 'Finished' line: to the second)."""
    started, seconds = {}, defaultdict(list)
    parts = re.split(r"^\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]$", log, flags=re.M)
    for stamp, text in zip(parts[1::2], parts[2::2]):
        t = datetime.datetime.strptime(stamp, "%a %b %d %H:%M:%S %Y").timestamp()
        if begun := re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):.*?^\s+jobid: (\d+)$", text, flags=re.M | re.S):
            started[begun.group(2)] = (begun.group(1), t)
        elif (done := re.search(r"Finished jobid: (\d+)", text)) and done.group(1) in started:
            rule, t0 = started.pop(done.group(1))
            seconds[rule].append(t - t0)
    return dict(seconds)


def record(rates_path: Path, log: str, configfile: Path) -> None:
    """Add a whole run's job times (the median of each rule's jobs; packs are priced by the
    engine's rows) to the rate table measured on the same machine."""
    table = json.loads(rates_path.read_text())
    measured = {rule: float(np.median(s)) for rule, s in job_seconds(log).items()
                if not rule.endswith(("optimise_pack", "extend_pack"))}
    table["jobs"] = {**table.get("jobs", {}), **measured,
                     "note": f"whole-job wall times, the median of each rule's jobs in a run of {configfile.name} on "
                             f"{platform.node()}, {datetime.date.today().isoformat()}"}
    write_table(rates_path, table)


def run_study(configfile: Path, cores: int, resources: list[str], workdir: Path) -> tuple[float, bool, str]:
    """The config's whole DAG in `workdir`: its wall time, whether Exp 1 extended the budget,
    and Snakemake's log."""
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory",
                             str(workdir), "--configfile", str(configfile.resolve()), "--cores", str(cores),
                             *(["--resources", *resources] if resources else [])], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    (workdir / "snakemake.log").write_text(result.stdout + result.stderr)
    if result.returncode:
        raise SystemExit(f"the study failed after {seconds:.0f} s:\n{result.stderr[-3000:]}")
    budget = workdir / "results" / "step_budget.json"
    return seconds, budget.exists() and json.loads(budget.read_text()).get("extended", False), result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--rates", type=Path, help="a table from engine_benchmark.py --out (default: the landed "
                                                   "H200 table; with --validate: one measured here first)")
    parser.add_argument("--measure", type=Path, metavar="OUT", help="first measure this config's rate table here "
                                                                    "(written as it is measured), then plan from it")
    parser.add_argument("--steps", type=int, default=10, help="with --measure or --validate: the engine's timed steps")
    parser.add_argument("--also", nargs="+", default=[], metavar="METHOD:LAYER:BATCH",
                        help="with --measure: these points too, after the config's own")
    parser.add_argument("--cores", type=int, default=4)
    parser.add_argument("--resources", nargs="*", default=["gpu=2"], help="as Snakemake's --resources")
    parser.add_argument("--devices", type=int, default=1, help="GPUs on the machine")
    parser.add_argument("--validate", action="store_true", help="then run the config's DAG here and compare")
    parser.add_argument("--record", action="store_true", help="with --validate and --rates: add the run's job "
                                                              "times to that table (the same machine's)")
    parser.add_argument("--workdir", type=Path, help="with --validate: run the study here (kept), not in a scratch folder")
    parser.add_argument("--json", type=Path, help="also write the plan here")
    args = parser.parse_args()

    config = yaml.safe_load(args.configfile.read_text()) or {}
    validation.validated(config, experiments)  # the schema with each record's section; fills the defaults
    slots = next((float(r.split("=")[1]) for r in args.resources if r.startswith("gpu=")), float("inf"))
    devices = float("inf") if config["engine"]["device"] == "cpu" else args.devices  # the CPU: no device lock
    with tempfile.TemporaryDirectory() as scratch:
        rates_path = args.measure or args.rates or (Path(scratch) / "rates.json" if args.validate else DEFAULT_RATES)
        if args.measure or (args.validate and not args.rates):
            measure(config, args.configfile, rates_path, args.steps, args.also)
        rates = Rates(json.loads(rates_path.read_text()))
    plan = project(config, rates, args.cores, slots, devices)
    print(f"config: {args.configfile}; --cores {args.cores} --resources {' '.join(args.resources) or '-'}; "
          f"rates: {rates_path.name}")
    report(plan["jobs"], rates, config, plan)
    measured = None
    if args.validate:
        with tempfile.TemporaryDirectory() as scratch:
            measured, extended_run, log = run_study(args.configfile, args.cores, args.resources,
                                                    args.workdir or Path(scratch))
        outcomes = list(plan["outcomes"].items())
        name, (expected, lower) = outcomes[-1] if extended_run else outcomes[0]
        print(f"\nvalidation: the whole DAG took {measured:.0f} s here; projected {expected:.0f} s {name} (what "
              f"happened), lower bound {lower:.0f} s: measured / projected = {measured / expected:.2f}")
        if args.record and args.rates:
            record(args.rates, log, args.configfile)
    if args.json:
        write_table(args.json, {
            "rates": str(rates_path), "outcomes": plan["outcomes"], "measured_s": measured,
            "snakemake_s": plan["snakemake_s"], "snakemake_source": plan["snakemake_source"],
            "jobs": [{"rule": job_config(config, j.rule, None)[0], "model": job_config(config, j.rule, None)[2],
                      "wildcards": j.wildcards, "gpu": j.gpu, "runs": j.runs, "run_steps": j.run_steps,
                      "batches": j.batches, "outputs": j.outputs, "device_s": j.device_s, "cpu_s": j.cpu_s,
                      "gflop": j.gflop, "source": j.source, "kind": j.kind} for j in plan["jobs"]]})


if __name__ == "__main__":
    main()
