"""The demo DAG through profiles/slurm on a real single-node SLURM (CI starts one).

Runs only with REACHABILITY_TEST_SLURM=1, as root, where Debian's slurmctld/slurmd/munge are
installed: it writes /etc/slurm/slurm.conf (refusing to overwrite one it did not write).
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from equality import assert_same_losses
from workflow_helpers import AGENDA_ONLY, ROOT, demo_config, snakemake_command

pytestmark = pytest.mark.skipif(
    os.environ.get("REACHABILITY_TEST_SLURM") != "1",
    reason="set REACHABILITY_TEST_SLURM=1 (as root, with SLURM installed) to start a real SLURM",
)
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
GPU_RULES = ("cache_residuals", "optimise_pack", "extend_pack")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    assert shutil.which("slurmctld") and os.geteuid() == 0, "needs root and Debian's slurmctld/slurmd/munge"
    state = tmp_path_factory.mktemp("slurm")
    try:  # stopped even when the start fails half-way (daemons left running would hold the ports)
        subprocess.run([str(CLUSTER), "start", str(state)], check=True, timeout=120)
        yield state
    finally:
        subprocess.run([str(CLUSTER), "stop", str(state)], timeout=60)


def scontrol_job(job_id: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S+)", out))


def test_the_demo_runs_through_the_slurm_profile_and_gpu_rules_ask_slurm_for_a_gpu(slurm, demo, tmp_path):
    # Exp 1 alone in packs of 8 (two array tasks), through the step-budget checkpoint; the GPU
    # pool is asked (engine.device: auto) and must step aside
    config = demo_config(**AGENDA_ONLY, **{f"experiments.experiment{e}.enabled": False for e in ("2a", "2b", "3", "4")},
                         **{"engine.device": "auto", "engine.runs_per_job": 8})
    options = (
        # --jobs above the pack count: array mode holds ready packs until all are ready (docs/cluster.md)
        "--workflow-profile", str(ROOT / "profiles" / "slurm"), "--jobs", "8",
        # test overrides: this node's partition and sizes, squeue for status (no accounting)
        "--default-resources", "slurm_partition=debug", "runtime=10", "mem_mb=1500",
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs", "--latency-wait", "5",
        # many small jobs: the packs go to SLURM as one job array (docs/cluster.md)
        "--slurm-array-jobs", "optimise_pack",
    )
    # docs/cluster.md's two steps: the packs' targets first (separate SLURM jobs that finish at
    # different times), so that every pack is ready at once and goes in one array
    for until in (("--until", "build_targets"), ()):
        command = snakemake_command(tmp_path, config, *options, *until)
        result = subprocess.run(["timeout", "-k", "10", "900", *command], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-4000:]

    # SLURM's own records: every job of a GPU rule ran as a SLURM job that asked for a GPU.
    submitted = {}
    extended = json.loads((tmp_path / "results" / "step_budget.json").read_text())["extended"]
    for rule in ("build_demo_model", "extract_pool", *GPU_RULES, "step_budget", "aggregate"):
        logs = list((tmp_path / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"))
        submitted[rule] = [log.stem for log in logs]
        assert logs or (rule == "extend_pack" and not extended), f"no SLURM job log for rule {rule}"
    assert len(submitted["optimise_pack"]) == 2 and len(submitted["cache_residuals"]) == 1
    assert len(submitted["extend_pack"]) == (2 if extended else 0)
    arrays = {job_id.split("_")[0] for job_id in submitted["optimise_pack"]}
    assert all("_" in job_id for job_id in submitted["optimise_pack"]) and len(arrays) == 1, submitted
    for rule in GPU_RULES:
        for job_id in submitted[rule]:
            job = scontrol_job(job_id)
            assert job["JobState"] == "COMPLETED" and "gpu:1" in job.get("TresPerJob", ""), job
    for job_id in submitted["aggregate"]:
        assert "gpu" not in scontrol_job(job_id).get("TresPerJob", "")
    # SLURM set CUDA_VISIBLE_DEVICES for its (fake) GPU; the local pool stepped aside
    pack_logs = list((tmp_path / "results" / "logs" / "optimise").rglob("*.log"))
    assert pack_logs and all("s of waiting" in log.read_text() and "pool id" not in log.read_text() for log in pack_logs)

    # The same numbers as the local demo (whose packs hold 16 runs: equal to float rounding),
    # and the same step budget, decided on the cluster by the checkpoint
    ours = json.loads((tmp_path / "results" / "experiment1" / "metrics.json").read_text())
    local = json.loads((demo / "results" / "experiment1" / "metrics.json").read_text())
    assert ours["provenance"]["step_budget"] == local["provenance"]["step_budget"]
    mse = [np.array(m["conditions"]["real"]["per_target"]["final_mse"], dtype=float) for m in (ours, local)]
    assert_same_losses(*mse, local["conditions"]["real"]["per_target"]["target_mean_square"], rtol=1e-3)
