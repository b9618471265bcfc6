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


# A model folder unlike its weights is refused (its loading report); a changed model is noticed


def edited(tmp_path, name, **changes):
    import json

    path = save_tiny("gpt_neox", tmp_path / name)
    config = json.loads((tmp_path / name / "config.json").read_text())
    (tmp_path / name / "config.json").write_text(json.dumps({**config, **changes}))
    return path


@pytest.mark.parametrize("changes,message", [
    ({"model_type": "gpt2"}, r"files lack: lm_head.weight, transformer\.h\.0"),
    ({"num_hidden_layers": 5}, r"files lack: gpt_neox\.layers\.3\."),
    ({"num_hidden_layers": 2}, r"config.json has no place for: gpt_neox\.layers\.2\."),
    ({"hidden_size": 64}, r"of a shape other than config.json.s: gpt_neox.embed_in.weight \(file \(97, 32\), config \(97, 64\)\)"),
    ({"vocab_size": 200}, r"gpt_neox.embed_in.weight \(file \(97, 32\), config \(200, 32\)\)"),
])
def test_a_config_json_unlike_its_weights_refuses_to_load(tmp_path, changes, message):
    path = edited(tmp_path, "m", **changes)
    with pytest.raises(ModelLoadError, match=message) as error:
        load_model(path)
    assert f"{path}/config.json does not describe its weights" in str(error.value)
    assert "restore the folder's own config.json" in str(error.value)


@pytest.mark.parametrize("changes", [{"num_attention_heads": 8}, {"layer_norm_eps": 1e-3},
                                     {"use_parallel_residual": False}])
def test_a_config_edit_the_weights_cannot_show_is_noticed_against_the_studys_files(tmp_path, changes):
    """Heads, eps or the residual layout change no weight's shape: the load succeeds, but the
    model is not the one the study's files were made with, and every model-loading job says so."""
    from reachability.models import ModelChanged, check_same_model

    before = load_model(save_tiny("gpt_neox", tmp_path / "m")).identity
    assert load_model(str(tmp_path / "m")).identity == before  # a second load of unchanged files agrees
    after = load_model(edited(tmp_path, "m", **changes)).identity
    key = next(iter(changes))
    with pytest.raises(ModelChanged, match=rf"not the one results/cache/hs2/pool_residuals.h5 was made with \({key} is"):
        check_same_model(after, before, str(tmp_path / "m"), "results/cache/hs2/pool_residuals.h5")


def test_other_weights_of_the_same_shapes_are_noticed(tmp_path):
    from safetensors.torch import save_file

    from reachability.models import ModelChanged, check_same_model

    path = save_tiny("gpt_neox", tmp_path / "m")
    before = load_model(path).identity
    weights = load_file(tmp_path / "m" / "model.safetensors")
    save_file({k: v * 1.01 for k, v in weights.items()}, tmp_path / "m" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelChanged, match="its weights differ"):
        check_same_model(load_model(path).identity, before, path, "pack.h5")


def test_missing_files_of_a_model_folder_are_named_with_the_fix(tmp_path):
    from reachability.models import load_tokenizer

    path = save_tiny("gpt_neox", tmp_path / "m")
    with pytest.raises(ModelLoadError, match=rf"model folder '{path}' has no tokenizer files"):
        load_tokenizer(path)
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated
    with pytest.raises(ModelLoadError, match=rf"the weights of model '{path}' \({weights}\) cannot be read .* "
                                             "truncated or damaged"):
        load_model(path)
    (tmp_path / "m" / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=rf"model folder '{path}' has no config.json: copy"):
        load_model(path)


def test_every_family_loads_with_a_clean_loading_report(tiny_lm):
    """No family's own checkpoint trips the check (tied embeddings, buffers): the fixture loaded it."""
    assert tiny_lm.identity["config"]["model_type"] == tiny_lm.config.model_type
