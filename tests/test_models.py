import pytest
import torch
from safetensors.torch import load_file

from reachability.models import ARCHITECTURES, ModelLoadError, load_config, load_model
from conftest import save_tiny


def test_every_family_loads_frozen_float32_in_eval_mode(tiny_lm):
    assert tiny_lm.config.model_type in ARCHITECTURES
    assert not tiny_lm.model.training
    params = list(tiny_lm.model.parameters())
    assert params and all(p.dtype == torch.float32 and not p.requires_grad for p in params)
    assert tiny_lm.embed(torch.tensor([[1, 2, 3]])).shape == (1, 3, tiny_lm.d_model)
    assert len(tiny_lm.blocks) == tiny_lm.n_layers == 3


def test_offline_without_a_local_copy_says_how_to_point_at_a_directory():
    with pytest.raises(ModelLoadError, match="local directory") as info:
        load_model("no-such-org/no-such-model", revision="step1000")
    assert "HF_HOME" in str(info.value) and "step1000" in str(info.value)


def pickle_only(tmp_path):
    path = save_tiny("gpt_neox", tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    torch.save(load_file(weights), tmp_path / "m" / "pytorch_model.bin")
    weights.unlink()
    return path


def test_pickle_weights_are_refused_unless_allowed(tmp_path):
    path = pickle_only(tmp_path)
    with pytest.raises(ModelLoadError, match="allow_pickle_weights"):
        load_model(path)
    with pytest.warns(UserWarning, match="pickle"):
        lm = load_model(path, allow_pickle_weights=True)
    assert lm.n_layers == 3


def test_unsupported_architecture_is_named(tmp_path):
    from transformers import BertConfig

    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="'bert' is not supported"):
        load_model(str(tmp_path))


def test_config_alone_loads_without_weights(tmp_path):
    path = save_tiny("qwen2", tmp_path / "q")
    (tmp_path / "q" / "model.safetensors").unlink()
    assert load_config(path).num_hidden_layers == 3


def test_remote_code_is_never_executed(tmp_path):
    """A config that asks for custom code (auto_map) is refused without running it."""
    import json

    marker = tmp_path / "ran"
    (tmp_path / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "evil", "auto_map": {"AutoConfig": "modeling_evil.EvilConfig",
                                           "AutoModelForCausalLM": "modeling_evil.Evil"}}))
    with pytest.raises(ModelLoadError):
        load_model(str(tmp_path))
    assert not marker.exists()
