"""What every rule script shares: its log, the study's provenance, the model.

Provenance is the part of a config that decides what a file holds (model, revision, site,
sequence length, dataset, pool size); every HDF5 file carries it, and every reader checks it,
so a file made for another model, site or shape is refused instead of computed on.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .sites import Site

LIBRARIES = ("torch", "transformers", "datasets", "numpy", "h5py", "snakemake")


def start_log(job) -> logging.Logger:
    """Start a rule script (`job` is its `snakemake` object): a fresh log file (never appended
    to) that receives stderr (tracebacks, warnings, progress bars) and logging, and the job's
    thread budget for the numeric libraries. Call it first, before heavy imports or waiting for
    a device, so that both show in the log."""
    path = Path(job.log[0])
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(job.threads)  # read by torch and numpy when they load
    sys.stderr = open(path, "w", buffering=1)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("reachability")
    log.info("started (%d threads, python %s, pid %d)", job.threads, platform.python_version(), os.getpid())
    return log


def digest(value: object) -> str:
    """A short stable hash of JSON-able `value`."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


class ModelChanged(ValueError):
    """The model now at model.name is not the one a study's earlier files were made with."""


def load_study_model(config: dict, made_with: dict[str, dict] | None = None):
    """The study's model in host memory (a GPU job moves it once it holds a device), checked
    against the config's sites and seq_len and against the model each input was made with
    (`made_with`: path -> its record, whose `model_identity` a model-loading job wrote). (models
    is imported here, not above: CPU-only rules use this module without torch.)"""
    from .models import load_model
    from .validation import check_model_limits

    m = config["model"]
    lm = load_model(m["name"], m["revision"], "cpu", m["allow_pickle_weights"])
    check_model_limits(config, lm.config)
    identity = lm.identity  # now, while the weights are in host memory (a claim frees them when it ends)
    for path, record in (made_with or {}).items():
        check_same_model(identity, record.get("model_identity"), m["name"], path)
    return lm


def check_same_model(now: dict, then: dict | None, name: str, path: str) -> None:
    """The model loaded now is the one `path` was made with: its config.json and weights unchanged."""
    if then is None or then == now:
        return
    changed = sorted(k for k in {*now["config"], *then["config"]} if now["config"].get(k) != then["config"].get(k))
    what = [f"{k} is {now['config'].get(k)!r} now, {then['config'].get(k)!r} then" for k in changed[:6]]
    what += ["its weights differ"] if now["weights"] != then["weights"] else []
    raise ModelChanged(f"the model at {name} is not the one {path} was made with ({'; '.join(what)}). If you changed "
                       f"the model on purpose, the study must be made again with it: delete results/ (or run with "
                       f"--forcerun cache_residuals) and rerun; otherwise restore the model's files")


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
        **provenance(config, Site(config["site"]["kind"], int(config["site"]["layer"]))),
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


def _imported_modules(tree: ast.AST) -> set[str]:
    """Names of the package's modules that a script or module imports (anywhere in it)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 or node.module == "reachability":  # from . import x / from reachability import x
                names |= {node.module} if node.level == 1 and node.module else {a.name for a in node.names}
            elif node.module and node.module.startswith("reachability."):
                names.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith("reachability.")}
    return names


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


def code_digest(script: str | Path, package: str | Path) -> str:
    """A short hash of the package modules a rule script runs: those it imports, and theirs in
    turn, as syntax trees (comments, docstrings and layout do not count). Passed as a param, it
    makes a rule's outputs stale when its library code changes; Snakemake's own code trigger
    sees only the script."""
    package = Path(package)
    seen, todo = {"__init__"}, [Path(script), package / "__init__.py"]
    parts = []
    while todo:
        path = todo.pop()
        tree = ast.parse(path.read_text())
        for name in sorted(_imported_modules(tree) - seen):
            if (package / f"{name}.py").exists():
                seen.add(name)
                todo.append(package / f"{name}.py")
        if path.parent == package:
            parts.append(f"{path.stem}:{ast.dump(_without_docstrings(tree))}")
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:16]
