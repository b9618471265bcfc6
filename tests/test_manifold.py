import torch

from reachability.manifold import nearest_tokens, norm_summary


def test_nearest_token_of_a_scaled_embedding_is_that_token():
    table = torch.randn(50, 16)
    prompts = torch.stack([3.0 * table[[4, 9, 4]], 0.5 * table[[0, 1, 2]]])  # [2, 3, 16]
    ids, cos = nearest_tokens(prompts, table, chunk=2)
    assert ids.tolist() == [[4, 9, 4], [0, 1, 2]] and torch.allclose(cos, torch.ones(2, 3), atol=1e-5)
    far = torch.randn(200, 16)
    far_ids, far_cos = nearest_tokens(far, table, chunk=7)  # against every token, by brute force
    every = torch.nn.functional.cosine_similarity(far[:, None, :], table[None, :, :], dim=-1)
    assert torch.equal(far_ids, every.argmax(-1)) and torch.allclose(far_cos, every.max(-1).values, atol=1e-6)


def test_norm_summary_compares_prompts_with_tokens():
    table = torch.ones(10, 4)  # norm 2
    summary = norm_summary(torch.full((3, 5, 4), 3.0), table)  # norm 6
    assert summary["prompt_norm_mean"] == 6.0 and summary["token_norm_mean"] == 2.0 and summary["norm_ratio_mean"] == 3.0
