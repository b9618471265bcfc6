"""The benchmarks stay runnable (tiny CPU smoke runs), and plan.py reads the workflow's plan."""

import json
import re
import subprocess
import sys

import pytest

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
    assert len(packs) <= 20 and sum(job["runs"] for job in packs) == 500 * 3 + 800 + 1650 + 300 + 300 + 10 * 40
    assert {job["rule"] for job in plan["jobs"] if job["gpu"]} == {"optimise_pack", "cache_residuals",
                                                                   "perturb_residuals", "analyse_solutions",
                                                                   "placement_curve"}
    (expected, lower), (extended, _) = plan["outcomes"].values()
    assert expected > lower > sum(job["device_s"] for job in packs) > 0 and extended > expected
    assert "expected" in stdout and "on one NVIDIA H100" in stdout and "lower bound" in stdout
    assert all(job["source"] for job in plan["jobs"] if job["gpu"])  # every GPU job says what priced it
    assert any("extrapolated" in job["source"] for job in packs)  # the landed table covers B <= 256 captured


def test_the_checkpoint_sweep_is_planned_model_by_model(tmp_path):
    """docs/pythia_checkpoints.yaml (the README's sweep): Exp 1 and Exp 2b at five checkpoints."""
    stdout = run("plan.py", "--configfile", ROOT / "docs" / "pythia_checkpoints.yaml", "--json", tmp_path / "plan.json")
    packs = [job for job in json.loads((tmp_path / "plan.json").read_text())["jobs"] if job["rule"] == "optimise_pack"]
    assert len(packs) == 10 and sum(job["runs"] for job in packs) == 5 * 2 * 500
    assert {job["model"] for job in packs} == {"", "step1000", "step8000", "step36000", "step71000"}
    assert "on one NVIDIA H100" in stdout


def test_plan_reads_a_rate_table_that_the_engine_benchmark_wrote(tmp_path):
    rates = tmp_path / "rates.json"
    run("engine_benchmark.py", "--tiny", "--device", "cpu", "--batches", "2", "8", "--precisions", "fp32",
        "--layers", "4", "--steps", "2", "--reference-steps", "2", "--out", rates)
    stdout = run("plan.py", "--configfile", ROOT / "demo.yaml", "--rates", rates, "--json", tmp_path / "plan.json")
    plan = json.loads((tmp_path / "plan.json").read_text())
    packs = [job for job in plan["jobs"] if job["rule"] == "optimise_pack"]
    assert "cpu" in stdout and all(job["device_s"] > 0 for job in packs)
    assert all(job["source"].startswith(("soft eager fp32", "pez eager fp32")) for job in packs)  # the CPU: eager


def load_plan():
    import importlib
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module("plan")


TABLE = {"device": "NVIDIA X", "startup": {"cpu_s": 10.0, "device_s": 1.0, "cpu_job_s": 2.0}, "rows": [
    {"method": "soft", "layer": 12, "precision": "tf32", "batch": b, "capture": True, "ran": "captured",
     "run_steps_per_s": r, "fixed_s": f} for b, r, f in ((100, 1000.0, 1.0), (400, 4000.0, 2.0))] + [
    {"method": "soft", "layer": 6, "precision": "tf32", "batch": 100, "capture": True, "ran": "captured",
     "run_steps_per_s": 3000.0, "fixed_s": 1.0},
    {"method": "soft", "layer": 12, "precision": "tf32", "batch": 800, "capture": False, "ran": "eager",
     "run_steps_per_s": 6000.0, "fixed_s": 0.5}]}


def test_the_rate_of_a_batch_says_whether_it_was_measured_interpolated_or_extrapolated():
    rates = load_plan().Rates(TABLE)
    rate, fixed, source = rates.estimate("soft", "tf32", "captured", 12, 100)
    assert (rate, fixed) == (1000.0, 1.0) and "measured" in source
    rate, _, source = rates.estimate("soft", "tf32", "captured", 12, 200)  # halfway in log B: the geometric mean
    assert rate == pytest.approx(2500.0) and "interpolated in log B" in source
    rate, _, source = rates.estimate("soft", "tf32", "captured", 12, 50)  # launch-bound below: the same step time
    assert rate == pytest.approx(500.0) and "extrapolated" in source
    rate, _, source = rates.estimate("soft", "tf32", "captured", 12, 1600)
    assert rate == 4000.0 and "above the largest measured" in source
    rate, _, source = rates.estimate("soft", "tf32", "captured", 9, 100)  # time per run-step linear in layers
    assert 1 / rate == pytest.approx(0.5 / 1000 + 0.5 / 3000) and "between layers 6 and 12" in source
    rate, _, source = rates.estimate("soft", "tf32", "captured", 3, 100)
    assert rate == pytest.approx(6000.0) and "scaled by blocks (extrapolated)" in source


def test_a_captured_batch_beyond_the_captured_rows_is_bounded_by_a_measured_eager_rate():
    rates = load_plan().Rates(TABLE)
    seconds, optimising, source = rates.batch_seconds("soft", 12, "tf32", 800, True, 100)
    assert optimising == pytest.approx(100 * 800 / 6000.0) and seconds == pytest.approx(optimising + 0.5)
    assert "eager" in source and "captured rate would be 4,000" in source
    _, _, source = rates.batch_seconds("pez", 12, "tf32", 100, True, 100)
    assert "no pez rows" in source


def test_the_schedule_of_a_known_dag():
    plan = load_plan()

    def job(i, gpu, cpu_s, device_s=0.0, after=()):
        return plan.Job(i, "optimise_pack" if gpu else "aggregate", {}, [], [], gpu, set(after), cpu_s, device_s)

    two = [job(1, True, 10, 5), job(2, True, 10, 5), job(3, False, 2, after=(1, 2))]
    # gpu=2 on one device: both start up together, then hold the device in turn; then the CPU job
    assert plan.schedule(two, cores=4, gpu_slots=2, devices=1, snakemake_s=1, checkpoints=0) == 1 + 10 + 5 + 5 + 2
    # gpu=1: nothing overlaps
    assert plan.schedule(two, cores=4, gpu_slots=1, devices=1, snakemake_s=1, checkpoints=0) == 1 + 15 + 15 + 2
    # one core: the jobs queue for it too
    assert plan.schedule(two, cores=1, gpu_slots=2, devices=1, snakemake_s=0, checkpoints=0) == 15 + 15 + 2


def test_pipeline_overhead_reads_a_finished_demo(demo):
    stdout = run("pipeline_overhead.py", demo / "results")
    extended = len(list((demo / "results" / "experiment1" / "runs_extended").rglob("*.h5")))
    assert f"{13 + extended} optimisation jobs (packs and continuations) held the device" in stdout
    assert "claimed but not optimising" in stdout and "| optimise_pack | 13 |" in stdout


@pytest.mark.slow
def test_the_gpu_check_runs_every_stage_in_smoke_mode(tmp_path):
    """benchmarks/gpu_check.sh, the one prepared command for a GPU window, cannot rot between
    windows: its --smoke mode runs the same stages on the CPU, and every one must pass."""
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], capture_output=True,
                            text=True, timeout=600, env={**__import__("os").environ, "OUT": str(tmp_path)})
    summary = (tmp_path / "summary.md").read_text()
    assert result.returncode == 0, summary
    table = summary.split("| stage |", 1)[1].split("\n\n", 1)[0]  # the stage table, first in the summary
    stages = dict(re.findall(r"^\| (\w+) \| ([^|]+) \|", table, flags=re.M))
    assert {k: v.strip() for k, v in stages.items()} == {
        s: "ok" for s in ("env", "wheels", "tests", "capture", "engine", "gcg", "perturbation", "dag")}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs.tgz", "rates.json", "summary.md"]  # <= 8 files back
    assert "measured / projected" in summary


def test_a_gcg_batch_is_priced_from_its_own_rows_or_from_the_soft_rate_saying_so():
    plan = load_plan()
    rows = TABLE["rows"] + [{"method": "gcg", "layer": 12, "precision": "tf32", "batch": 100, "capture": False,
                             "ran": "eager", "run_steps_per_s": 50.0, "fixed_s": 0.0, "candidates": 16}]
    rates = plan.Rates({**TABLE, "rows": rows})
    _, optimising, source = rates.batch_seconds("gcg", 12, "tf32", 100, True, 10, candidates=32)
    assert optimising == pytest.approx(10 * 100 / 50.0 * (2 + 32) / (2 + 16)) and "scaled to 32" in source
    _, exact, _ = rates.batch_seconds("gcg", 12, "tf32", 100, True, 10, candidates=16)
    assert exact == pytest.approx(10 * 100 / 50.0)  # never captured: its eager rows
    soft_only = plan.Rates(TABLE)
    _, estimate, source = soft_only.batch_seconds("gcg", 12, "tf32", 100, False, 10, candidates=16)
    # eager (GCG is never captured): the one-hot gradient at B = 100, below the eager rows' smallest batch (800:
    # the same step time), and 16 forwards per run-step at half the eager rate of a 1600-sequence batch
    gradient = 10 * 100 / (6000.0 * 100 / 800) + 0.5
    assert estimate == pytest.approx(gradient + 10 * 100 * 16 * (1600 / 6000.0 + 0.5) / 1600 / 2)
    assert "no gcg rows" in source and "an estimate" in source
