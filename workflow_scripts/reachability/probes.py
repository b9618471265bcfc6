"""What the machine a study runs on can provide: the Hugging Face hub, the local dataset files.

Asked before any job, so that a study that needs the network on a machine without it, or a
corpus path that matches nothing, stops at once with what to do — not a job retrying the hub
for a minute and failing.
"""

from __future__ import annotations

import glob
import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from .validation import ConfigError


def offline_message(name: str, revision: str | None, error: object) -> str:
    """What to do when a model is neither a local directory nor reachable on the hub."""
    rev = f" at revision {revision!r}" if revision else ""
    return (
        f"could not load model {name!r}{rev}: it is not a local directory, and the Hugging Face hub "
        f"could not provide it (offline, a wrong id, or a missing revision) and no cached copy "
        f"exists. Fix: set model.name to a local directory holding config.json and *.safetensors "
        f"(e.g. made by `hf download {name} --local-dir DIR` on a machine with network), or set "
        f"HF_HOME to a cache that holds it, or HF_ENDPOINT to a reachable mirror. ({error})"
    )


def local_data_files(config: dict, resolve: Callable[[str], str] = str) -> list[str]:
    """The local files `dataset.data_files` names (globs expanded; URLs left out), resolved."""
    files = config["dataset"]["data_files"]
    if files is None:
        return []
    patterns = [files] if isinstance(files, str) else files
    return sorted({f for p in patterns if "://" not in p for f in glob.glob(resolve(p))})


def check_dataset(config: dict, resolve: Callable[[str], str] = str) -> None:
    """Local data files must exist, and the split must be one that plain files have."""
    files = config["dataset"]["data_files"]
    if files is None:
        return
    patterns = [files] if isinstance(files, str) else files
    missing = [p for p in patterns if "://" not in p and not glob.glob(resolve(p))]
    if missing:
        raise ConfigError(
            f"dataset.data_files: {missing} matches no file (a relative path is read from the working "
            f"directory, else from the workflow's folder): correct the path"
        )
    if config["dataset"]["path"] == "text":
        for path in local_data_files(config, resolve):
            check_text_file(path)
    split = config["dataset"]["split"]
    if split.split("[")[0] != "train":
        raise ConfigError(
            f"dataset.split = {split!r}, but data files given by dataset.data_files form one split, "
            f"'train' (as `datasets` names it): set dataset.split: train"
        )


TEXT_CHECKED = 256 * 2**20  # bytes of a text file read before any job (its start, for a larger file)


def check_text_file(path: str) -> None:
    """A local text file for `datasets`' text loader must be non-empty UTF-8 text: name the file
    and the fix for an empty one, a binary one, UTF-16 or a legacy 8-bit encoding."""
    fix = f"convert it, e.g. `iconv -f <its encoding> -t UTF-8 {path} > {path}.utf8`, and point dataset.data_files there"
    with open(path, "rb") as f:
        data = f.read(TEXT_CHECKED)
    if not data.strip():
        raise ConfigError(f"dataset.data_files: {path} is empty (or only whitespace): it has no text to take sequences "
                          f"from; point dataset.data_files at your corpus")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data:
        raise ConfigError(f"dataset.data_files: {path} is not UTF-8 text (it holds NUL bytes: UTF-16, or a binary "
                          f"file): {fix}")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(data) - 3:  # not merely a character cut at the end of what was read
            raise ConfigError(f"dataset.data_files: {path} is not UTF-8 (byte {data[error.start]:#04x} at offset "
                              f"{error.start}; Latin-1 or another 8-bit encoding?): {fix}") from None


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Can this machine open a connection to the Hugging Face hub (HF_ENDPOINT if set)?"""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=timeout_s).close()
    except OSError:
        return False
    return True


def check_hub(config: dict, model_is_local: bool, pool_exists: bool) -> None:
    """Before any job runs: what the study still needs from the hub must be reachable, else
    say so now (instead of a job retrying the hub for a minute and failing)."""
    needs = []
    if not model_is_local:
        needs.append(offline_message(config["model"]["name"], config["model"]["revision"], "hub unreachable"))
    dataset = config["dataset"]
    remote = dataset["data_files"] is None and not Path(dataset["path"]).exists()
    if not pool_exists and remote and os.environ.get("HF_DATASETS_OFFLINE", "0") not in ("1", "true", "yes"):
        needs.append(
            f"dataset.path = {dataset['path']!r} is loaded from the Hugging Face hub. Fix: set dataset.path "
            f"to a local format ('text', 'json', 'parquet') with dataset.data_files pointing at your files, "
            f"or set HF_HOME to a cache that holds the dataset and HF_DATASETS_OFFLINE=1, or HF_ENDPOINT "
            f"to a mirror"
        )
    if needs and not hub_reachable():
        raise ConfigError("the Hugging Face hub is not reachable from this machine, and the study needs it:\n- "
                          + "\n- ".join(needs))
