"""A study's files: written so a killed job leaves nothing finished-looking, read so a wrong or
broken file is named, never computed on.

Every output goes through `atomic`: written under a temporary name in the same folder and
renamed into place (atomic on POSIX), so a file at the final path is always complete — HDF5
(`write_h5`), JSON (`write_json`), CSV (`write_csv`), text (`writing`) and figures alike.

Every file a later rule reads carries its *record* (records.py: what made it) and a checksum:
HDF5 its record as attributes and Fletcher-32 checksums on every chunk of its data; JSON a
`record` and a `sha256` of its contents; CSV a sidecar `<file>.record.json` with its record
and the CSV's sha256 (so the CSV stays what `pandas.read_csv` loads). Every input is opened by
`read_h5` / `read_attrs` / `read_json` / `read_csv`, which name a truncated, unreadable or
corrupted file and say what to do, and — given `expect`, a record from `records.py` — compare
every field of the file's record through one function, `check_record`, and refuse a file made
for other inputs. A checksum finds accidental damage (a flipped byte, a partial copy); an edit
made on purpose through h5py or a JSON editor that also rewrites the checksum cannot be told
from a real result. `jsonable` turns NumPy values into strict JSON.
"""

from __future__ import annotations

import hashlib
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
    """Write `arrays` as datasets, each chunk checksummed (Fletcher-32; a scalar or empty array
    cannot be chunked and has none), and `attrs` (each stored as JSON text), atomically."""
    with atomic(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in arrays.items():
            value = np.asarray(value)
            f.create_dataset(key, data=value, fletcher32=value.ndim > 0 and value.size > 0)
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value, sort_keys=True)


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def _sealed(value: dict) -> str:
    """The text a JSON file's checksum is taken over: its contents without the checksum, canonical."""
    return json.dumps({k: v for k, v in value.items() if k != "sha256"}, sort_keys=True)


def write_json(path: str | os.PathLike, value: dict, record: dict) -> None:
    """`value` (NumPy allowed) as strict JSON beside its `record` and a checksum, atomically."""
    out = json.loads(json.dumps(jsonable({"record": record, **value})))  # as a reader will see it (keys as text)
    with atomic(path) as tmp:
        tmp.write_text(json.dumps({**out, "sha256": sha256(_sealed(out))}, indent=1))


def write_table(path: str | os.PathLike, value) -> None:
    """A file no rule reads (a benchmark's rate table, a plan) as strict JSON, atomically, without
    a record."""
    with atomic(path) as tmp:
        tmp.write_text(json.dumps(jsonable(value), indent=1))


def sidecar(path: str | os.PathLike) -> str:
    """Where a CSV file's record lives: `<file>.record.json`."""
    return f"{path}.record.json"


def write_csv(path: str | os.PathLike, text: str, record: dict) -> None:
    """A CSV file as it is (what pandas.read_csv loads) and its sidecar: its record and the CSV's
    sha256. The sidecar is written second, so a CSV without a matching one is never trusted."""
    with atomic(path) as tmp:
        tmp.write_text(text)
    write_json(sidecar(path), {"csv_sha256": sha256(text)}, record)


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[TextIO]:
    """An open text file whose contents land at `path` atomically, when the body succeeds."""
    with atomic(path) as tmp, open(tmp, "w") as f:
        yield f


def read_json(path: str | os.PathLike, expect: dict | None = None) -> dict:
    """A JSON file the study wrote, its checksum checked and, with `expect`, its record."""
    try:
        value = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UnreadableFile(f"{path} cannot be read ({error}): it is truncated or not JSON. {FIX}") from None
    if not isinstance(value, dict) or "sha256" not in value:
        raise UnreadableFile(f"{path} has no checksum: it was not written by this version of the workflow. {FIX}")
    if value["sha256"] != sha256(_sealed(value)):
        raise UnreadableFile(f"{path} does not match its checksum: its contents changed after it was written (a "
                             f"damaged copy, or an edit). {FIX}")
    if expect:
        check_record(path, value.get("record", {}), expect)
    return value


def read_csv(path: str | os.PathLike, expect: dict | None = None) -> str:
    """A CSV file's text, checked against its sidecar: the checksum, and with `expect` the record."""
    side = read_json(sidecar(path), expect)
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UnreadableFile(f"{path} cannot be read ({error}). {FIX}") from None
    if sha256(text) != side["csv_sha256"]:
        raise UnreadableFile(f"{path} does not match its record {sidecar(path)}: one of the two was replaced, edited "
                             f"or damaged after they were written. {FIX}")
    return text


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
        arrays = {k: _data(path, f, k) for k in names}
    return arrays, attrs


def _data(path, f: h5py.File, key: str) -> np.ndarray:
    """One dataset, its chunks' checksums verified by HDF5 as they are read."""
    try:
        return f[key][()]
    except OSError as error:
        raise UnreadableFile(f"{path}: dataset {key!r} fails its checksum ({str(error).splitlines()[0]}): the file "
                             f"was damaged after it was written (a flipped byte, a bad copy). {FIX}") from None


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
