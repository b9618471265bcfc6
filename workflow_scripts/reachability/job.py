"""What every rule script needs first, and what its code is: its log, library versions, the
device's name, and the digest of the code a job runs. A leaf: it imports nothing of the package,
so starting a job's log depends on nothing else of it.

The code digest is a param of every rule (Snakemake's own code trigger sees only the script):
a change to code a job runs makes its outputs stale, and a change to anything else does not.
Modules are followed through their imports, as syntax trees (comments, docstrings and layout do
not count) — except the registries (`REGISTRIES`: the experiments, their target builders, the
methods), which are digested by part: only the records, functions and classes a job uses, with
what they use in turn. So adding an experiment record, a builder or a method reruns nothing
that does not use it, and editing one reruns only what does. A rule names the registry parts
its wildcards select (`roots`: an experiment's record, a method's class); the parts a module
imports by name are followed by themselves.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import logging
import os
import platform
import sys
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

LIBRARIES = ("torch", "transformers", "datasets", "numpy", "h5py", "snakemake")
REGISTRIES = ("experiments", "targets", "methods")  # digested by the parts a job uses
PACKAGE = "reachability"


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


# The code a job runs


def _without_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
    return tree


@cache
def _parsed(path: Path, mtime: float) -> ast.Module:
    return _without_docstrings(ast.parse(path.read_text()))


def _tree(path: Path) -> ast.Module:
    return _parsed(path, path.stat().st_mtime)


def _bindings(tree: ast.AST) -> dict[str, tuple[str, str | None]]:
    """The names `tree` binds to the package by its imports: name -> (module, part), part None
    for a whole module (`from . import targets as T`), else the name imported from it."""
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level == 1 or (node.module or "").split(".")[0] == PACKAGE):
            inner = node.module if node.level == 1 else (node.module or "").partition(".")[2]
            for alias in node.names:
                out[alias.asname or alias.name] = (inner, alias.name) if inner else (alias.name, None)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    out[alias.asname or alias.name] = (alias.name.split(".")[1], None)
    return out


def _uses(node: ast.AST, bindings: dict[str, tuple[str, str | None]]) -> tuple[set[str], set[str], set[tuple[str, str]]]:
    """What `node` uses: bare names, whole package modules (to follow), registry parts (by name,
    or through a module alias: T.real)."""
    bare, modules, parts = set(), set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            bare.add(n.id)
            if n.id in bindings:
                module, part = bindings[n.id]
                if module in REGISTRIES and part is not None:
                    parts.add((module, part))
                elif module not in REGISTRIES:
                    modules.add(module)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in bindings:
            module, part = bindings[n.value.id]
            if module in REGISTRIES and part is None:
                parts.add((module, n.attr))
    return bare, modules, parts


def _defines(statement: ast.stmt) -> set[str]:
    """The top-level names a statement binds."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) else []
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _declares(statement: ast.stmt, part: str) -> bool:
    """Whether a statement is the registry entry `part`: a class whose `name = part`, or a call
    whose first argument is the string `part` (register(Experiment("experiment1", ...)))."""
    if isinstance(statement, ast.ClassDef):
        return any(isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "name" for t in s.targets)
                   and isinstance(s.value, ast.Constant) and s.value.value == part for s in statement.body)
    return any(isinstance(n, ast.Call) and n.args and isinstance(n.args[0], ast.Constant) and n.args[0].value == part
               for n in ast.walk(statement)) and not isinstance(statement, (ast.FunctionDef, ast.ClassDef))


def _without(statement: ast.stmt, keywords: tuple[str, ...]) -> ast.stmt:
    """A registration without some of its keyword arguments (a record's presentation, for a job
    that only runs it)."""
    if not keywords:
        return statement
    statement = copy.deepcopy(statement)
    for node in ast.walk(statement):
        if isinstance(node, ast.Call):
            node.keywords = [k for k in node.keywords if k.arg not in keywords]
    return statement


def code_digest(script: str | Path, package: str | Path, roots: tuple[tuple, ...] = ()) -> str:
    """A short hash of the package code that `script` runs: the modules it imports, and theirs in
    turn; of a registry module only the parts used (by name, through an alias, or as `roots`:
    (module, part) — a function, a class, or an entry registered under that name — or (module,
    part, keywords), an entry without those keyword arguments), with what those use in turn."""
    package = Path(package)
    modules, texts = {"__init__"}, []
    parts = [(r[0], r[1], tuple(r[2]) if len(r) > 2 else ()) for r in roots]
    todo, done = [Path(script), package / "__init__.py"], set()

    def follow(names: set[str]) -> None:
        for name in sorted(names - modules):
            if (package / f"{name}.py").exists():
                modules.add(name)
                todo.append(package / f"{name}.py")

    while todo or parts:
        if todo:
            path = todo.pop()
            tree = _tree(path)
            bindings = _bindings(tree)
            follow({m for m, part in bindings.values() if m not in REGISTRIES})
            parts += [(m, p, ()) for m, p in sorted(_uses(tree, bindings)[2])]
            if path.parent == package:
                texts.append(f"{path.stem}:{ast.dump(tree)}")
            continue
        module, part, dropped = parts.pop()
        if (module, part, dropped) in done or not (package / f"{module}.py").exists():
            continue
        done.add((module, part, dropped))
        tree = _tree(package / f"{module}.py")
        bindings = _bindings(tree)
        for statement in tree.body:
            if part in _defines(statement) or _declares(statement, part):
                statement = _without(statement, dropped)
                texts.append(f"{module}.{part}:{ast.dump(statement)}")
                bare, whole, used = _uses(statement, bindings)
                follow(whole)
                parts += [(m, p, ()) for m, p in sorted(used)]
                parts += [(module, n, ()) for n in sorted(bare - set(bindings)) if n != part]
    return hashlib.sha256("\n".join(sorted(texts)).encode()).hexdigest()[:16]
