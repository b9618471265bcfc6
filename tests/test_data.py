from pathlib import Path

import numpy as np
import pytest

from reachability.data import TooFewSequences, extract_sequences, load_texts

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class WordTokenizer:
    """One id per whitespace word: enough to test the selection rules."""

    def encode(self, text):
        return [len(w) for w in text.split()]


def test_selection_follows_the_agenda():
    texts = [
        "   ",  # empty after strip
        "short line",  # under 20 characters
        " a b c d e f g h i j k ",  # 11 tokens, 22 characters: too few tokens for seq_len 12
        " " + " ".join(["word"] * 15) + "\n",  # kept: first 12 tokens
        "x" * 5 + " yy" * 20,  # kept
        "zzz " * 30,  # not needed: n reached
    ]
    tokens, sources = extract_sequences(texts, WordTokenizer(), seq_len=12, n=2)
    assert tokens.shape == (2, 12) and sources.tolist() == [3, 4]
    assert tokens[0].tolist() == [4] * 12 and tokens[1].tolist() == [5] + [2] * 11


def test_too_few_sequences_says_how_many_were_found():
    with pytest.raises(TooFewSequences, match="found only 1 usable sequences"):
        extract_sequences(["a " * 30, "b"], WordTokenizer(), seq_len=5, n=3)


def test_local_text_files_load_through_datasets(tmp_path):
    (tmp_path / "c.txt").write_text("first line of text here\n\nsecond line\n")
    texts = list(load_texts("text", None, "train", data_files=str(tmp_path / "c.txt")))
    assert texts[0].strip() == "first line of text here" and len(texts) == 3
    with pytest.raises(ValueError, match="text_field"):
        load_texts("text", None, "train", data_files=str(tmp_path / "c.txt"), text_field="content")


@pytest.mark.skipif(not (SHARED / "wiki.test.raw").exists(), reason="../shared/data not present")
def test_real_wikitext_and_pythia_tokenizer_match_the_agenda_loop():
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(SHARED / "20B_tokenizer.json"))
    texts = list(load_texts("text", None, "train", data_files=str(SHARED / "wiki.test.raw")))
    tokens, _ = extract_sequences(texts, tokenizer, seq_len=20, n=1000)
    expected = []  # the agenda's load_real_sequences, as written
    for text in texts:
        text = text.strip()
        if len(text) < 20:
            continue
        ids = tokenizer.encode(text, return_tensors="pt").squeeze(0)
        if ids.shape[0] >= 20:
            expected.append(ids[:20].numpy())
        if len(expected) >= 1000:
            break
    np.testing.assert_array_equal(tokens, np.stack(expected))


def test_an_unreachable_dataset_says_what_to_set(tmp_path):
    from reachability.data import DatasetUnavailable

    with pytest.raises(DatasetUnavailable, match="data_files") as info:
        load_texts("text", None, "train", data_files=str(tmp_path / "missing.txt"))
    assert "HF_HOME" in str(info.value) and "HF_ENDPOINT" in str(info.value)
