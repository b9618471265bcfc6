"""The local GPU pool, without a GPU: distinct devices for concurrent jobs, freed on SIGKILL,
and a late, blocking claim that lets one job start up while another holds the device."""

import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime

import pytest

from workflow_helpers import demo_config, snakemake_command

CHILD = """
import sys, time
from reachability.gpu_pool import lock_device
handle, index, device = lock_device(sys.argv[1], ["0", "1", "2"], wait_s=60)
print(device, index, flush=True)
time.sleep(float(sys.argv[2]))
"""


def start(lock_dir, hold_s):
    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "CUDA_VISIBLE_DEVICES")}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(lock_dir), str(hold_s)],
                            stdout=subprocess.PIPE, text=True, env=env)


def test_concurrent_jobs_get_distinct_devices_and_a_killed_job_frees_its_device(tmp_path):
    jobs = [start(tmp_path, 30) for _ in range(3)]
    seen = [job.stdout.readline().split() for job in jobs]
    assert sorted(d for d, _ in seen) == ["0", "1", "2"] and all(d == i for d, i in seen)

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
    assert gpu_pool.lock_device(tmp_path, ["0"]) is None
    monkeypatch.delenv("SLURM_JOB_ID")
    assert gpu_pool.lock_device(tmp_path, []) is None
    assert not list(tmp_path.iterdir())


def test_an_explicit_device_is_used_as_configured_without_a_lock(tmp_path):
    from reachability.gpu_pool import claimed_device

    with claimed_device({"engine": {"device": "cpu"}}, tmp_path, ["0"]) as claim:
        assert claim.device == "cpu" and claim.gpu is None
    assert claim.held_s >= 0 and not list(tmp_path.iterdir())


def phases(log_text: str) -> tuple[datetime, datetime, datetime]:
    """(start, device claimed, device released) from a GPU job's log."""
    def at(pattern):
        line = next(line for line in log_text.splitlines() if re.search(pattern, line))
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")

    return at(r"started"), at(r"s of waiting"), at(r"released .* after holding")


@pytest.mark.slow
def test_with_two_jobs_on_one_device_one_starts_up_while_the_other_computes(tmp_path):
    """Three packs, `--resources gpu=2`, one (pretend) device: the device is held by one job
    at a time, and a job's start-up runs while another job holds the device."""
    config = demo_config(**{
        "engine.device": "auto", "experiments.experiment1.n_targets": 24, "optimizer.extend_steps": None,
        **{f"experiments.{e}.enabled": False for e in ("experiment2a", "experiment2b", "experiment3", "experiment4",
                                                       "ablation", "hard_prompt", "prefix_steering")},
        **{f"{s}.enabled": False for s in ("layer_sweep", "analysis", "perturbation")}, "compare.models": [],
    })
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "0", "REACHABILITY_GPU_LOCKS": str(tmp_path / "locks")}
    env.pop("SLURM_JOB_ID", None)
    result = subprocess.run(snakemake_command(tmp_path, config, "--cores", "2", "--resources", "gpu=2"),
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = sorted((tmp_path / "results" / "logs" / "optimise" / "experiment1" / "hs4").glob("*.log"))
    jobs = [phases(log.read_text()) for log in logs]
    assert len(jobs) == 3 and all("(pool id 0)" in log.read_text() for log in logs)
    held = sorted((claimed, released) for _, claimed, released in jobs)
    assert all(a[1] <= b[0] for a, b in zip(held, held[1:]))  # one holder at a time
    overlaps = [(s, c, h) for s, c, _ in jobs for h in held if s < h[1] and c > h[0] and h[0] != c]
    assert overlaps, jobs  # some job's start-up happened while another held the device


MIG_LISTING = """GPU 0: NVIDIA A100-SXM4-40GB (UUID: GPU-5d5ba0d6-d33d-2b2c-524d-9e3d8d2b8a77)
  MIG 1g.5gb      Device  0: (UUID: MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f)
  MIG 1g.5gb      Device  1: (UUID: MIG-cba663e8-9bed-5b25-b243-5985ef7c9beb)
GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-0e4b4c7a-1111-2222-3333-444455556666)
  MIG 3g.20gb     Device  0: (UUID: MIG-0aa0b0c0-d0e0-5f00-8111-222233334444)
"""


def test_mig_instances_are_the_devices_of_a_mig_machine():
    from reachability.gpu_pool import listed_devices

    assert listed_devices(MIG_LISTING) == ["MIG-c6d4f1ef-42e4-5de3-91c7-45d71c87eb3f",
                                           "MIG-cba663e8-9bed-5b25-b243-5985ef7c9beb",
                                           "MIG-0aa0b0c0-d0e0-5f00-8111-222233334444"]
    plain = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aa)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bb)\n"
    assert listed_devices(plain) == ["0", "1"]


def test_a_claimed_mig_instance_is_the_jobs_only_visible_device(tmp_path, monkeypatch):
    """A process can use one MIG instance only: the job narrows CUDA_VISIBLE_DEVICES to the one
    it locked (before CUDA starts) and computes on cuda:0; its lock file is named by the UUID."""
    import torch

    from reachability import gpu_pool

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-aa,MIG-bb/1/0")
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    first = gpu_pool.lock_device(tmp_path)
    second, index, device = gpu_pool.lock_device(tmp_path)  # the first is taken
    assert (index, device) == (1, "MIG-bb/1/0") and (tmp_path / "gpuMIG-bb_1_0.lock").exists()
    gpu_pool.torch_device("auto", index, device)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "MIG-bb/1/0"
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(RuntimeError, match="after CUDA started"):
        gpu_pool.torch_device("auto", index, device)
    first[0].close()
    second.close()


def test_an_empty_cuda_visible_devices_means_no_device(tmp_path, monkeypatch):
    from reachability import gpu_pool

    def nvidia_smi(*args, **kwargs):  # the machine has a GPU, but this process may not see it
        return subprocess.CompletedProcess(args, 0, stdout="GPU 0: NVIDIA H100 (UUID: GPU-aa)\n")

    monkeypatch.setattr(gpu_pool.subprocess, "run", nvidia_smi)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_pool.visible_devices() == ["0"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpu_pool.visible_devices() == [] and gpu_pool.lock_device(tmp_path) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3")
    assert gpu_pool.visible_devices() == ["2", "3"]


def test_cuda_numbers_devices_as_nvidia_smi_does(tmp_path, monkeypatch):
    from reachability.gpu_pool import claimed_device

    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    with claimed_device({"engine": {"device": "cpu"}}, tmp_path, []):
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "FASTEST_FIRST")  # a user's own choice stands
    with claimed_device({"engine": {"device": "cpu"}}, tmp_path, []):
        assert os.environ["CUDA_DEVICE_ORDER"] == "FASTEST_FIRST"


def test_a_jobs_model_leaves_the_device_before_its_lock_is_released(tmp_path, monkeypatch):
    """The next job must find the device empty: the model goes (and the cache is emptied) while
    this job still holds the lock."""
    import fcntl

    import torch

    from reachability import gpu_pool

    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    model, seen = torch.nn.Linear(4, 4), []
    real_free = gpu_pool.free

    def checking_free(claim):
        probe = open(tmp_path / "gpu7.lock", "a")
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            seen.append("lock already free")
        except BlockingIOError:
            seen.append("lock held")
        finally:
            probe.close()
        real_free(claim)
        seen.append(model.weight.device.type)

    monkeypatch.setattr(gpu_pool, "free", checking_free)
    with gpu_pool.claimed_device({"engine": {"device": "auto"}}, tmp_path, ["7"]) as claim:
        claim.load(model)
    assert seen == ["lock held", "meta"]
