"""The GPU jobs Snakemake would run for a config, and how long they would take on one GPU.

The job list comes from the workflow itself (a dry run of the Snakefile in an empty folder);
each optimisation pack's runs and batches come from the library functions its rule script
uses. The projection reads a rate table written by `engine_benchmark.py --out` (run-steps/s
by layer, precision, batch and capture; start-up seconds; other GPU jobs' wall times):

  python benchmarks/plan.py --configfile config.yaml
  python benchmarks/plan.py --configfile config.yaml --rates my_h100.json

Model of the wall time on one device with `--resources gpu=2` (start-up hidden behind the
other job's compute): the first job's CPU start-up, then for every GPU job its time on the
device. An optimisation pack holds the device for `startup.device_s` plus, per batch, the
capture and `steps x B / rate(layer, precision, B)`. Rates between measured batch sizes are
interpolated in log B; below the smallest the step time is taken as constant (launch-bound),
above the largest the rate as constant (fixed costs per batch, where the table has them, are
interpolated the same way); a layer without rows scales the rate of the layer with
the most measured batch sizes (then the nearest) by the ratio of blocks; a captured step is
never taken as slower than an eager one. Other GPU jobs hold the device for their measured wall time less the CPU start-up (which
now comes before the claim). CPU jobs (targets, aggregation, plots) run beside the GPU jobs
and are not counted.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from snakemake.utils import validate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "workflow_scripts"))

from reachability import config as study  # noqa: E402
from reachability.comparison import model_study, module_name  # noqa: E402
from reachability.runs import batch_sizes, parse_pack  # noqa: E402
from reachability.sites import Site  # noqa: E402

DEFAULT_RATES = ROOT / "benchmarks" / "rates" / "h100_landed_2026-11-26.json"


def gpu_jobs(config: dict) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job that claims a GPU, from a dry run in an empty folder. The
    step budget is left undecided (extend_steps: null): every pack at the configured steps."""
    listing = {**config, "optimizer": {**config["optimizer"], "extend_steps": None}}
    with tempfile.TemporaryDirectory() as workdir:
        configfile = Path(workdir) / "plan.yaml"
        configfile.write_text(yaml.safe_dump(listing))
        result = subprocess.run(
            [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", workdir,
             "--configfile", str(configfile), "--dry-run"],
            capture_output=True, text=True,
        )
    if result.returncode:
        raise SystemExit(f"the dry run failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", result.stdout):
        rule = re.match(r"\s*(?:local)?rule (\w+):", block)
        resources = re.search(r"^\s+resources: (.+)$", block, flags=re.M)
        if rule and resources and re.search(r"\bgpu=[1-9]", resources.group(1)):
            found = re.search(r"^\s+wildcards: (.+)$", block, flags=re.M)
            wildcards = dict(w.split("=", 1) for w in found.group(1).split(", ")) if found else {}
            jobs.append((rule.group(1), wildcards))
    return jobs


class Rates:
    """Run-steps/s from a rate table, for any layer, precision, batch size and capture."""

    def __init__(self, table: dict) -> None:
        self.table = table
        self.rows = table["rows"]

    def _measured(self, layer: int, precision: str, batch: int, capture: bool) -> tuple[float, float] | None:
        """(run-steps/s, fixed seconds per batch) from the rows of one precision and capture."""
        rows = [r for r in self.rows if r["precision"] == precision and r["capture"] == capture]
        if not rows:
            return None
        counts = {m: sum(r["layer"] == m for r in rows) for m in {r["layer"] for r in rows}}
        nearest = min(counts, key=lambda m: (-counts[m], abs(m - layer), -m))  # best covered, then nearest
        points = sorted((r["batch"], r["run_steps_per_s"], r.get("fixed_s", 0.0)) for r in rows if r["layer"] == nearest)
        b, rate, fixed = np.array(points, dtype=float).T
        if batch <= b[0]:
            value = rate[0] * batch / b[0]  # launch-bound: the same time per step
        else:
            value = float(np.interp(np.log(batch), np.log(b), rate))
        return value * max(nearest, 1) / max(layer, 1), float(np.interp(np.log(batch), np.log(b), fixed))

    def batch_seconds(self, layer: int, precision: str, batch: int, capture: bool, steps: int) -> tuple[float, float, str]:
        """Seconds one batch holds the device, of them optimising, and whether a captured or an
        eager rate gave them."""
        eager = self._measured(layer, precision, batch, False)
        captured = self._measured(layer, precision, batch, True) if capture else None
        if eager is None and captured is None:
            raise SystemExit(f"the rate table has no {precision} rows")
        options = [(steps * batch / m[0] + m[1], steps * batch / m[0], kind)
                   for m, kind in ((eager, "eager"), (captured, "captured")) if m]
        seconds, optimising, kind = min(options)  # a captured step is never slower than an eager one
        return seconds, optimising, kind + (" (no capture rows)" if capture and captured is None else "")


def job_config(config: dict, rule: str, site_tag: str | None) -> tuple[str, dict, str]:
    """A job's rule as the workflow names it once, the config of its model and how to label
    it: a compared model's rules carry its module's prefix (compare.models), its site is the job's."""
    for entry in config["compare"]["models"]:
        if rule.startswith(module_name(entry["label"])):
            theirs = model_study(config, entry)
            if site_tag:  # its only site ('layer: last' is resolved by its own model)
                theirs["site"] = {"kind": Site.from_tag(site_tag).kind, "layer": Site.from_tag(site_tag).layer}
            return rule.removeprefix(module_name(entry["label"])), theirs, f"{entry['label']}: "
    return rule, config, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--rates", type=Path, default=DEFAULT_RATES, help="a table from engine_benchmark.py --out")
    parser.add_argument("--json", type=Path, help="also write the plan here")
    args = parser.parse_args()

    config = yaml.safe_load(args.configfile.read_text()) or {}
    validate(config, str(ROOT / "schemas" / "config.schema.yaml"))  # fills the schema's defaults
    rates = Rates(json.loads(args.rates.read_text()))
    steps, engine = config["optimizer"]["steps"], config["engine"]
    startup = rates.table.get("startup", {})
    device_s, cpu_s = startup.get("device_s", 0.0), startup.get("cpu_s", 0.0)
    jobs, rows = gpu_jobs(config), []
    for named, w in jobs:
        rule, job_cfg, model = job_config(config, named, w.get("site"))
        if rule == "optimise_pack":
            runs = study.layout(job_cfg, w["experiment"], w["site"]).runs(w["experiment"], *parse_pack(w["pack"]))
            batches = [b for members in study.variants(runs).values() for b in batch_sizes(len(members), engine["batch_size"])]
            layer = Site.from_tag(w["site"]).layer
            seconds, optimising, how = device_s, 0.0, set()
            for b in batches:
                batch_s, optimising_s, kind = rates.batch_seconds(layer, engine["precision"], b, engine["capture"], steps)
                seconds += batch_s
                optimising += optimising_s
                how.add(kind)
            rows.append(dict(rule=rule, job=f"{model}{w['experiment']} {w['site']} {w['pack']}", runs=len(runs),
                             run_steps=len(runs) * steps, batches=batches, seconds=seconds, optimising_s=optimising,
                             how=", ".join(sorted(how)),
                             decides_budget=w["experiment"] == "experiment1" and w["site"] == study.site_of(job_cfg).tag))
        else:  # a measured whole-job wall time; its start-up now happens before the claim
            measured = rates.table.get("jobs", {}).get(rule)
            seconds = None if measured is None else max(measured - cpu_s, 0.0) + device_s
            rows.append(dict(rule=rule, job=model + (" ".join(w.values()) or "-"), runs=0, run_steps=0, batches=[],
                             seconds=seconds, how="measured job - start-up" if measured is not None else "no rate"))

    print(f"config: {args.configfile}; rates: {args.rates.name} ({rates.table['device']}; {rates.table['engine']})")
    print(f"precision {engine['precision']}, capture {engine['capture']}, runs_per_job {engine['runs_per_job']}, "
          f"batch_size {engine['batch_size']}, {steps} steps\n")
    print("| rule | job | runs | run-steps | batches | projected s | from |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        seconds = "?" if r["seconds"] is None else f"{r['seconds']:,.0f}"
        batches = " + ".join(map(str, r["batches"])) or "-"
        print(f"| {r['rule']} | {r['job']} | {r['runs']:,} | {r['run_steps']:,} | {batches} | {seconds} | {r['how']} |")
    packs = [r for r in rows if r["rule"] == "optimise_pack"]
    optimise = sum(r["seconds"] for r in packs)
    other = sum(r["seconds"] for r in rows if r["rule"] != "optimise_pack" and r["seconds"] is not None)
    unknown = sorted({r["rule"] for r in rows if r["seconds"] is None})
    total = cpu_s + optimise + other
    idle = 1 - sum(r["optimising_s"] for r in packs) / optimise if packs else 0.0
    print(f"\n{len(packs)} optimisation jobs, {sum(r['runs'] for r in packs):,} runs, "
          f"{sum(r['run_steps'] for r in packs):,} run-steps: {optimise / 60:.1f} min on the device, "
          f"{idle:.1%} of it claimed but not optimising")
    print(f"{len(rows) - len(packs)} other GPU jobs: {other / 60:.1f} min" + (f" (no rate for {unknown})" if unknown else ""))
    print(f"projected wall time on one {rates.table['device']}: {total / 60:.1f} min "
          f"(first start-up {cpu_s:.0f} s; later start-ups hidden behind compute with --resources gpu=2)")
    extend = config["optimizer"]["extend_steps"]
    extended = None
    if extend is not None and config["experiments"]["experiment1"]["enabled"]:
        # Exp 1's packs run `steps` and decide; if they decide to extend, they continue to
        # extend_steps and every other pack runs extend_steps from the start
        extra = sum(r["optimising_s"] * (extend - steps) / steps for r in packs)
        extended = total + extra + sum(device_s for r in packs if r["decides_budget"])
        print(f"step budget pending (optimizer.extend_steps = {extend}): if Exp 1's curves still fall at {steps} "
              f"steps, every run goes to {extend} and the projection is {extended / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps({"rates": str(args.rates), "jobs": rows, "optimise_s": optimise,
                                         "other_gpu_s": other, "total_s": total, "total_if_extended_s": extended},
                                        indent=1))


if __name__ == "__main__":
    main()
