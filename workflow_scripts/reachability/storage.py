"""HDF5 files that say what made them, written so a killed job leaves nothing finished-looking.

`write_h5` writes to a temporary name in the same folder and renames it into place (atomic on
POSIX), so a file at the final path is always complete. `read_h5` opens read-only and, given
`expect`, refuses a file whose provenance attributes differ (made for another model, site,
shape, …) instead of computing on it. `read_targets` reads packs' target files; `jsonable`
turns NumPy values into strict JSON.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np


class ProvenanceMismatch(ValueError):
    """An input file was made for another model, site or shape."""


def _decode(value) -> object:
    return json.loads(value.decode() if isinstance(value, bytes) else value)


def write_h5(path: str | os.PathLike, arrays: dict[str, np.ndarray], attrs: dict) -> None:
    """Write `arrays` as datasets and `attrs` (each stored as JSON text) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=np.asarray(value))
            for key, value in attrs.items():
                f.attrs[key] = json.dumps(value, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_attrs(path: str | os.PathLike) -> dict:
    with h5py.File(path, "r") as f:
        return {k: _decode(v) for k, v in f.attrs.items()}


def check_provenance(path: str | os.PathLike, attrs: dict, expect: dict) -> None:
    wrong = {k: (attrs.get(k), v) for k, v in expect.items() if attrs.get(k) != v}
    if wrong:
        detail = "; ".join(f"{k}: file has {got!r}, expected {want!r}" for k, (got, want) in wrong.items())
        raise ProvenanceMismatch(
            f"{path} was made for different inputs ({detail}); delete it (or its folder) and rerun"
        )


def read_h5(
    path: str | os.PathLike, keys: list[str] | None = None, expect: dict | None = None, optional: tuple[str, ...] = ()
) -> tuple[dict[str, np.ndarray], dict]:
    """Datasets (all, or `keys` and those of `optional` that the file has) and attributes of
    `path`, opened read-only."""
    with h5py.File(path, "r") as f:
        attrs = {k: _decode(v) for k, v in f.attrs.items()}
        if expect:
            check_provenance(path, attrs, expect)
        names = list(f.keys()) if keys is None else [*keys, *(k for k in optional if k in f)]
        arrays = {k: f[k][()] for k in names}
    return arrays, attrs


def read_targets(paths: list[str], expect: dict) -> dict[tuple[str, int], np.ndarray]:
    """Target tensors [S, d] of pack target files, by (condition, target_id)."""
    out = {}
    for path in paths:
        data, attrs = read_h5(path, expect=expect)
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
