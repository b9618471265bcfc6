"""Where a finished study's GPU time went: optimising, or holding the device without optimising.

Every GPU job records how long it held its device (`device_held_s`: from the claim, after its
CPU start-up, to the release, before its output is written); optimisation packs also record
their optimisation loop (`optimising_s`). Snakemake's benchmark files give each job's whole
wall time (start-up included).

  python benchmarks/pipeline_overhead.py results
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow_scripts"))  # this checkout's library first

from reachability.storage import read_attrs, read_h5


def held_by_other_gpu_jobs(results: Path) -> dict[str, float]:
    """Device seconds of the GPU jobs that are not optimisation packs, by rule."""
    held = defaultdict(float)
    for path in results.glob("cache/*/pool_residuals.h5"):
        held["cache_residuals"] += read_attrs(path).get("device_held_s", 0.0)
    for path in [*results.glob("*/solutions.json"), *results.glob("perturbation/kl_vs_epsilon.json")]:
        rule = "perturb_residuals" if path.name.startswith("kl_") else "analyse_solutions"
        held[rule] += json.loads(path.read_text()).get("device_held_s", 0.0)
    return dict(held)


def job_walls(results: Path) -> dict[str, list[float]]:
    """Whole-job wall seconds by rule, from Snakemake's benchmark files."""
    walls = defaultdict(list)
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        relative = tsv.relative_to(results / "benchmarks")  # {rule}.tsv or {rule}/.../{job}.tsv
        rule = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        with open(tsv) as f:
            walls[rule].append(float(next(csv.DictReader(f, delimiter="\t"))["s"]))
    return dict(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    packs = sorted([*args.results.glob("*/runs/*/*.h5"), *args.results.glob("*/runs_extended/*/*.h5")])
    if not packs:
        raise SystemExit(f"no finished optimisation packs under {args.results}")
    held = optimising = run_steps = 0.0
    for path in packs:
        attrs = read_attrs(path)
        held += attrs["device_held_s"]
        optimising += attrs["optimising_s"]
        steps = attrs["steps"] - attrs.get("continued_from_steps", 0)  # a continuation's own steps
        run_steps += steps * len(read_h5(path, ["target_id"])[0]["target_id"])
    other = held_by_other_gpu_jobs(args.results)
    print(f"{len(packs)} optimisation jobs (packs and continuations) held the device {held:.1f} s, {optimising:.1f} s of it optimising: "
          f"claimed but not optimising {1 - optimising / held:.1%}")
    print(f"run-steps/s: {run_steps / optimising:,.0f} in the loop, {run_steps / held:,.0f} while holding the device")
    total = held + sum(other.values())
    print(f"all GPU jobs held the device {total:.1f} s; not optimising: {1 - optimising / total:.1%} "
          f"(other jobs: {', '.join(f'{k} {v:.1f} s' for k, v in sorted(other.items())) or 'none'})")
    walls = job_walls(args.results)
    if walls:
        print("\n| rule | jobs | wall s (sum) | wall s (max) |\n|---|---|---|---|")
        for rule, seconds in sorted(walls.items(), key=lambda kv: -sum(kv[1])):
            print(f"| {rule} | {len(seconds)} | {sum(seconds):.1f} | {max(seconds):.1f} |")


if __name__ == "__main__":
    main()
