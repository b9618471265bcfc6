"""Share of a finished study's GPU-job wall time spent outside optimisation steps.

Reads Snakemake's per-job benchmark files (`results/benchmarks/optimise/**.tsv`: the job's
wall time, imports and model load included) and each shard's own `wall_s` (the optimisation
loop alone), and prints the overhead share and the run-steps/s seen end to end.

  python benchmarks/pipeline_overhead.py results
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from reachability.storage import read_attrs, read_h5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    job_s = optimise_s = run_steps = 0.0
    jobs = 0
    benchmarks = args.results / "benchmarks" / "optimise"
    for tsv in sorted(benchmarks.rglob("*.tsv")):
        # benchmarks/optimise/{experiment}/{site}/{condition}/{shard}.tsv -> {experiment}/runs/{site}/...
        experiment, *rest = tsv.relative_to(benchmarks).with_suffix(".h5").parts
        shard = args.results / experiment / "runs" / Path(*rest)
        if not shard.exists():
            continue
        with open(tsv) as f:
            job_s += float(next(csv.DictReader(f, delimiter="\t"))["s"])
        attrs = read_attrs(shard)
        optimise_s += attrs["wall_s"]
        run_steps += attrs["steps"] * len(read_h5(shard, ["target_id"])[0]["target_id"])
        jobs += 1
    if not jobs:
        raise SystemExit(f"no finished optimisation shards with benchmark files under {args.results}")
    print(f"{jobs} optimisation jobs: {job_s:.1f} s of job wall time, {optimise_s:.1f} s in optimisation steps")
    print(f"overhead outside optimisation: {1 - optimise_s / job_s:.1%}")
    print(f"run-steps/s: {run_steps / optimise_s:,.0f} in the loop, {run_steps / job_s:,.0f} end to end")


if __name__ == "__main__":
    main()
