"""A study's files: written so a killed job leaves nothing finished-looking, read so a wrong or
broken file is named, never computed on.

Every output goes through `atomic`: written under a temporary name in the same folder and
renamed into place (atomic on POSIX), so a file at the final path is always complete — HDF5
(`write_h5`), JSON (`write_json`), text (`write_text`) and figures alike. Every input is
opened by `read_h5` / `read_attrs` / `read_json`, which name a truncated or unreadable file
and say what to do; `read_h5` with `expect` (a record from `records.py`) compares every field
of the file's record and refuses one made for other inputs. `jsonable` turns NumPy values
into strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator
from typing import TextIO
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

FIX = "Delete it (and whatever was made from it) and rerun the same command: Snakemake makes it again."


class ProvenanceMismatch(ValueError):
    """An input file was made for other inputs (model, site, shape, experiment, settings)."""


class UnreadableFile(OSError):
    """An input file is truncated or not what its name says (a crashed copy, a full disk)."""


def _decode(value) -> object:
    return json.loads(value.decode() if isinstance(value, bytes) else value)


@contextmanager
def atomic(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` to write to; renamed to `path` when the body succeeds,
    removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_h5(path: str | os.PathLike, arrays: dict[str, np.ndarray], attrs: dict) -> None:
    """Write `arrays` as datasets and `attrs` (each stored as JSON text) atomically."""
    with atomic(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in arrays.items():
            f.create_dataset(key, data=np.asarray(value))
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value, sort_keys=True)


def write_json(path: str | os.PathLike, value) -> None:
    """`value` (NumPy allowed) as strict JSON, atomically."""
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(jsonable(value), indent=1))


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[TextIO]:
    """An open text file whose contents land at `path` atomically, when the body succeeds."""
    with atomic(path) as tmp, open(tmp, "w") as f:
        yield f


def read_json(path: str | os.PathLike):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnreadableFile(f"{path} cannot be read ({error}): it is truncated or not JSON. {FIX}") from None


@contextmanager
def _opened(path: str | os.PathLike) -> Iterator[h5py.File]:
    try:
        f = h5py.File(path, "r")
    except OSError as error:
        raise UnreadableFile(f"{path} cannot be read ({str(error).splitlines()[0]}): it is truncated or not an HDF5 "
                             f"file (a crashed copy, a full disk). {FIX}") from None
    with f:
        yield f


def read_attrs(path: str | os.PathLike) -> dict:
    with _opened(path) as f:
        return {k: _decode(v) for k, v in f.attrs.items()}


def check_record(path: str | os.PathLike, attrs: dict, expect: dict) -> None:
    """Every field of the expected record against the file's; the mismatches named, with both values."""
    wrong = {k: (attrs.get(k, "<not recorded>"), v) for k, v in expect.items() if attrs.get(k, "<not recorded>") != v}
    if wrong:
        detail = "; ".join(f"{k} is {got!r} in the file, this step expects {want!r}" for k, (got, want) in wrong.items())
        raise ProvenanceMismatch(f"{path} was made for other inputs: {detail}. It belongs to another study or config, "
                                 f"or was moved or copied into place. {FIX}")


def read_h5(
    path: str | os.PathLike, keys: list[str] | None = None, expect: dict | None = None, optional: tuple[str, ...] = ()
) -> tuple[dict[str, np.ndarray], dict]:
    """Datasets (all, or `keys` and those of `optional` that the file has) and attributes of
    `path`, opened read-only; with `expect`, every field of its record checked first."""
    with _opened(path) as f:
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        if expect:
            check_record(path, attrs, expect)
        missing = [k for k in (keys or []) if k not in f]
        if missing:
            raise UnreadableFile(f"{path} lacks {missing}: it was made by another version of this workflow. {FIX}")
        names = list(f.keys()) if keys is None else [*keys, *(k for k in optional if k in f)]
        arrays = {k: f[k][()] for k in names}
    return arrays, attrs


def read_targets(paths: list[str], expect) -> dict[tuple[str, int], np.ndarray]:
    """Target tensors [S, d] of pack target files, by (condition, target_id); `expect(path)`
    gives each file's expected record."""
    out = {}
    for path in paths:
        data, attrs = read_h5(path, expect=expect(path) if callable(expect) else expect)
        names = attrs["conditions"]
        out.update({(names[c], int(t)): x for c, t, x in zip(data["condition"], data["target_id"], data["target"])})
    return out


def jsonable(value):
    """NumPy arrays and scalars -> lists and floats; NaN/Inf -> None (strict JSON)."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value
