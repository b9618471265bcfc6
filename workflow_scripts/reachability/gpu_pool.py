"""One GPU per job on a multi-GPU machine: `snakemake --resources gpu=N` keeps N GPU jobs
running, and this pool gives each its own device.

A job takes the first free lock of `gpu{i}.lock` (non-blocking `flock`), holds it for its
whole life (the kernel drops it when the process dies, even by SIGKILL) and sets
CUDA_VISIBLE_DEVICES to that device before CUDA initialises. Under SLURM the pool steps aside:
SLURM has already set the job's devices.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
import time
from pathlib import Path

LOCK_DIR = Path(os.environ.get("REACHABILITY_GPU_LOCKS", Path(tempfile.gettempdir()) / "reachability-gpu-locks"))

_held: list = []  # open lock files: keep them (and so the locks) for the life of the process


def visible_devices() -> list[str]:
    """Device ids this process may use: CUDA_VISIBLE_DEVICES, else what nvidia-smi lists."""
    if os.environ.get("CUDA_VISIBLE_DEVICES"):
        return [d for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]


def claim_for(config: dict) -> str | None:
    """Claim a device for a rule script when the study runs on CUDA ('auto' or 'cuda');
    an explicit device ('cpu', 'cuda:1') is left as configured."""
    return claim_device() if config["engine"]["device"] in ("auto", "cuda") else None


def claim_device(lock_dir: str | Path = LOCK_DIR, devices: list[str] | None = None, wait_s: float = 3600) -> str | None:
    """Lock a free device, set CUDA_VISIBLE_DEVICES to it and return it.

    Returns None (and changes nothing) under SLURM or where there is no GPU. Waits, polling,
    while every device is taken (more jobs than GPUs), at most `wait_s` seconds.
    """
    if os.environ.get("SLURM_JOB_ID"):
        return None
    devices = visible_devices() if devices is None else devices
    if not devices:
        return None
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_s
    while True:
        for device in devices:
            handle = open(lock_dir / f"gpu{device}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            _held.append(handle)
            os.environ["CUDA_VISIBLE_DEVICES"] = device
            return device
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {devices} after {wait_s:.0f} s (locks in {lock_dir})")
        time.sleep(0.5)
