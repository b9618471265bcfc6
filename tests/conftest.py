"""Tiny random models of each supported family, saved and loaded through `load_model`."""

from __future__ import annotations

import copy
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from reachability.models import load_model

VOCAB, D, LAYERS, HEADS = 97, 32, 3, 4

FAMILIES = {
    "gpt_neox": lambda: GPTNeoXForCausalLM(GPTNeoXConfig(
        vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=4 * D, max_position_embeddings=64, rotary_pct=0.25,
        use_parallel_residual=True)),
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(
        vocab_size=VOCAB, n_embd=D, n_layer=LAYERS, n_head=HEADS, n_positions=64,
        bos_token_id=0, eos_token_id=0)),
    "llama": lambda: LlamaForCausalLM(LlamaConfig(
        vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=2, intermediate_size=2 * D, max_position_embeddings=64)),
    "qwen2": lambda: Qwen2ForCausalLM(Qwen2Config(
        vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=2, intermediate_size=2 * D, max_position_embeddings=64)),
    "qwen2_sliding": lambda: Qwen2ForCausalLM(Qwen2Config(  # full and sliding layers: a mask per layer type
        vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=2, intermediate_size=2 * D, max_position_embeddings=64, use_sliding_window=True,
        sliding_window=3, max_window_layers=1)),
    "qwen3": lambda: Qwen3ForCausalLM(Qwen3Config(
        vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=2, head_dim=D // HEADS, intermediate_size=2 * D, max_position_embeddings=64)),
    "mistral": lambda: MistralForCausalLM(MistralConfig(
        vocab_size=VOCAB, hidden_size=D, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=2, intermediate_size=2 * D, max_position_embeddings=64, sliding_window=4)),
}


def save_tiny(family: str, path) -> str:
    torch.manual_seed(0)
    model = FAMILIES[family]()
    # Random init leaves norms at identity; perturb them so a missing/extra norm shows.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln" in name:
                p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session", params=sorted(FAMILIES))
def tiny_lm(request, tmp_path_factory):
    """Each family in turn, loaded through the project's own loading code."""
    path = save_tiny(request.param, tmp_path_factory.mktemp(request.param))
    return load_model(path)


@pytest.fixture(scope="session")
def neox_lm(tmp_path_factory):
    return load_model(save_tiny("gpt_neox", tmp_path_factory.mktemp("neox")))


def on_device(lm, device: str):
    """A copy of `lm` on `device`: the session's shared model never moves."""
    return copy.deepcopy(lm).to(device)


@pytest.fixture
def gpu_lm(neox_lm):
    """A copy of the tiny GPT-NeoX on the GPU for one test (the shared CPU model stays on the CPU,
    so the CPU tests after a GPU test still find it there)."""
    return on_device(neox_lm, "cuda")


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The offline demo DAG, run once to completion with real Snakemake."""
    from workflow_helpers import demo_config, snakemake

    workdir = tmp_path_factory.mktemp("demo")
    result = snakemake(workdir, demo_config(), "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def pytest_addoption(parser):
    parser.addoption("--gpu-first", action="store_true",
                     help="run the tests marked gpu before all others: a GPU test that leaves a shared model on "
                          "the GPU then fails the CPU tests after it")


def pytest_collection_modifyitems(config, items):
    """Tests that need the demo DAG are `slow`; tests marked `gpu` run where CUDA is and are
    skipped elsewhere, saying why."""
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "demo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip)
    if config.getoption("--gpu-first"):
        items.sort(key=lambda item: "gpu" not in item.keywords)  # stable: file order otherwise
