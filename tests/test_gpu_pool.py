"""The local GPU pool, without a GPU: distinct devices for concurrent jobs, freed on SIGKILL."""

import os
import signal
import subprocess
import sys
import time

CHILD = """
import os, sys, time
from reachability.gpu_pool import claim_device
device = claim_device(sys.argv[1], ["0", "1", "2"], wait_s=60)
print(device, os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(float(sys.argv[2]))
"""


def start(lock_dir, hold_s):
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(lock_dir), str(hold_s)],
                            stdout=subprocess.PIPE, text=True, env=env)


def test_concurrent_jobs_get_distinct_devices_and_a_killed_job_frees_its_device(tmp_path):
    jobs = [start(tmp_path, 30) for _ in range(3)]
    seen = [job.stdout.readline().split() for job in jobs]
    assert sorted(d for d, _ in seen) == ["0", "1", "2"] and all(d == v for d, v in seen)

    waiting = start(tmp_path, 0)  # a fourth job waits for a free device
    time.sleep(1.0)
    assert waiting.poll() is None
    victim = next(job for job, (d, _) in zip(jobs, seen) if d == "1")
    victim.send_signal(signal.SIGKILL)
    assert waiting.stdout.readline().split()[0] == "1"
    for job in jobs:
        job.kill()
        job.wait()
    waiting.wait()


def test_the_pool_steps_aside_under_slurm_and_without_gpus(tmp_path, monkeypatch):
    from reachability import gpu_pool

    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert gpu_pool.claim_device(tmp_path, ["0"]) is None
    monkeypatch.delenv("SLURM_JOB_ID")
    assert gpu_pool.claim_device(tmp_path, []) is None
    assert not list(tmp_path.iterdir())
