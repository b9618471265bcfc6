"""The GPU benchmark stays runnable: a tiny CPU smoke run prints the side-by-side table."""

import subprocess
import sys

from workflow_helpers import ROOT


def test_benchmark_smoke_run_prints_the_table(tmp_path):
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "engine_benchmark.py"), "--tiny", "--device", "cpu",
         "--batches", "1", "4", "--precisions", "fp32", "--layers", "6", "--steps", "3",
         "--reference-steps", "3", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| seed reference" in result.stdout and "× reference" in result.stdout
    import json

    rows = json.loads(out.read_text())["rows"]
    assert [r["batch"] for r in rows] == [1, 1, 4] and all(r["run_steps_per_s"] > 0 for r in rows)


def test_precision_benchmark_smoke_run_names_a_default():
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "precision_benchmark.py"), "--tiny", "--device", "cpu",
         "--steps", "5", "--batch", "2", "--layer", "3"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| bf16 |" in result.stdout and "fastest within 2% of fp32" in result.stdout


def test_pipeline_overhead_reads_a_finished_demo(demo):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "pipeline_overhead.py"), str(demo / "results")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "35 optimisation jobs" in result.stdout and "overhead outside optimisation:" in result.stdout
