"""The benchmarks stay runnable (tiny CPU smoke runs), and plan.py reads the workflow's plan."""

import json
import re
import subprocess
import sys

from workflow_helpers import ROOT


def run(script, *args, timeout=300):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_engine_benchmark_smoke_run_prints_the_table_and_writes_a_rate_table(tmp_path):
    out = tmp_path / "rates.json"
    stdout = run("engine_benchmark.py", "--tiny", "--device", "cpu", "--batches", "1", "4", "--precisions", "fp32",
                 "--layers", "6", "--steps", "3", "--reference-steps", "3", "--out", out)
    assert "| seed reference" in stdout and "× reference" in stdout and "start-up of a GPU job" in stdout
    table = json.loads(out.read_text())
    assert [r["batch"] for r in table["rows"]] == [1, 4] and all(r["run_steps_per_s"] > 0 for r in table["rows"])
    assert table["reference"]["run_steps_per_s"] > 0 and table["startup"]["cpu_s"] > 0
    assert not any(r["capture"] for r in table["rows"])  # the CPU has no CUDA graphs


def test_precision_benchmark_on_real_text_names_a_default(tmp_path):
    from reachability.demo_model import train_tokenizer

    train_tokenizer(ROOT / "demo" / "corpus.txt", 300).save_pretrained(tmp_path)
    stdout = run("precision_benchmark.py", "--tiny", "--device", "cpu", "--steps", "5", "--batch", "2",
                 "--layer", "3", "--text", ROOT / "demo" / "corpus.txt", "--tokenizer", tmp_path)
    assert "| bf16 |" in stdout and "fastest within 2% of fp32" in stdout and "real sequences of" in stdout


def test_perturbation_benchmark_agrees_with_the_notebook_loop():
    stdout = run("perturbation_benchmark.py", "--tiny", "--device", "cpu", "--sequences", "3", "--directions", "2",
                 "--epsilons", "0", "1")
    gap = float(re.search(r"largest \|ΔKL\| between them (\S+)", stdout).group(1))
    assert "notebook 004 loop" in stdout and gap < 1e-5


def test_the_agendas_plan_has_few_jobs_and_a_projected_time(tmp_path):
    stdout = run("plan.py", "--configfile", ROOT / "config.yaml", "--json", tmp_path / "plan.json")
    plan = json.loads((tmp_path / "plan.json").read_text())
    packs = [job for job in plan["jobs"] if job["rule"] == "optimise_pack"]
    assert len(packs) <= 20 and sum(job["runs"] for job in packs) == 500 * 3 + 800 + 1650 + 300 + 150 + 10 * 40
    assert {job["rule"] for job in plan["jobs"]} == {"optimise_pack", "cache_residuals", "perturb_residuals",
                                                    "analyse_solutions"}
    assert "projected wall time on one NVIDIA H100" in stdout and plan["total_s"] > plan["optimise_s"] > 0


def test_the_checkpoint_sweep_is_planned_model_by_model(tmp_path):
    """docs/pythia_checkpoints.yaml (the README's sweep): Exp 1 and Exp 2b at five checkpoints."""
    stdout = run("plan.py", "--configfile", ROOT / "docs" / "pythia_checkpoints.yaml", "--json", tmp_path / "plan.json")
    packs = [job for job in json.loads((tmp_path / "plan.json").read_text())["jobs"] if job["rule"] == "optimise_pack"]
    assert len(packs) == 10 and sum(job["runs"] for job in packs) == 5 * 2 * 500
    labels = {job["job"].split(": ")[0] for job in packs if ": " in job["job"]}
    assert labels == {"step1000", "step8000", "step36000", "step71000"}  # and the study's own, unlabelled
    assert "projected wall time on one NVIDIA H100" in stdout


def test_plan_reads_a_rate_table_that_the_engine_benchmark_wrote(tmp_path):
    rates = tmp_path / "rates.json"
    run("engine_benchmark.py", "--tiny", "--device", "cpu", "--batches", "2", "8", "--precisions", "fp32",
        "--layers", "4", "--steps", "2", "--reference-steps", "2", "--out", rates)
    stdout = run("plan.py", "--configfile", ROOT / "demo.yaml", "--rates", rates, "--json", tmp_path / "plan.json")
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert "cpu" in stdout and all(job["seconds"] > 0 for job in plan["jobs"] if job["rule"] == "optimise_pack")
    assert all(job["how"] == "eager (no capture rows)" for job in plan["jobs"] if job["rule"] == "optimise_pack")


def test_pipeline_overhead_reads_a_finished_demo(demo):
    stdout = run("pipeline_overhead.py", demo / "results")
    extended = len(list((demo / "results" / "experiment1" / "runs_extended").rglob("*.h5")))
    assert f"{13 + extended} optimisation jobs (packs and continuations) held the device" in stdout
    assert "claimed but not optimising" in stdout and "| optimise_pack | 13 |" in stdout
