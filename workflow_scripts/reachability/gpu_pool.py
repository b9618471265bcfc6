"""One GPU per job, claimed late: start-up happens off the GPU's clock.

`snakemake --resources gpu=N` keeps N GPU jobs running. Each does its CPU-side start-up first
(imports, reading inputs, loading weights to host memory), and only then claims a device: it
takes the first free lock of `gpu{id}.lock` (`flock`, held until released or until the
process dies, even by SIGKILL), waiting while every device is taken. So with more GPU jobs
in flight than devices (`--resources gpu=2` on one GPU), one job starts up while another
computes. The device is addressed by its index among the visible devices (`cuda:{index}`),
so nothing depends on when CUDA initialises, with CUDA's numbering set to the PCI bus order
that nvidia-smi uses (`CUDA_DEVICE_ORDER=PCI_BUS_ID`, unless set), so the ids in logs are
nvidia-smi's. On a MIG machine each MIG instance is a device of its own, named by its UUID; a
process can use only one, so the job narrows CUDA_VISIBLE_DEVICES to it (before CUDA starts)
and computes on `cuda:0`. Before the lock is released the job's models leave the device and
its cached memory is returned, so the next job finds the device empty. Under SLURM the pool
steps aside: SLURM has already given the job its devices.
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

LOCK_DIR = Path(os.environ.get("REACHABILITY_GPU_LOCKS", Path(tempfile.gettempdir()) / "reachability-gpu-locks"))
POOLED = ("auto", "cuda")  # engine.device values that take a device from the pool
log = logging.getLogger(__name__)


def listed_devices(listing: str) -> list[str]:
    """The devices of an `nvidia-smi -L` listing: its MIG instances by UUID where there are
    any (each is a device of its own, and its parent GPU is not), else its GPUs by index."""
    migs = re.findall(r"^\s+MIG\b.*\(UUID: (MIG-[^)\s]+)\)", listing, flags=re.M)
    if migs:
        return migs
    return [str(i) for i, _ in enumerate(line for line in listing.splitlines() if line.startswith("GPU "))]


def visible_devices() -> list[str]:
    """Device ids this process may use: CUDA_VISIBLE_DEVICES when it is set (set but empty:
    none), else what nvidia-smi lists."""
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        return [d.strip() for d in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if d.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return listed_devices(out)


def lock_device(lock_dir: str | Path = LOCK_DIR, devices: list[str] | None = None,
                wait_s: float = 6 * 3600) -> tuple[IO, int, str] | None:
    """Lock a free device: (open lock file, index among `devices`, device id), waiting while
    every device is taken, at most `wait_s` seconds. None under SLURM or without GPUs."""
    if os.environ.get("SLURM_JOB_ID"):
        return None
    devices = visible_devices() if devices is None else devices
    if not devices:
        return None
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline, told = time.monotonic() + wait_s, False
    while True:
        for index, device in enumerate(devices):
            handle = open(lock_dir / f"gpu{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}.lock", "a")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            return handle, index, device
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {devices} after {wait_s:.0f} s (locks in {lock_dir})")
        if not told:
            log.info("every GPU among %s is taken; waiting for one (locks in %s)", devices, lock_dir)
            told = True
        time.sleep(0.2)


@dataclass
class Claim:
    """The device a job computes on, and how long it waited for it and held it."""

    device: str  # a torch device: 'cuda:0', 'cpu', ...
    gpu: str | None  # the pool's device id; None where the pool was not used
    waited_s: float
    held_s: float = float("nan")  # set on release
    models: list = field(default_factory=list)

    def load(self, model):
        """Put a model (a LanguageModel or module) on the device. It leaves the device before the
        device is released (to 'meta': its memory is freed, nothing is copied back), so do not
        use it after the claim."""
        self.models.append(model)
        return model.to(self.device)


def torch_device(configured: str, index: int | None, device_id: str | None = None) -> str:
    """engine.device resolved for this job: 'auto' is the claimed GPU, else the CPU. A MIG
    instance is made the process's only visible device (CUDA must not have started yet)."""
    import torch

    if device_id and device_id.startswith("MIG-"):
        if torch.cuda.is_initialized():
            raise RuntimeError(f"MIG instance {device_id} was claimed after CUDA started in this process: "
                               f"it can no longer be selected (claim the device before any CUDA use)")
        os.environ["CUDA_VISIBLE_DEVICES"] = device_id
        index = 0
    if configured in POOLED and (configured == "cuda" or torch.cuda.is_available()):
        device = f"cuda:{index or 0}"
        torch.cuda.set_device(device)
        return device
    return "cpu" if configured == "auto" else configured


def free(claim: Claim) -> None:
    """Before the release: the claim's models off the device, its cached memory returned, and a
    warning if anything is still allocated there (a tensor that outlived the job's device work)."""
    for model in claim.models:
        model.to("meta")
    claim.models.clear()
    gc.collect()
    if claim.device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(claim.device)
        torch.cuda.empty_cache()
        left = torch.cuda.memory_allocated(claim.device)
        if left:
            log.warning("%.0f MiB still allocated on %s at release", left / 2**20, claim.device)


@contextmanager
def claimed_device(config: dict, lock_dir: str | Path = LOCK_DIR, devices: list[str] | None = None) -> Iterator[Claim]:
    """Hold a device of the study for the body: block until one is free ('auto' and 'cuda'
    take one from the pool; an explicit 'cpu' or 'cuda:1' is used as configured)."""
    configured = config["engine"]["device"]
    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # CUDA's numbering = nvidia-smi's
    start = time.monotonic()
    locked = lock_device(lock_dir, devices) if configured in POOLED else None
    handle, index, gpu = locked if locked else (None, None, None)
    acquired = time.monotonic()
    try:
        claim = Claim(torch_device(configured, index, gpu), gpu, waited_s=acquired - start)
        log.info("device %s%s after %.1f s of waiting", claim.device, f" (pool id {gpu})" if gpu else "",
                 claim.waited_s)
        try:
            yield claim
        finally:
            free(claim)
            claim.held_s = time.monotonic() - acquired
            log.info("released %s after holding it %.1f s", claim.device, claim.held_s)
    finally:
        if handle is not None:
            handle.close()  # drops the lock: the next job may take the device
