"""The benchmarks stay runnable (tiny CPU smoke runs), and plan.py reads the workflow's plan."""

import json
import re
import subprocess
import sys

import pytest
import yaml

from workflow_helpers import ROOT, validated


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


def test_the_research_logs_config_dry_runs_offline_and_is_priced_at_its_own_steps(tmp_path):
    """configs/research_log.yaml: the log's objective, site and per-experiment step counts, planned
    without the hub and priced pack by pack."""
    config = validated(yaml.safe_load((ROOT / "configs" / "research_log.yaml").read_text()))
    assert config["optimizer"]["loss"] == {"kind": "cosine_mse", "mse_weight": 0.01}
    assert config["site"] == {"kind": "hidden_states", "layer": 6}
    run("plan.py", "--configfile", ROOT / "configs" / "research_log.yaml", "--json", tmp_path / "plan.json")
    packs = [job for job in json.loads((tmp_path / "plan.json").read_text())["jobs"] if job["rule"] == "optimise_pack"]
    steps = {job["wildcards"]["experiment"]: int(job["wildcards"]["steps"]) for job in packs}
    assert steps == {"experiment1": 1000, "experiment2a": 2000, "experiment2b": 3000, "experiment3": 1000,
                     "experiment4p": 1000, "ablation": 1000, "prefix_steering": 1000}
    runs = {job["wildcards"]["experiment"]: job["runs"] for job in packs}
    assert runs == {"experiment1": 150, "experiment2a": 150, "experiment2b": 150, "experiment3": 10 * 8 * 3,
                    "experiment4p": 20 * 7 * 2, "ablation": 50 * 2 * 3, "prefix_steering": 20 * 4 * 2}
    assert all(job["device_s"] > 0 and job["kind"] != "missing" for job in packs)


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
    assert "expected" in stdout and "on one NVIDIA H200" in stdout and "lower bound" in stdout
    # every job names its source and how it was got; the landed table has GCG captured at B = 32 only
    assert all(job["source"] and job["kind"] in ("measured", "interpolated", "extrapolated", "estimated", "missing")
               for job in plan["jobs"])
    assert any(job["kind"] == "extrapolated" for job in packs) and any(job["kind"] == "measured" for job in packs)
    assert re.search(r"\d+% measured, \d+% extrapolated", stdout)  # the shares of pack time
    # the FLOPs of every pack beside its time, and the fraction of the device's peak
    assert all(job["gflop"] > 0 for job in packs) and "| TFLOP | of peak |" in stdout
    share = float(re.search(r"PFLOP in [\d.]+ min, ([\d.]+)% of the peak", stdout).group(1))
    flop = sum(job["gflop"] for job in packs) * 1e9
    table = json.loads(load_plan().DEFAULT_RATES.read_text())
    peak = table["peak_tflops"]["tf32"] * 1e12
    assert share == pytest.approx(100 * flop / sum(job["device_s"] for job in packs) / peak, abs=0.1)
    # the six residual caches are one job, and the plan says what that saves
    (caches,) = [job for job in plan["jobs"] if job["rule"] == "cache_residuals"]
    assert len(caches["outputs"]) == 6 and "cache_residuals: 6 outputs in 1 job(s)" in stdout
    # no dry run of this machine in the figures: the table's DAG building, measured on the GPU's machine
    assert plan["snakemake_s"] == pytest.approx(table["dag_building"]["seconds"])
    assert plan["snakemake_source"].startswith("measured")


def test_the_checkpoint_sweep_is_planned_model_by_model(tmp_path):
    """docs/pythia_checkpoints.yaml (the README's sweep): Exp 1 and Exp 2b at five checkpoints."""
    stdout = run("plan.py", "--configfile", ROOT / "docs" / "pythia_checkpoints.yaml", "--json", tmp_path / "plan.json")
    packs = [job for job in json.loads((tmp_path / "plan.json").read_text())["jobs"] if job["rule"] == "optimise_pack"]
    assert len(packs) == 10 and sum(job["runs"] for job in packs) == 5 * 2 * 500
    assert {job["model"] for job in packs} == {"", "step1000", "step8000", "step36000", "step71000"}
    assert "on one NVIDIA H200" in stdout


def test_plan_reads_a_rate_table_that_the_engine_benchmark_wrote(tmp_path):
    rates = tmp_path / "rates.json"
    run("engine_benchmark.py", "--tiny", "--device", "cpu", "--batches", "2", "8", "--precisions", "fp32",
        "--layers", "4", "--steps", "2", "--reference-steps", "2", "--out", rates)
    stdout = run("plan.py", "--configfile", ROOT / "demo.yaml", "--rates", rates, "--json", tmp_path / "plan.json")
    plan = json.loads((tmp_path / "plan.json").read_text())
    packs = [job for job in plan["jobs"] if job["rule"] == "optimise_pack"]
    assert "cpu" in stdout and all(job["device_s"] > 0 for job in packs)
    sources = [part for job in packs for part in job["source"].split(" | ")]  # each method's batches: the CPU is eager
    assert all(part.startswith(("soft eager fp32", "pez eager fp32", "no gcg rows", "no inversion rows")) for part in sources)
    assert any(part.startswith("no inversion rows: 1024 + 1 one-position forwards") for part in sources)  # the demo's V
    table = json.loads(rates.read_text())
    assert table["peak_tflops"]["fp32"] > 0 and {(f["method"], f["layer"]) for f in table["flops"]} == {("soft", 4)}


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
    rate, fixed, _, kind = rates.estimate("soft", "tf32", "captured", 12, 100)
    assert (rate, fixed, kind) == (1000.0, 1.0, "measured")
    rate, _, source, kind = rates.estimate("soft", "tf32", "captured", 12, 200)  # halfway in log B: geometric mean
    assert rate == pytest.approx(2500.0) and kind == "interpolated" and "in log B" in source
    rate, _, _, kind = rates.estimate("soft", "tf32", "captured", 12, 50)  # launch-bound below: the same step time
    assert rate == pytest.approx(500.0) and kind == "extrapolated"
    rate, _, source, kind = rates.estimate("soft", "tf32", "captured", 12, 1600)
    assert rate == 4000.0 and kind == "extrapolated" and "above the largest" in source
    rate, _, source, kind = rates.estimate("soft", "tf32", "captured", 9, 100)  # time per run-step linear in layers
    assert 1 / rate == pytest.approx(0.5 / 1000 + 0.5 / 3000) and kind == "interpolated" and "layers 6 and 12" in source
    rate, _, source, kind = rates.estimate("soft", "tf32", "captured", 3, 100)
    assert rate == pytest.approx(6000.0) and kind == "extrapolated" and "scaled by blocks" in source


def test_a_batch_is_priced_at_the_step_the_config_runs_saying_when_eager_would_be_faster():
    """On the H200 (2026-12-04) the eager step beat the replay by 8 % at B >= 500: a captured
    study is priced at the captured rate, not at the faster eager one, and the plan says so."""
    rates = load_plan().Rates(TABLE)
    seconds, optimising, source, kind = rates.batch_seconds("soft", 12, "tf32", 800, True, 100)
    assert optimising == pytest.approx(100 * 800 / 4000.0) and kind == "extrapolated"
    assert "captured" in source and "the eager step would be faster: 6,000" in source
    seconds, optimising, source, kind = rates.batch_seconds("soft", 12, "tf32", 800, False, 100)
    assert optimising == pytest.approx(100 * 800 / 6000.0) and seconds == pytest.approx(optimising + 0.5)
    assert "eager" in source and kind == "measured"
    # a study without capture priced from a table of captured rows only: the captured rate, said
    captured_only = load_plan().Rates({**TABLE, "rows": [r for r in TABLE["rows"] if r["capture"]]})
    _, optimising, source, _ = captured_only.batch_seconds("soft", 12, "tf32", 100, False, 100)
    assert optimising == pytest.approx(100 * 100 / 1000.0) and "no eager rows: the captured rate" in source
    # a "mixed" row (one timing eager, the other captured) prices nothing: GCG is then estimated from soft rows
    mixed = {**TABLE, "rows": TABLE["rows"] + [
        {"method": "gcg", "layer": 12, "precision": "tf32", "batch": 100, "capture": True, "ran": "mixed",
         "run_steps_per_s": 45.0, "candidates": 512}]}
    _, _, source, kind = load_plan().Rates(mixed).batch_seconds("gcg", 12, "tf32", 100, True, 100, 512)
    assert "no gcg rows" in source and kind == "estimated"
    _, _, source, kind = rates.batch_seconds("pez", 12, "tf32", 100, True, 100)
    assert "no pez rows" in source and kind == "estimated"


def test_flops_and_dag_building_come_from_the_table_each_saying_how():
    rates = load_plan().Rates({**TABLE, "flops": [{"method": "soft", "layer": 6, "gflop_per_run_step": 3.0},
                                                  {"method": "soft", "layer": 12, "gflop_per_run_step": 6.0},
                                                  {"method": "gcg", "layer": 12, "candidates": 16,
                                                   "gflop_per_run_step": 36.0}],
                               "dag_building": {"seconds": 20.0, "jobs": 100, "config": "config.yaml"}})
    assert rates.gflop("soft", 12) == (6.0, "measured") and rates.gflop("soft", 9) == (4.5, "interpolated")
    assert rates.gflop("soft", 3) == (1.5, "extrapolated") and rates.gflop("pez", 12) is None
    assert rates.gflop("gcg", 12, 32) == (pytest.approx(36.0 * 34 / 18), "extrapolated")
    assert rates.dag_building(100)[0] == 20.0 and rates.dag_building(100)[1].startswith("measured")
    assert rates.dag_building(50)[0] == 10.0 and "scaled by jobs" in rates.dag_building(50)[1]
    assert load_plan().Rates(TABLE).dag_building(100) == (0.0, "not measured on this table's machine: left out")


def test_each_jobs_time_is_read_from_a_snakemake_log():
    log = """Building DAG of jobs...
[Thu Dec  3 22:07:22 2026]
localrule build_demo_model:
    output: resources/demo-model
    jobid: 2
[Thu Dec  3 22:07:22 2026]
rule cache_residuals:
    output: results/cache/hs4/pool_residuals.h5
    jobid: 5
[Thu Dec  3 22:07:28 2026]
Finished jobid: 2 (Rule: build_demo_model)
1 of 3 steps (33%) done
[Thu Dec  3 22:08:01 2026]
localcheckpoint step_budget:
    jobid: 7
[Thu Dec  3 22:08:03 2026]
Finished jobid: 5 (Rule: cache_residuals)
[Thu Dec  3 22:08:05 2026]
Finished jobid: 7 (Rule: step_budget)
"""
    assert load_plan().job_seconds(log) == {"build_demo_model": [6.0], "cache_residuals": [41.0], "step_budget": [4.0]}


def test_the_points_to_measure_are_every_packs_in_order_of_the_work_they_price():
    plan = load_plan()
    soft = plan.Job(1, "optimise_pack", {}, [], [], True, layer=12, groups=[("soft", 2000, 500, {})])
    sweep = plan.Job(2, "optimise_pack", {}, [], [], True, layer=3, groups=[("soft", 2000, 40, {})])
    hard = plan.Job(3, "optimise_pack", {}, [], [], True, layer=12, groups=[
        ("pez", 2000, 150, {}), ("gcg", 100, 150, {"candidates": 512})])
    assert plan.points([sweep, soft, hard]) == ["gcg:12:150", "soft:12:500", "pez:12:150", "soft:3:40"]
    bigger = plan.Job(4, "optimise_pack", {}, [], [], True, layer=12, groups=[("soft", 2000, 1650, {})])
    assert plan.points([hard, bigger])[:2] == ["soft:12:1650", "gcg:12:150"]  # 1650 x 2000 > 150 x 100 x 135


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
    packs = len(list((demo / "results").glob("*/runs/*/*.h5")))  # the study's own (not a compared model's)
    assert packs >= 13 and f"{packs + extended} optimisation jobs (packs and continuations) held the device" in stdout
    assert "claimed but not optimising" in stdout and f"| optimise_pack | {packs} |" in stdout


STAGES = ("env", "wheels", "tests", "capture", "engine", "perturbation", "dag")


def test_the_gpu_checks_stage_limits_add_up_within_its_budget_less_a_margin():
    """Read as it would run in a GPU slot: each stage's own limit, all of them within the budget
    less the margin the summary needs, the engine and the real DAG given the most."""
    script = (ROOT / "benchmarks" / "gpu_check.sh").read_text()
    budget = int(re.search(r"^budget=\$\{GPU_CHECK_BUDGET:-(\d+)\}", script, flags=re.M).group(1))
    margin = int(re.search(r"^margin=(\d+)", script, flags=re.M).group(1))
    calls = re.findall(r"^\s*stage (\w+) (\d+) (\d+) ", script, flags=re.M)
    limits = {name: int(limit) for name, limit, _ in calls}
    assert len(limits) == len({(name, limit) for name, limit, _ in calls})  # a stage has one limit in both branches
    assert tuple(limits) == STAGES and budget <= 540 and margin >= 20  # a 10-minute slot, its start-up and a rerun
    assert sum(limits.values()) <= budget - margin
    assert set(sorted(limits, key=limits.get)[-2:]) == {"engine", "dag"}


@pytest.mark.slow
def test_an_engine_measurement_cut_short_still_prices_the_plan(tmp_path):
    """As when a GPU slot's engine stage times out: plan.py --measure is killed once the rate
    table has its first soft-prompt row. The table holds what was measured (rewritten whole at each
    number), and plans are priced from it, each pack saying how and the missing ones named."""
    import os
    import signal
    import time

    import yaml

    from workflow_helpers import AGENDA_ONLY, demo_config

    rates = tmp_path / "rates.json"
    measuring = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "plan.py"), "--configfile",
                                  ROOT / "demo.yaml", "--measure", rates, "--steps", "2", "--cores", "2"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while not (rates.exists() and any(r["method"] == "soft" for r in json.loads(rates.read_text()).get("rows", ()))):
            assert measuring.poll() is None and time.monotonic() < deadline, "no soft row before the measurement ended"
            time.sleep(0.5)
    finally:
        os.killpg(measuring.pid, signal.SIGKILL)
        measuring.wait()
    table = json.loads(rates.read_text())
    assert table["dag_building"]["seconds"] > 0 and table["startup"]["cpu_s"] > 0 and table["flops"]
    reduced = demo_config(**{**AGENDA_ONLY, "experiments.experiment2a.enabled": False,
                             "experiments.experiment3.enabled": False, "experiments.experiment4.enabled": False,
                             "experiments.experiment1.methods": ["soft"]})  # the soft prompt: the rows measured
    (tmp_path / "reduced.yaml").write_text(yaml.safe_dump(reduced))
    run("plan.py", "--configfile", tmp_path / "reduced.yaml", "--rates", rates, "--json", tmp_path / "plan.json")
    packs = [j for j in json.loads((tmp_path / "plan.json").read_text())["jobs"] if j["rule"] == "optimise_pack"]
    assert packs and all(j["device_s"] > 0 and j["kind"] in ("measured", "interpolated", "extrapolated") for j in packs)
    stdout = run("plan.py", "--configfile", ROOT / "demo.yaml", "--rates", rates)  # rows it never reached
    missing = re.search(r"rows missing from the table \(.*?\): (.+)", stdout).group(1).split()
    measured = {f"{r['method']}:{r['layer']}:{r['batch']}" for r in table["rows"]}
    assert "pez:4:4" in missing and not measured & set(missing)


@pytest.mark.slow
def test_the_gpu_check_runs_every_stage_in_smoke_mode(tmp_path):
    """benchmarks/gpu_check.sh, the one prepared command for a GPU window, cannot rot between
    windows: its --smoke mode runs the same stages on the CPU, and every one must pass. The
    interpreter is the environment's that has the project, not a python3 without torch first on
    the PATH."""
    import os

    decoy = tmp_path / "bin"
    decoy.mkdir()
    for name in ("python3", "python"):  # first on the PATH, and no torch there
        (decoy / name).write_text("#!/bin/sh\nexit 1\n")
        (decoy / name).chmod(0o755)
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PATH": f"{decoy}:{os.environ['PATH']}",
           "VIRTUAL_ENV": sys.prefix}
    result = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], capture_output=True,
                            text=True, timeout=3000, env=env)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert result.returncode == 0, summary
    table = summary.split("| stage |", 1)[1].split("\n\n", 1)[0]  # the stage table, first in the summary
    stages = dict(re.findall(r"^\| (\w+) \| ([^|]+) \|", table, flags=re.M))
    assert {k: v.strip() for k, v in stages.items()} == {s: "ok" for s in STAGES}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["logs.tgz", "rates.json", "summary.md"]
    assert f"python: {sys.prefix}/bin/python" in summary and "measured / projected" in summary
    assert "| TFLOP | of peak |" in summary  # the engine stage's plan, priced from what it measured


def test_a_gcg_batch_is_priced_from_its_own_rows_or_from_the_soft_rate_saying_so():
    plan = load_plan()
    rows = TABLE["rows"] + [{"method": "gcg", "layer": 12, "precision": "tf32", "batch": 100, "capture": False,
                             "ran": "eager", "run_steps_per_s": 50.0, "fixed_s": 0.0, "candidates": 16}]
    rates = plan.Rates({**TABLE, "rows": rows})
    _, optimising, source, kind = rates.batch_seconds("gcg", 12, "tf32", 100, True, 10, candidates=32)
    assert optimising == pytest.approx(10 * 100 / 50.0 * (2 + 32) / (2 + 16)) and "scaled to 32" in source
    assert kind == "extrapolated"
    _, exact, _, kind = rates.batch_seconds("gcg", 12, "tf32", 100, True, 10, candidates=16)
    assert exact == pytest.approx(10 * 100 / 50.0) and kind == "measured"  # no captured GCG row: its eager one
    soft_only = plan.Rates(TABLE)
    _, estimate, source, kind = soft_only.batch_seconds("gcg", 12, "tf32", 100, False, 10, candidates=16)
    # eager: the one-hot gradient at B = 100, below the eager rows' smallest batch (800: the same step time), and
    # 16 forwards per run-step, each of (S + 1) / 2S of the positions, at half the eager rate of a 1600-sequence batch
    gradient = 10 * 100 / (6000.0 * 100 / 800) + 0.5
    assert estimate == pytest.approx(gradient + 10 * 100 * 16 * (1600 / 6000.0 + 0.5) / 1600 / 2 * 21 / 40)
    assert "no gcg rows" in source and kind == "estimated"
