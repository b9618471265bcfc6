"""The token pool: real sequences exactly as the agenda's `load_real_sequences` takes them.

For each text, in dataset order: strip it; skip it if shorter than 20 characters; tokenize
it; keep it if it has at least `seq_len` tokens, and take its first `seq_len`. Any source
`datasets.load_dataset` accepts works (a hub id, or local text/parquet/json files).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


class TooFewSequences(ValueError):
    """The dataset does not hold enough usable sequences."""


class DatasetUnavailable(RuntimeError):
    """The dataset could not be loaded (offline, a wrong id, missing files)."""


def load_texts(path: str, name: str | None, split: str, data_files=None, text_field: str = "text") -> Iterable[str]:
    """Texts of one dataset split, streamed in order."""
    from datasets import load_dataset

    try:
        dataset = load_dataset(path, name, split=split, data_files=data_files)
    except (OSError, ValueError) as error:  # ConnectionError and FileNotFoundError are OSErrors
        raise DatasetUnavailable(
            f"could not load dataset {path!r} (name {name!r}, split {split!r}, data_files "
            f"{data_files!r}): {error}. Offline? Set dataset.path to a local format ('text', "
            f"'json', 'parquet') with dataset.data_files pointing at your files, or set HF_HOME "
            f"to a cache that holds the dataset (with HF_DATASETS_OFFLINE=1), or HF_ENDPOINT to a mirror"
        ) from error
    if text_field not in dataset.column_names:
        raise ValueError(
            f"dataset {path!r} has no text field {text_field!r}; its fields are "
            f"{dataset.column_names}: set dataset.text_field to one of them"
        )
    return (row[text_field] for row in dataset)


def extract_sequences(
    texts: Iterable[str], tokenizer, seq_len: int, n: int, min_chars: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` usable sequences: token ids [n, seq_len] and their text indices [n]."""
    tokens, sources = [], []
    for index, text in enumerate(texts):
        text = text.strip()
        if len(text) < min_chars:
            continue
        ids = tokenizer.encode(text)
        if len(ids) >= seq_len:
            tokens.append(ids[:seq_len])
            sources.append(index)
            if len(tokens) >= n:
                break
    if len(tokens) < n:
        raise TooFewSequences(
            f"found only {len(tokens)} usable sequences (texts of at least {min_chars} characters "
            f"and {seq_len} tokens) but pool_size asks for {n}: lower pool_size or seq_len, or "
            f"use a larger dataset split"
        )
    return np.asarray(tokens, dtype=np.int64), np.asarray(sources, dtype=np.int64)
