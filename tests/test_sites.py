import pytest
import torch

from reachability.forward import residual_function, residuals_of_tokens
from reachability.sites import Site, SiteError, check_site


def test_hidden_states_site_equals_output_hidden_states_at_every_layer(tiny_lm):
    x = torch.randn(3, 9, tiny_lm.d_model)
    expected = tiny_lm.model(inputs_embeds=x, output_hidden_states=True).hidden_states
    assert len(expected) == tiny_lm.n_layers + 1
    for layer in range(tiny_lm.n_layers + 1):
        got = residual_function(tiny_lm, Site("hidden_states", layer))(x)
        torch.testing.assert_close(got, expected[layer], rtol=1e-5, atol=1e-5)


def test_block_output_site_equals_a_hook_on_the_block(tiny_lm):
    x = torch.randn(2, 9, tiny_lm.d_model)
    seen = {}
    hooks = [
        block.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, out[0] if isinstance(out, tuple) else out))
        for i, block in enumerate(tiny_lm.blocks)
    ]
    try:
        tiny_lm.model(inputs_embeds=x)
    finally:
        for h in hooks:
            h.remove()
    for layer in range(1, tiny_lm.n_layers + 1):
        got = residual_function(tiny_lm, Site("block_output", layer))(x)
        torch.testing.assert_close(got, seen[layer - 1], rtol=1e-5, atol=1e-5)


def test_last_layer_sites_differ_by_the_final_norm(tiny_lm):
    x = torch.randn(2, 9, tiny_lm.d_model)
    n = tiny_lm.n_layers
    normed = residual_function(tiny_lm, Site("hidden_states", n))(x)
    raw = residual_function(tiny_lm, Site("block_output", n))(x)
    final_norm = getattr(tiny_lm.base, tiny_lm.arch.final_norm)
    torch.testing.assert_close(normed, final_norm(raw), rtol=1e-5, atol=1e-5)
    assert (normed - raw).abs().max() > 1e-2


def test_truncation_leaves_the_model_whole(tiny_lm):
    before = len(tiny_lm.blocks)
    residual_function(tiny_lm, Site("block_output", 1))
    assert len(tiny_lm.blocks) == before == tiny_lm.config.num_hidden_layers


def test_residuals_of_tokens_match_the_embedding_path(neox_lm):
    tokens = torch.randint(0, 97, (5, 8))
    site = Site("hidden_states", 2)
    got = residuals_of_tokens(neox_lm, site, tokens, batch_size=2)
    expected = neox_lm.model(input_ids=tokens, output_hidden_states=True).hidden_states[2]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("site", [Site("hidden_states", 4), Site("hidden_states", -1),
                                  Site("block_output", 0), Site("resid_mid", 1)])
def test_sites_the_model_lacks_are_refused(site):
    with pytest.raises(SiteError, match="site"):
        check_site(site, n_layers=3)


def test_site_tags_round_trip():
    for site in (Site("hidden_states", 12), Site("block_output", 3), Site("hidden_states", 0)):
        assert Site.from_tag(site.tag) == site


def test_prompts_of_the_wrong_width_or_longer_than_the_context_are_refused(neox_lm):
    residual = residual_function(neox_lm, Site("hidden_states", 2))
    with pytest.raises(ValueError, match="d_model = 32"):
        residual(torch.zeros(1, 5, 16))
    with pytest.raises(ValueError, match="S <= 64"):
        residual(torch.zeros(1, 65, 32))
    assert residual(torch.zeros(1, 64, 32)).shape == (1, 64, 32)


def test_transformer_lens_names_are_the_tensors_they_name(tiny_lm):
    """resid_pre of block l = the input of block l; resid_post = its output; ln_final's
    normalized = the final norm's output (with gain and bias): checked with hooks."""
    from reachability.sites import site_entry

    x = torch.randn(2, 7, tiny_lm.d_model)
    inputs, outputs = {}, {}

    def record(module, args, kwargs, out):
        i = list(tiny_lm.blocks).index(module)
        inputs[i] = args[0] if args else kwargs["hidden_states"]
        outputs[i] = out[0] if isinstance(out, tuple) else out

    hooks = [block.register_forward_hook(record, with_kwargs=True) for block in tiny_lm.blocks]
    final = []
    hooks.append(getattr(tiny_lm.base, tiny_lm.arch.final_norm).register_forward_hook(lambda m, a, out: final.append(out)))
    try:
        tiny_lm.model(inputs_embeds=x)
    finally:
        for h in hooks:
            h.remove()

    def site(name):
        entry = site_entry(name)
        return Site(entry["kind"], tiny_lm.n_layers if entry["layer"] == "last" else entry["layer"])

    for block in range(tiny_lm.n_layers):
        pre = residual_function(tiny_lm, site(f"blocks.{block}.hook_resid_pre"))(x)
        post = residual_function(tiny_lm, site(f"blocks.{block}.hook_resid_post"))(x)
        torch.testing.assert_close(pre, inputs[block], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(post, outputs[block], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(residual_function(tiny_lm, site("ln_final.hook_normalized"))(x), final[0],
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(SiteError, match="hook_resid_mid"):
        site_entry("blocks.0.hook_resid_mid")


def attention_calls(residual, x, monkeypatch, capturing: bool) -> tuple[list, torch.Tensor]:
    """What every SDPA call of one forward received (mask, is_causal), with CUDA stream capture
    simulated the way transformers detects it, and the forward's output."""
    import transformers.utils.import_utils as import_utils

    calls, sdpa = [], torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, **kwargs):
        calls.append((None if attn_mask is None else attn_mask.clone(), is_causal))
        return sdpa(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    monkeypatch.setattr(import_utils, "is_cuda_stream_capturing", lambda: capturing)
    out = residual(x)
    monkeypatch.undo()
    return calls, out


def test_a_captured_forward_makes_the_same_attention_calls_as_an_eager_one(tiny_lm, monkeypatch):
    """transformers counts CUDA stream capture as tracing and then builds its masks otherwise:
    the views give their own mask, so capture and eager make the same calls and compute the same."""
    for site in (Site("hidden_states", tiny_lm.n_layers), Site("block_output", 1)):
        residual = residual_function(tiny_lm, site)
        x = torch.randn(3, 9, tiny_lm.d_model)
        eager, out = attention_calls(residual, x, monkeypatch, capturing=False)
        captured, out_captured = attention_calls(residual, x, monkeypatch, capturing=True)
        assert len(eager) == len(captured) == site.layer
        for (mask, causal), (mask_c, causal_c) in zip(eager, captured):
            assert causal == causal_c and (mask is None) == (mask_c is None)
            assert mask is None or torch.equal(mask, mask_c)
        torch.testing.assert_close(out_captured, out, rtol=0, atol=0)


def test_a_forward_reads_nothing_back_to_the_host(tiny_lm, monkeypatch):
    """Past the first call (which builds the mask), a step's forward never needs a device value
    on the host: on a GPU that would be a sync per step, and inside a capture an error."""
    residual = residual_function(tiny_lm, Site("hidden_states", tiny_lm.n_layers))
    x = torch.randn(2, 9, tiny_lm.d_model)
    first = residual(x)

    def host_read(self):
        raise AssertionError("a tensor was read back to the host")

    monkeypatch.setattr(torch.Tensor, "__bool__", host_read)
    monkeypatch.setattr(torch.Tensor, "item", host_read)
    again = residual(x)
    monkeypatch.undo()
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_residuals_at_several_sites_in_one_pass_are_each_sites_own(tiny_lm):
    """The residual caches of a model come from one forward (cache_residuals): every site's
    residuals, the final norm's too, equal those of its own truncated forward."""
    from reachability.forward import residuals_at

    tokens = torch.randint(0, 97, (5, 8), generator=torch.Generator().manual_seed(0))
    n = tiny_lm.n_layers
    sites = [Site("hidden_states", n), Site("block_output", 1), Site("hidden_states", 0), Site("block_output", n),
             Site("hidden_states", n - 1)]
    together = residuals_at(tiny_lm, sites, tokens, batch_size=2)
    assert list(together) == sites
    for site in sites:
        torch.testing.assert_close(together[site], residuals_of_tokens(tiny_lm, site, tokens), rtol=1e-5, atol=1e-6)
