"""What every rule script shares: its log, the study's provenance, the model.

Provenance is the part of a config that decides what a file holds (model, revision, site,
sequence length, dataset, pool size); every HDF5 file carries it, and every reader checks it,
so a file made for another model, site or shape is refused instead of computed on.
"""

from __future__ import annotations

import logging
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from .config import check_model_limits, digest, site_of
from .sites import Site

LIBRARIES = ("torch", "transformers", "datasets", "numpy", "h5py", "snakemake")


def start_log(path: str) -> logging.Logger:
    """Send stderr (tracebacks, warnings, progress bars) and logging to the rule's log."""
    sys.stderr = open(path, "a", buffering=1)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return logging.getLogger("reachability")


def load_study_model(config: dict):
    """The study's model on its device, checked against the config's sites and seq_len.
    (models is imported here, not above: CPU-only rules use this module without torch.)"""
    from .models import load_model, resolve_device

    m = config["model"]
    lm = load_model(m["name"], m["revision"], resolve_device(config["engine"]["device"]), m["allow_pickle_weights"])
    check_model_limits(config, lm.config)
    return lm


def provenance(config: dict, site: Site | None = None) -> dict:
    """What made a file: the config parts every stage must agree on, and for files at a site
    (residuals, targets, runs) that site. The token pool has no site."""
    out = {
        "model": config["model"]["name"],
        "revision": config["model"]["revision"],
        "seq_len": config["seq_len"],
        "pool_size": config["pool_size"],
        "dataset": digest(config["dataset"]),
    }
    return out if site is None else {**out, "site": str(site)}


def config_hash(config: dict) -> str:
    """Hash of everything that changes the numbers (not plots, batch size or job sizes)."""
    return digest({
        **provenance(config, site_of(config)),
        "dataset": config["dataset"],
        "optimizer": config["optimizer"],
        "precision": config["engine"]["precision"],
        "experiments": config["experiments"],
    })


def library_versions() -> dict:
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def device_name(device) -> str:
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({platform.processor() or platform.machine()})"
