"""What every rule script needs first, and what its code is: its log, library versions, the
device's name, and the digest of the code a job runs. A leaf: it imports nothing of the package,
so starting a job's log depends on nothing else of it.

The code digest is a param of every rule (Snakemake's own code trigger sees only the script):
a change to code a job runs makes its outputs stale, and a change to anything else does not.
Code is followed by part, as syntax trees (comments, docstrings and layout do not count): of
each module only the functions, classes, constants and registry entries a job uses, with what
those use in turn, and the statements a module runs for their effect. So adding a function, an
experiment record, a target builder or a method reruns nothing that does not use it, and
editing one reruns only what does. A rule names the registry parts its wildcards select
(`roots`: an experiment's record, a method's class).
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
def _parsed(path: Path, mtime: float) -> tuple[ast.Module, dict]:
    tree = _without_docstrings(ast.parse(path.read_text()))
    return tree, _bindings(tree)


def _module(path: Path) -> tuple[ast.Module, dict]:
    """A file's syntax tree and the package names it imports (parsed once while it is unchanged)."""
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


def _uses(node: ast.AST, bindings: dict[str, tuple[str, str | None]]) -> tuple[set[str], set[tuple[str, str | None]]]:
    """What `node` uses: bare names, and package parts — (module, name) by a name it imports or
    through a module alias (T.real), (module, None) for a module alias used otherwise (whole)."""
    parts, through = set(), set()
    for n in ast.walk(node):
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and bindings.get(n.value.id, ("", ""))[1] is None:
            parts.add((bindings[n.value.id][0], n.attr))
            through.add(id(n.value))
    bare = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    parts |= {bindings[n.id] for n in ast.walk(node) if isinstance(n, ast.Name) and n.id in bindings and id(n) not in through}
    return bare, parts


def _defines(statement: ast.stmt) -> set[str]:
    """The top-level names a statement binds."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    targets = statement.targets if isinstance(statement, ast.Assign) else \
        [statement.target] if isinstance(statement, (ast.AnnAssign, ast.AugAssign)) else []
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _declares(statement: ast.stmt, part: str) -> bool:
    """Whether a statement is the registry entry `part`: a class whose `name = part`, or a call
    whose first argument is the string `part`, or a call of one (register(Experiment("experiment1", ...)))."""
    if isinstance(statement, ast.ClassDef):
        return any(isinstance(s, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "name" for t in s.targets)
                   and isinstance(s.value, ast.Constant) and s.value.value == part for s in statement.body)
    call = statement.value if isinstance(statement, ast.Expr) else None
    while isinstance(call, ast.Call) and call.args:
        if isinstance(call.args[0], ast.Constant):
            return call.args[0].value == part
        call = call.args[0]
    return False


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


def _effect(statement: ast.stmt) -> bool:
    """A module-level statement run for its effect (it binds nothing and imports nothing)."""
    return not _defines(statement) and not isinstance(statement, (ast.Import, ast.ImportFrom))


@cache
def _part(path: Path, mtime: float, module: str, part: str | None, dropped: tuple) -> tuple[list[str], list[tuple]]:
    """One part of a module (None: all of it): its statements' texts and the parts they use."""
    tree, bindings = _parsed(path, mtime)
    texts, parts = [], [(*bindings[part], ())] if part in bindings else []  # imported there from another module
    for statement in tree.body:
        effect = module not in REGISTRIES and _effect(statement)
        if part is None or part in _defines(statement) or _declares(statement, part) or effect:
            statement = _without(statement, dropped)
            texts.append(f"{module}.{'<effects>' if effect else part}:{ast.dump(statement)}")
            bare, used = _uses(statement, bindings)
            parts += [(m, p, ()) for m, p in sorted(used, key=str)]
            parts += [(module, n, ()) for n in sorted(bare - set(bindings)) if n != part]
    return texts, parts


def code_digest(script: str | Path, package: str | Path, roots: tuple[tuple, ...] = ()) -> str:
    """A short hash of the package code that `script` runs: the script and the package's
    `__init__` whole; of every module, only the parts used (a function, a class, a constant, a
    registry entry: by name, through an alias, or as `roots`: (module, part) or (module, part,
    keywords), an entry without those keyword arguments), with what those use in turn, and the
    statements a module runs for their effect (not a registry's: those are its entries)."""
    package = Path(package)
    texts, done = set(), set()
    parts = [(r[0], r[1], tuple(r[2]) if len(r) > 2 else ()) for r in roots]
    for module, part, dropped in parts:  # a root that matches nothing would digest nothing: say so
        path = package / f"{module}.py"
        if not _part(path, path.stat().st_mtime, module, part, dropped)[0]:
            raise ValueError(f"{path} has no entry {part!r}: register it as register(Record({part!r}, ...)) or a "
                             f"class with name = {part!r}, so the jobs that run it can see it change")
    for path in (Path(script), package / "__init__.py"):
        tree, bindings = _module(path)
        texts.add(f"{path.stem}:{ast.dump(tree)}")  # every name it imports, and what it uses of imported modules
        parts += [(m, p, ()) for m, p in sorted({b for b in bindings.values() if b[1] is not None}
                                                 | _uses(tree, bindings)[1], key=str)]
    while parts:
        key = parts.pop()
        path = package / f"{key[0]}.py"
        if key in done or not path.exists() or (key[0] in REGISTRIES and key[1] is None):
            continue  # a registry passed whole: the rule names the entries it uses (`roots`)
        done.add(key)
        own, used = _part(path, path.stat().st_mtime, *key)
        texts.update(own)
        parts += used
    return hashlib.sha256("\n".join(sorted(texts)).encode()).hexdigest()[:16]
