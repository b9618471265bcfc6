import pytest
import torch

from reachability.ablation import ablated
from reachability.forward import residual_function
from reachability.sites import Site


def block_by_hand(block, x, drop_attention=False, drop_ffn=False):
    """GPT-NeoX parallel residual: x + attn(ln1 x) + mlp(ln2 x), computed from its parts."""
    seq = x.shape[1]
    position_ids = torch.arange(seq).unsqueeze(0)
    rotary = block.attention.rotary_emb if hasattr(block.attention, "rotary_emb") else None
    out = x
    if not drop_attention:
        from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXRotaryEmbedding

        emb = (rotary or GPTNeoXRotaryEmbedding(block.attention.config))(x, position_ids)
        mask = torch.full((seq, seq), float("-inf")).triu(1)[None, None]
        attn = block.attention(block.input_layernorm(x), attention_mask=mask, position_embeddings=emb)
        out = out + (attn[0] if isinstance(attn, tuple) else attn)
    if not drop_ffn:
        out = out + block.mlp(block.post_attention_layernorm(x))
    return out


@pytest.mark.parametrize("component", [None, "ffn", "attention"])
def test_ablation_of_one_neox_block_equals_the_hand_computed_block(neox_lm, component):
    assert neox_lm.config.use_parallel_residual
    x = torch.randn(2, 7, neox_lm.d_model)
    with ablated(neox_lm, component):
        got = residual_function(neox_lm, Site("block_output", 1))(x)
    expected = block_by_hand(neox_lm.blocks[0], x, component == "attention", component == "ffn")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def hook_ids(lm):
    return {(i, n, k) for i, b in enumerate(lm.blocks) for n in ("mlp", "attention")
            for k in getattr(b, n)._forward_hooks}


def test_ablation_of_chosen_blocks_only_and_hooks_removed(neox_lm):
    before = hook_ids(neox_lm)
    x = torch.randn(2, 7, neox_lm.d_model)
    residual = residual_function(neox_lm, Site("block_output", 3))
    full = residual(x)
    with ablated(neox_lm, "ffn", blocks=[2]):
        late = residual(x)
        early = residual_function(neox_lm, Site("block_output", 2))(x)
    torch.testing.assert_close(early, residual_function(neox_lm, Site("block_output", 2))(x))
    assert (late - full).abs().max() > 1e-3
    torch.testing.assert_close(residual(x), full)
    assert hook_ids(neox_lm) == before


def test_hooks_are_removed_when_the_body_raises(neox_lm):
    before = hook_ids(neox_lm)
    with pytest.raises(RuntimeError, match="boom"):
        with ablated(neox_lm, "attention"):
            raise RuntimeError("boom")
    assert hook_ids(neox_lm) == before


def test_unknown_component_is_refused(neox_lm):
    with pytest.raises(ValueError, match="ffn"):
        with ablated(neox_lm, "layernorm"):
            pass
