"""Load a causal LM for reachability work, and say where its parts live.

Every model is loaded the same way: float32 (the log's first pitfall), eval mode, every
parameter frozen, safetensors weights only unless pickle weights are explicitly allowed, and
never remote code. One small `Architecture` per family names the embedding, the block list,
the final norm and the attention/FFN submodules of a block; nothing else is family-specific.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

from .probes import offline_message


class ModelLoadError(RuntimeError):
    """The model could not be found or is not one this tool supports."""


@dataclass(frozen=True)
class Architecture:
    """Attribute names of one model family (`base` on the CausalLM, the rest on `base`)."""

    base: str
    embed: str
    blocks: str
    final_norm: str
    attention: str
    ffn: str
    positions: str | None = None  # learned absolute positions added to the input embedding
    masks_by_layer_type: bool = False  # blocks take a mask per layer type ({"full_attention": ...})


_LLAMA_LIKE = Architecture("model", "embed_tokens", "layers", "norm", "self_attn", "mlp")
_QWEN_LIKE = Architecture("model", "embed_tokens", "layers", "norm", "self_attn", "mlp", masks_by_layer_type=True)
ARCHITECTURES: dict[str, Architecture] = {
    "gpt_neox": Architecture("gpt_neox", "embed_in", "layers", "final_layer_norm", "attention", "mlp"),
    "gpt2": Architecture("transformer", "wte", "h", "ln_f", "attn", "mlp", positions="wpe"),
    "llama": _LLAMA_LIKE,
    "qwen2": _QWEN_LIKE,
    "qwen3": _QWEN_LIKE,
    "mistral": _LLAMA_LIKE,
}


@dataclass
class LanguageModel:
    """A loaded, frozen causal LM and the names of its parts."""

    model: nn.Module
    arch: Architecture
    name: str
    revision: str | None = None

    @property
    def config(self) -> PretrainedConfig:
        return self.model.config

    @property
    def base(self) -> nn.Module:
        return getattr(self.model, self.arch.base)

    @property
    def blocks(self) -> nn.ModuleList:
        return getattr(self.base, self.arch.blocks)

    @property
    def embedding(self) -> nn.Embedding:
        return getattr(self.base, self.arch.embed)

    @property
    def n_layers(self) -> int:
        return self.config.num_hidden_layers

    @property
    def d_model(self) -> int:
        return self.config.hidden_size

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> LanguageModel:
        """Move the weights (loaded in host memory) to the device a job was given."""
        self.model.to(device)
        return self

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids [..., S] -> input embeddings [..., S, d]."""
        return self.embedding(tokens.to(self.device))


def architecture_of(config: PretrainedConfig) -> Architecture:
    try:
        return ARCHITECTURES[config.model_type]
    except KeyError:
        raise ModelLoadError(
            f"model_type {config.model_type!r} is not supported; supported: {sorted(ARCHITECTURES)}"
        ) from None


def max_positions(config: PretrainedConfig) -> int:
    """The longest sequence the model's position encoding was built for."""
    return int(config.max_position_embeddings)


def load_config(name: str, revision: str | None = None) -> PretrainedConfig:
    """The model's config.json only (no weights): enough to check layers and context."""
    try:
        return AutoConfig.from_pretrained(name, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise ModelLoadError(offline_message(name, revision, error)) from error


def load_model(
    name: str,
    revision: str | None = None,
    device: str | torch.device = "cpu",
    allow_pickle_weights: bool = False,
) -> LanguageModel:
    """Load `name` (hub id or local directory) as a frozen float32 LanguageModel on `device`."""
    config = load_config(name, revision)
    arch = architecture_of(config)
    if allow_pickle_weights:
        warnings.warn(
            "allow_pickle_weights is on: pickle (.bin) weights can execute code when loaded; "
            "use only files you trust",
            stacklevel=2,
        )
    try:
        model = AutoModelForCausalLM.from_pretrained(
            name,
            revision=revision,
            dtype=torch.float32,
            use_safetensors=None if allow_pickle_weights else True,
            trust_remote_code=False,
        )
    except (OSError, ValueError) as error:
        if Path(name).is_dir() and not allow_pickle_weights:
            raise ModelLoadError(
                f"{name!r} has no safetensors weights; convert them, or set "
                f"model.allow_pickle_weights: true if you trust the files ({error})"
            ) from error
        raise ModelLoadError(offline_message(name, revision, error)) from error
    model.eval().requires_grad_(False).to(device)
    return LanguageModel(model=model, arch=arch, name=name, revision=revision)


def load_tokenizer(name: str, revision: str | None = None):
    """The model's tokenizer, with the same offline message as the model."""
    try:
        return AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise ModelLoadError(offline_message(name, revision, error)) from error
