"""Load a causal LM for reachability work, and say where its parts live.

Every model is loaded the same way: float32 (the log's first pitfall), eval mode, every
parameter frozen, safetensors weights only unless pickle weights are explicitly allowed, and
never remote code — and only when every weight its config.json asks for is in its files with
the config's shape, and no weight in them goes unused (transformers' loading report): a folder
whose config.json was edited to another family, another depth or another width is refused,
never filled with random blocks. One small `Architecture` per family names the embedding, the
block list, the final norm and the attention/FFN submodules of a block; nothing else is
family-specific. A model's `identity` (its config and a sample of its weights) is recorded in
the files the jobs that load it write, so a model changed after a study began is noticed.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PretrainedConfig

from .probes import offline_message

# Entries of a checkpoint that are buffers of older versions of a family, not weights (a
# rotary table, a causal mask): loading may leave them unused.
NOT_WEIGHTS = re.compile(r"(rotary_emb\.inv_freq|\.masked_bias|attention\.bias|attn\.bias)$")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")
VOLATILE = ("transformers_version", "dtype", "torch_dtype")  # config.json keys that do not change the model


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

    @cached_property
    def identity(self) -> dict:
        """What this model is, as loaded: its config (without the keys that change nothing) and a
        digest of a strided sample of every weight. Two loads of unchanged files agree; an edited
        config.json or other weights do not."""
        config = {k: v for k, v in self.config.to_dict().items() if not k.startswith("_") and k not in VOLATILE}
        config = json.loads(json.dumps(config, default=str))  # as a file's record holds it (keys as text)
        digest = hashlib.sha256()
        for name, p in sorted(self.model.named_parameters()):
            flat = p.detach().reshape(-1)
            digest.update(name.encode() + flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes())
        return {"config": config, "weights": digest.hexdigest()[:16]}


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


def _local_folder(name: str, config: bool = True) -> Path | None:
    """`name` as a local model folder, checked for config.json (`config`); None for a hub id."""
    folder = Path(name)
    if not folder.is_dir():
        return None
    if config and not (folder / "config.json").is_file():
        raise ModelLoadError(f"model folder {name!r} has no config.json: copy the model's config.json, weights "
                             f"(*.safetensors) and tokenizer files there (e.g. `hf download <model id> --local-dir "
                             f"{name}` on a machine with network), or point model.name at the folder that has them")
    return folder


def load_config(name: str, revision: str | None = None) -> PretrainedConfig:
    """The model's config.json only (no weights): enough to check layers and context."""
    _local_folder(name)
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
        model, report = AutoModelForCausalLM.from_pretrained(
            name,
            revision=revision,
            dtype=torch.float32,
            use_safetensors=None if allow_pickle_weights else True,
            trust_remote_code=False,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported below, with the file and the fix
        )
    except (OSError, ValueError) as error:
        if Path(name).is_dir() and not allow_pickle_weights:
            raise ModelLoadError(
                f"{name!r} has no safetensors weights; convert them, or set "
                f"model.allow_pickle_weights: true if you trust the files ({error})"
            ) from error
        raise ModelLoadError(offline_message(name, revision, error)) from error
    except Exception as error:  # safetensors' own error on a truncated or damaged file
        if type(error).__name__ != "SafetensorError":
            raise
        files = sorted(str(p) for p in Path(name).glob("*.safetensors")) if Path(name).is_dir() else [name]
        raise ModelLoadError(f"the weights of model {name!r} ({', '.join(files)}) cannot be read ({error}): a "
                             f"truncated or damaged file. Copy or download them again") from None
    check_loading(name, report)
    model.eval().requires_grad_(False).to(device)
    return LanguageModel(model=model, arch=arch, name=name, revision=revision)


def check_loading(name: str, report: dict) -> None:
    """Refuse a model whose weights are not exactly what its config asks for (transformers'
    loading report): missing ones (it would run with random blocks), mismatched shapes, or
    unused ones (another family, or fewer layers than the file holds)."""
    missing = sorted(report["missing_keys"])
    unused = sorted(k for k in report["unexpected_keys"] if not NOT_WEIGHTS.search(k))
    mismatched = [f"{k} (file {tuple(theirs)}, config {tuple(ours)})" for k, theirs, ours in sorted(report["mismatched_keys"])]
    problems = [f"{what}: {', '.join(keys[:6])}{f' and {len(keys) - 6} more' if len(keys) > 6 else ''}"
                for what, keys in (("weights its config.json asks for but its files lack", missing),
                                   ("weights of a shape other than config.json's", mismatched),
                                   ("weights in its files that config.json has no place for", unused)) if keys]
    if problems:
        config = f"{name}/config.json" if Path(name).is_dir() else f"the config.json of {name!r}"
        raise ModelLoadError(f"model {name!r}: {config} does not describe its weights — "
                             + "; ".join(problems) + ". The config (model_type, layers, sizes) was edited or "
                             "belongs to another model: restore the folder's own config.json, or use the "
                             "config.json that came with these weights")


def load_tokenizer(name: str, revision: str | None = None):
    """The model's tokenizer, with the same offline message as the model; a local folder must
    hold tokenizer files (without them transformers builds an empty tokenizer)."""
    folder = _local_folder(name, config=False)
    if folder is not None and not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise ModelLoadError(f"model folder {name!r} has no tokenizer files (one of {', '.join(TOKENIZER_FILES)}): "
                             f"copy the model's tokenizer files there")
    try:
        return AutoTokenizer.from_pretrained(name, revision=revision, trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise ModelLoadError(offline_message(name, revision, error)) from error


def token_embeddings(lm: LanguageModel, config: dict) -> torch.Tensor:
    """The embeddings [V, d] of the tokenizer's tokens only: what a method may use of the
    vocabulary (an embedding may have padding rows that are no text)."""
    n_tokens = len(load_tokenizer(config["model"]["name"], config["model"]["revision"]))
    return lm.embedding.weight.detach()[:n_tokens].clone()


class ModelChanged(ValueError):
    """The model now at model.name is not the one a study's earlier files were made with."""


def load_study_model(config: dict, made_with: dict[str, dict] | None = None):
    """The study's model in host memory (a GPU job moves it once it holds a device), checked
    against the config's sites and seq_len and against the model each input was made with
    (`made_with`: path -> its record, whose `model_identity` a model-loading job wrote)."""
    from .validation import check_model_limits

    m = config["model"]
    lm = load_model(m["name"], m["revision"], "cpu", m["allow_pickle_weights"])
    check_model_limits(config, lm.config)
    identity = lm.identity  # now, while the weights are in host memory (a claim frees them when it ends)
    for path, record in (made_with or {}).items():
        check_same_model(identity, record.get("model_identity"), m["name"], path)
    return lm


def check_same_model(now: dict, then: dict | None, name: str, path: str) -> None:
    """The model loaded now is the one `path` was made with: its config.json and weights unchanged."""
    if then is None or then == now:
        return
    changed = sorted(k for k in {*now["config"], *then["config"]} if now["config"].get(k) != then["config"].get(k))
    what = [f"{k} is {now['config'].get(k)!r} now, {then['config'].get(k)!r} then" for k in changed[:6]]
    what += ["its weights differ"] if now["weights"] != then["weights"] else []
    raise ModelChanged(f"the model at {name} is not the one {path} was made with ({'; '.join(what)}). If you changed "
                       f"the model on purpose, the study must be made again with it: delete results/ (or run with "
                       f"--forcerun cache_residuals) and rerun; otherwise restore the model's files")
