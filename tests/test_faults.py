"""Nothing lost, nothing wrong: a killed job, a bad dataset, diverged runs."""

import json
import logging
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from reachability.results import collect_runs, summarise_condition
from reachability.storage import write_h5
from workflow_helpers import AGENDA_ONLY, demo_config, planned_jobs, planned_outputs, snakemake, snakemake_command

EXPERIMENTS = ("experiment1", "experiment2a", "experiment2b", "experiment3", "experiment4")


def running_pack(log_root: Path):
    """(pid, log path) of an optimisation job that has started optimising, or None."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if b"optimise_pack.py" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(str(log_root)) and "s of waiting" in Path(target).read_text():
                    return int(pid), Path(target)
        except OSError:
            continue
    return None


SMALL = {**AGENDA_ONLY, **{f"experiments.{e}.enabled": False
                           for e in ("experiment2a", "experiment2b", "experiment3", "experiment4")}}


def test_a_killed_job_loses_only_itself_and_the_rerun_equals_an_uninterrupted_run(demo, tmp_path):
    config = demo_config(**SMALL)
    proc = subprocess.Popen(snakemake_command(tmp_path, config, "--cores", "2", "--keep-going"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim, deadline = None, time.time() + 600
    while victim is None and proc.poll() is None and time.time() < deadline:
        found = running_pack(tmp_path / "results" / "logs" / "optimise")
        if found:
            try:
                os.kill(found[0], signal.SIGKILL)
                victim = found[1]
            except ProcessLookupError:
                pass  # it finished first: try the next one
        time.sleep(0.02)
    assert proc.wait(timeout=900) != 0 and victim is not None

    relative = victim.relative_to(tmp_path / "results" / "logs" / "optimise").with_suffix(".h5")
    experiment, site, name = relative.parts
    lost = f"results/{experiment}/runs/{site}/{name}"
    assert not (tmp_path / lost).exists()
    assert re.search(r"pack 0-16 holds 16 runs", victim.read_text())
    for path in (tmp_path / "results").rglob("*.h5"):  # nothing at a final path is half-written
        with h5py.File(path, "r") as f:
            assert len(f.keys()) > 0

    plan = snakemake(tmp_path, config, "--dry-run")
    finished = {str(p.relative_to(tmp_path)) for p in (tmp_path / "results").glob("*/runs/*/*.h5")}
    planned = planned_outputs(plan, "optimise_pack")  # the lost pack, and packs that never started
    assert lost in planned and not set(planned) & finished
    assert all(p == lost or not (tmp_path / p.replace("results/", "results/logs/optimise/", 1)
                                 .replace("/runs/", "/").replace(".h5", ".log")).exists() for p in planned)

    rerun = snakemake(tmp_path, config, "--cores", "2")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for e in ("experiment1",):  # same config, same numbers: two runs from clean, one interrupted
        ours = json.loads((tmp_path / "results" / e / "metrics.json").read_text())["conditions"]
        theirs = json.loads((demo / "results" / e / "metrics.json").read_text())["conditions"]
        assert ours == theirs, e


@pytest.mark.slow
def test_a_killed_snakemake_is_unlocked_and_resumed_with_equal_numbers(demo, tmp_path):
    """The whole Snakemake process group dies (node crash, kill -9) while a pack optimises:
    the README's recovery (--unlock, then --rerun-incomplete) recomputes the lost pack and
    what never ran, keeps what finished, and gives the numbers of an uninterrupted run."""
    config = demo_config(**SMALL)
    proc = subprocess.Popen(snakemake_command(tmp_path, config, "--cores", "2"), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    victim, deadline = None, time.time() + 600
    while victim is None and proc.poll() is None and time.time() < deadline:
        victim = running_pack(tmp_path / "results" / "logs" / "optimise")
        time.sleep(0.02)
    assert victim is not None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    finished = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").glob("*/runs/*/*.h5"))

    locked = snakemake(tmp_path, config, "--cores", "2")
    assert locked.returncode != 0 and "unlock" in (locked.stdout + locked.stderr)
    assert snakemake(tmp_path, config, "--unlock").returncode == 0
    plan = planned_outputs(snakemake(tmp_path, config, "--dry-run", "--rerun-incomplete"), "optimise_pack")
    lost = str(victim[1].relative_to(tmp_path / "results" / "logs" / "optimise").with_suffix(".h5"))
    experiment, site, name = lost.split("/")
    assert f"results/{experiment}/runs/{site}/{name}" in plan and not set(plan) & set(finished)
    rerun = snakemake(tmp_path, config, "--cores", "2", "--rerun-incomplete")
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for e in ("experiment1",):
        ours = json.loads((tmp_path / "results" / e / "metrics.json").read_text())["conditions"]
        theirs = json.loads((demo / "results" / e / "metrics.json").read_text())["conditions"]
        assert ours == theirs, e


def test_a_dataset_without_the_text_field_stops_before_any_model_work(tmp_path):
    result = snakemake(tmp_path, demo_config(**{"dataset.text_field": "content"}), "--cores", "1")
    assert result.returncode != 0
    # the study's own pool, or the compared model's (whichever ran first: the run stops there)
    logs = list((tmp_path / "results").rglob("extract_pool.log"))
    assert logs and all("no text field 'content'" in log.read_text() and "set dataset.text_field" in log.read_text()
                        for log in logs)
    assert not list((tmp_path / "results").rglob("cache")) and not list((tmp_path / "results").rglob("experiment1"))


def test_diverged_runs_are_counted_not_dropped(tmp_path):
    paths = []
    for restart, final in enumerate(([0.1, np.nan], [0.3, 0.2])):
        path = tmp_path / f"r{restart}.h5"
        write_h5(path, {
            "loss": np.ones((2, 10)), "initial_mse": np.ones(2), "final_mse": np.array(final),
            "cosine": np.ones((2, 3)), "diverged": np.isnan(final), "target_id": np.arange(2), "target_mean_square": np.ones(2),
            "condition": np.zeros(2, int), "restart": np.full(2, restart),
        }, {"conditions": ["real"]})
        paths.append(str(path))
    runs = collect_runs(paths, ["real"], n_targets=2, restarts=2, expect={})
    summary = summarise_condition(runs, 0, {"reached_threshold": 0.5, "plateau_tail": 0.2, "plateau_tolerance": 0.05,
                                              "plateau_fraction": 0.5})
    assert summary["n_diverged"] == 1
    np.testing.assert_allclose(summary["per_target"]["best_final_mse"], [0.1, 0.2], rtol=1e-6)
    assert summary["reached_fraction"] == 1.0


def test_a_missing_run_is_an_error_not_a_smaller_sample(tmp_path):
    path = tmp_path / "r0.h5"
    write_h5(path, {"loss": np.ones((1, 4)), "initial_mse": np.ones(1), "final_mse": np.ones(1),
                    "cosine": np.ones((1, 3)), "diverged": np.zeros(1, bool), "target_id": np.arange(1),
                    "target_mean_square": np.ones(1), "condition": np.zeros(1, int), "restart": np.zeros(1, int)},
             {"conditions": ["real"]})
    with pytest.raises(ValueError, match="runs missing"):
        collect_runs([str(path)], ["real"], n_targets=2, restarts=1, expect={})


def test_a_rerun_starts_a_fresh_log(tmp_path, monkeypatch):
    """A job's log holds its own attempt only, however often the job ran before."""
    import sys
    from types import SimpleNamespace

    from reachability.job import start_log

    job = SimpleNamespace(log=[str(tmp_path / "job.log")], threads=3)
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(variable, "1")  # start_log sets them; this restores them after the test
    for attempt in range(2):
        monkeypatch.setattr(sys, "stderr", sys.stderr)  # restored after the test
        start_log(job).info("attempt %d", attempt)
        sys.stderr.close()
    logging.getLogger().handlers.clear()  # they wrote to the closed log
    text = (tmp_path / "job.log").read_text()
    assert text.count(" started (3 threads") == 1 and "attempt 1" in text and "attempt 0" not in text


@pytest.fixture
def finished(demo, tmp_path):
    """A copy of the finished demo to swap, truncate and edit files in."""
    import shutil

    copy = tmp_path / "study"
    shutil.copytree(demo, copy, symlinks=True, ignore=shutil.ignore_patterns(".snakemake"))
    return copy


def run_target(workdir, *targets, extra=()):
    """Snakemake on `targets`, between options of one value (--configfile and --forcerun take every
    word after them)."""
    return snakemake(workdir, demo_config(), "--cores", "2", *targets, *extra)


def log_text(workdir, *parts) -> str:
    return (workdir / "results" / "logs" / Path(*parts)).read_text()


@pytest.mark.slow
def test_swapped_edited_and_truncated_files_are_refused_by_name(finished):
    """No wrong number with exit code 0: each reader refuses a file made for other inputs or a
    broken one, naming the file, the field, both values and the fix; deleting it recomputes it."""
    import shutil

    budget = json.loads((finished / "results" / "step_budget.json").read_text())
    assert budget["extended"], "the demo's Exp 1 extends its budget (the scenario below needs an extended pack)"
    base = finished / "results" / "experiment1" / "runs" / "hs4" / "0-16_s300.h5"
    extended = finished / "results" / "experiment1" / "runs_extended" / "hs4" / "0-16_s360.h5"
    saved = extended.read_bytes()
    shutil.copy(base, extended)  # a 300-step pack at the 360-step path
    result = run_target(finished, "results/layer_sweep.json")
    assert result.returncode != 0
    text = log_text(finished, "tables", "layer_sweep.log")
    assert "0-16_s360.h5 was made for other inputs: steps is 300 in the file, this step expects 360" in text
    assert "Delete it" in text
    extended.write_bytes(saved)

    pack = finished / "results" / "experiment2b" / "runs" / "hs4" / "0-16_s360.h5"
    with h5py.File(pack, "a") as f:  # a pack whose record says another experiment and lr
        f.attrs["experiment"], f.attrs["lr"] = json.dumps("experiment2a"), json.dumps(0.5)
    assert run_target(finished, "results/experiment2b/metrics.json").returncode != 0
    text = log_text(finished, "aggregate", "experiment2b.log")
    assert "experiment is 'experiment2a' in the file, this step expects 'experiment2b'" in text
    assert "lr is 0.5 in the file, this step expects 0.05" in text

    pack.write_bytes(pack.read_bytes()[:2000])  # truncated: a crashed copy
    assert run_target(finished, "results/experiment2b/metrics.json").returncode != 0
    text = log_text(finished, "aggregate", "experiment2b.log")
    assert f"{pack.relative_to(finished)} cannot be read" in text and "Delete it" in text
    pack.unlink()  # what the message says to do: the next run makes only that pack again
    plan = planned_jobs(snakemake(finished, demo_config(), "--dry-run"))
    assert plan["optimise_pack"] == 1 and "cache_residuals" not in plan
    assert run_target(finished, "results/experiment2b/metrics.json").returncode == 0


@pytest.mark.slow
def test_a_continuation_names_its_own_bad_pack_and_a_lost_decision_is_made_again(finished):
    """extend_pack checks the pack it continues before anything else (the targets are fine); a
    deleted step-budget decision is asked for by the next plain run, not 'nothing to be done'."""
    import shutil

    base = finished / "results" / "experiment1" / "runs" / "hs4" / "0-16_s300.h5"
    shutil.copy(finished / "results" / "experiment2b" / "runs" / "hs4" / "0-16_s360.h5", base)
    result = run_target(finished, "results/experiment1/runs_extended/hs4/0-16_s360.h5",
                        extra=("--forcerun", "extend_pack"))
    assert result.returncode != 0
    text = (finished / "results" / "logs" / "extend" / "experiment1" / "hs4" / "0-16_s360.log").read_text()
    assert "runs/hs4/0-16_s300.h5 was made for other inputs" in text and "experiment is 'experiment2b'" in text
    assert "targets" not in text.split("was made for other inputs")[0].splitlines()[-1]  # it blames the pack

    (finished / "results" / "step_budget.json").unlink(missing_ok=True)  # the failed run may have removed it
    plan = planned_jobs(snakemake(finished, demo_config(), "--dry-run"))
    assert plan.get("step_budget") == 1


@pytest.mark.slow
def test_swapped_json_csv_and_budget_files_are_refused_by_name(finished):
    """JSON and CSV files carry their record too: another model's metrics.json, another
    experiment's, the layer sweep's targets.csv and another model's step budget are each refused
    by the first rule that reads them, naming the file and the field — never a finding computed
    on them with exit code 0."""
    import shutil

    results = finished / "results"
    ours = results / "experiment1" / "metrics.json"
    saved = ours.read_bytes()
    shutil.copy(results / "models" / "tiny-32" / "experiment1" / "metrics.json", ours)  # another model's
    assert run_target(finished, "results/findings.md", extra=("--forcerun", "findings")).returncode != 0
    text = log_text(finished, "aggregate", "findings.log")
    assert "experiment1/metrics.json was made for other inputs: model is 'resources/demo-model-32' in the file, " \
           "this step expects 'resources/demo-model'" in text and "Delete it" in text
    ours.write_bytes(saved)

    theirs = results / "experiment2b" / "metrics.json"
    shutil.copy(results / "experiment2a" / "metrics.json", theirs)  # Exp 2a's at Exp 2b's path
    assert run_target(finished, "results/conditions.md", extra=("--forcerun", "conditions_table")).returncode != 0
    assert "experiment is 'experiment2a' in the file, this step expects 'experiment2b'" in \
           log_text(finished, "aggregate", "conditions.log")

    for name in ("targets.csv", "targets.csv.record.json"):  # the layer sweep's table at the study's path
        shutil.copy(results / "layer_sweep" / name, results / name)
    assert run_target(finished, "results/boundary.json", extra=("--forcerun", "boundary")).returncode != 0
    assert "where is 'sweep' in the file, this step expects 'study'" in log_text(finished, "boundary", "boundary.log")

    shutil.copy(results / "models" / "tiny-32" / "step_budget.json", results / "step_budget.json")
    result = snakemake(finished, demo_config(), "--dry-run")  # the decision is read before any job
    assert result.returncode != 0
    assert "step_budget.json was made for other inputs: model is 'resources/demo-model-32'" in result.stdout + result.stderr
