"""A tiny random GPT-NeoX and a byte-level BPE tokenizer, for the offline demo and tests.

Built from a config with a fixed seed and a corpus the repository ships, so the demo needs no
network. The model has Pythia's structure (parallel residual, rotary, final LayerNorm) at a
toy size; its norms get a seeded perturbation so the final norm is not the identity.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

from .validation import BUILT


def train_tokenizer(corpus: str | Path, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on `corpus` (deterministic for a given file)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tokenizer.train([str(corpus)], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>")


def build_demo_model(
    out_dir: str | Path,
    corpus: str | Path,
    hidden_size: int = 64,
    num_layers: int = 4,
    num_heads: int = 4,
    vocab_size: int = 1024,
    max_positions: int = 64,
    seed: int = 0,
) -> None:
    """Write config.json, model.safetensors, the tokenizer files and the build's own record (the
    mark of a folder the workflow may replace) to `out_dir`."""
    tokenizer = train_tokenizer(corpus, vocab_size)
    config = GPTNeoXConfig(
        vocab_size=len(tokenizer), hidden_size=hidden_size, num_hidden_layers=num_layers,
        num_attention_heads=num_heads, intermediate_size=4 * hidden_size,
        max_position_embeddings=max_positions, rotary_pct=0.25, use_parallel_residual=True,
        bos_token_id=0, eos_token_id=0,
    )
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = GPTNeoXForCausalLM(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layernorm" in name or "layer_norm" in name:
                p.add_(0.2 * torch.randn(p.shape, generator=generator))
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    spec = {"hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads, "vocab_size": vocab_size,
            "max_positions": max_positions, "seed": seed, "corpus": str(corpus)}
    (Path(out_dir) / BUILT).write_text(json.dumps(spec, indent=1))
