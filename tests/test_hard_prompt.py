"""Hard prompts (PEZ): the straight-through step, batching, recovery, and the report's
per-target measures."""

import numpy as np
import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from equality import assert_same_losses, mean_square
from reachability.forward import residual_function, residuals_of_tokens
from reachability.hard_prompt import recovery
from reachability.models import load_model
from reachability.methods import Pez, project_to_tokens, random_token_prompt
from reachability.optimize import optimize_batch
from reachability.runs import RunId
from reachability.sites import Site

SEQ = 6


def test_the_projection_is_exactly_token_embeddings_and_passes_the_gradient_straight_through():
    vocabulary = torch.randn(50, 16)
    prompt = torch.randn(3, SEQ, 16, requires_grad=True)
    seen, ids = project_to_tokens(prompt, vocabulary, torch.nn.functional.normalize(vocabulary, dim=-1))
    torch.testing.assert_close(seen, vocabulary[ids], rtol=0, atol=0)  # the forward sees tokens only
    cosine = torch.nn.functional.normalize(prompt.detach(), dim=-1) @ torch.nn.functional.normalize(vocabulary, dim=-1).T
    assert torch.equal(ids, cosine.argmax(-1))  # the nearest by cosine
    upstream = torch.randn_like(seen)
    seen.backward(upstream)
    torch.testing.assert_close(prompt.grad, upstream, rtol=0, atol=0)  # the gradient reaches the prompt


def test_every_forward_of_a_hard_run_sees_token_embeddings_and_the_prompt_moves(neox_lm):
    site = Site("block_output", 2)
    residual = residual_function(neox_lm, site)
    vocabulary = neox_lm.embedding.weight.detach()
    seen = []

    def recording(x):
        seen.append(x.detach().clone())
        return residual(x)

    targets = residuals_of_tokens(neox_lm, site, torch.randint(0, 97, (2, SEQ), generator=torch.Generator().manual_seed(1)))
    init = torch.stack([random_token_prompt(RunId("hard_prompt", "text", t, 0), SEQ, vocabulary) for t in range(2)])
    result = optimize_batch(recording, targets, {"prompt": init}, Pez(lr=0.05, vocabulary=vocabulary), steps=30)
    for x in seen:  # 30 steps and the final evaluation: every vector is a row of the vocabulary
        rows = x.reshape(-1, x.shape[-1])
        assert (rows[:, None, :] == vocabulary[None]).all(dim=-1).any(dim=1).all()
    assert not np.allclose(result.prompt, init.numpy())  # the continuous prompt was updated
    assert result.tokens.shape == (2, SEQ) and result.loss.shape == (2, 30)
    # the kept tokens are the best seen: their MSE is the history's minimum, and it is what they reach
    assert_same_losses(result.final_mse, result.loss.min(axis=1), mean_square(targets), rtol=1e-5)
    reached = ((residual(vocabulary[torch.from_numpy(result.tokens)]) - targets) ** 2).mean(dim=(1, 2))
    assert_same_losses(result.final_mse, reached.detach().numpy(), mean_square(targets), rtol=1e-5)


def test_a_hard_run_alone_equals_the_same_run_inside_a_batch(neox_lm):
    site = Site("hidden_states", neox_lm.n_layers)
    residual = residual_function(neox_lm, site)
    vocabulary = neox_lm.embedding.weight.detach()
    targets = residuals_of_tokens(neox_lm, site, torch.randint(0, 97, (4, SEQ), generator=torch.Generator().manual_seed(2)))
    init = torch.stack([random_token_prompt(RunId("hard_prompt", "text", t, 0), SEQ, vocabulary) for t in range(4)])
    batch = optimize_batch(residual, targets, {"prompt": init}, Pez(lr=0.05, vocabulary=vocabulary), steps=40)
    alone = optimize_batch(residual, targets[2:3], {"prompt": init[2:3]}, Pez(lr=0.05, vocabulary=vocabulary),
                           steps=40)
    np.testing.assert_array_equal(batch.tokens[2], alone.tokens[0])
    assert_same_losses(batch.loss[2], alone.loss[0], mean_square(targets[2]))


@pytest.fixture(scope="module")
def two_layer_lm(tmp_path_factory):
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                             intermediate_size=64, max_position_embeddings=32))
    path = tmp_path_factory.mktemp("two_layer")
    model.save_pretrained(path)
    return load_model(str(path))


def test_the_tokens_of_a_target_are_recovered_from_a_nearby_start(two_layer_lm):
    # a target made from a short token sequence; the hard prompt starts near its embeddings
    lm, site = two_layer_lm, Site("hidden_states", 2)
    vocabulary = lm.embedding.weight.detach()
    tokens = torch.tensor([[5, 17, 42, 8, 33, 60]])
    target = residuals_of_tokens(lm, site, tokens)
    noise = torch.randn(1, SEQ, 32, generator=torch.Generator().manual_seed(2))
    init = vocabulary[tokens] + 1.5 * vocabulary.std() * noise
    start = project_to_tokens(init, vocabulary, torch.nn.functional.normalize(vocabulary, dim=-1))[1]
    assert (start != tokens).sum() == 2  # near, but two tokens wrong: the gradient must find them
    result = optimize_batch(residual_function(lm, site), target, {"prompt": init}, Pez(lr=0.01, vocabulary=vocabulary),
                            steps=200)
    np.testing.assert_array_equal(result.tokens, tokens.numpy())
    assert result.final_mse[0] < 1e-10
    found = recovery(result.tokens, tokens.numpy())
    assert found["exact"].all() and found["position_match"][0] == 1 and found["token_overlap"][0] == 1


def test_recovery_measures_on_known_cases():
    original = np.array([[1, 2, 3, 4], [1, 2, 3, 4], [5, 5, 6, 7]])
    found = np.array([[1, 2, 3, 4], [4, 3, 2, 9], [5, 0, 0, 0]])
    measures = recovery(found, original)
    np.testing.assert_array_equal(measures["exact"], [True, False, False])
    np.testing.assert_allclose(measures["position_match"], [1, 0, 0.25])
    np.testing.assert_allclose(measures["token_overlap"], [1, 0.75, 1 / 3])


def hard_batch(lm, n: int, device: str = "cpu"):
    site = Site("hidden_states", lm.n_layers)
    vocabulary = lm.embedding.weight.detach()
    tokens = torch.randint(0, 97, (n, SEQ), generator=torch.Generator().manual_seed(4)).to(device)
    init = torch.stack([random_token_prompt(RunId("hard_prompt", "text", t, 0), SEQ, vocabulary.cpu())
                        for t in range(n)]).to(device)
    return residual_function(lm, site), residuals_of_tokens(lm, site, tokens).to(device), init, vocabulary


def test_a_simulated_capture_of_the_hard_step_equals_the_eager_one(neox_lm, monkeypatch):
    """The captured path (warm-up, undo, replay with transformers' capture check on), simulated
    on the CPU: the same tokens and losses as the eager path, and the batch says it was captured."""
    from test_capture import Simulated
    from reachability import capture

    residual, targets, init, vocabulary = hard_batch(neox_lm, 4)
    method = Pez(lr=0.05, vocabulary=vocabulary)
    eager = optimize_batch(residual, targets, {"prompt": init}, method, steps=20)
    monkeypatch.setattr(capture, "backend_for", lambda device: Simulated())
    captured = optimize_batch(residual, targets, {"prompt": init}, method, steps=20, capture=True)
    np.testing.assert_array_equal(captured.tokens, eager.tokens)
    np.testing.assert_array_equal(captured.loss, eager.loss)
    assert captured.batches == [{"runs": 4, "mode": "captured", "reason": ""}]


@pytest.mark.gpu
def test_a_captured_hard_step_tracks_the_eager_one_on_a_gpu(gpu_lm):
    """Both make the same attention call now; a near-tie among tokens may still resolve apart
    after many steps, so the check is close agreement, not identity."""
    residual, targets, init, vocabulary = hard_batch(gpu_lm, 8, "cuda")
    method = Pez(lr=0.05, vocabulary=vocabulary)
    eager = optimize_batch(residual, targets, {"prompt": init}, method, steps=50, precision="fp32")
    captured = optimize_batch(residual, targets, {"prompt": init}, method, steps=50, precision="fp32", capture=True)
    assert captured.batches[0]["mode"] == "captured", captured.batches
    np.testing.assert_allclose(captured.loss[:, :10], eager.loss[:, :10], rtol=1e-4, atol=1e-7)
    assert (captured.tokens == eager.tokens).mean() >= 0.9


def test_the_table_shows_a_missing_projection_and_escapes_the_text():
    from reachability.hard_prompt import markdown_table

    pez = {"mse": 0.0, "cosine": 1.0, "relative_mse": 0.0, "position_match": 0.5, "token_overlap": 0.75,
           "text": "a|b\nc", "exact": False, "diverged": False}
    row = {"target_id": 3, "soft_mse": 1e-6, "soft_cosine": 0.99999, "projected_mse": None, "projected_cosine": None,
           "methods": {"pez": pez}}
    summary = {"n_targets": 1, "restarts": 1, "soft_median_mse": 1e-6, "projected_median_mse": None, "methods": {"pez": {
        "median_mse": 0.0, "median_relative_mse": 0.0, "exact_match_rate": 0.0, "position_match_mean": 0.5,
        "token_overlap_mean": 0.75, "n_diverged": 0}}}
    table = markdown_table([row], summary)
    assert "| 3 | 1e-06 (1.0000) | – (–) | 0 (1.0000) | 0.50 | `a\\|b⏎c` |" in table
    assert "its nearest-token projection –" in table and "token overlap 75%" in table


def test_a_hard_packs_tokens_reach_the_experiments_arrays(tmp_path):
    from reachability.results import collect_runs
    from reachability.storage import write_h5

    paths = []
    for restart in range(2):  # two packs, one restart each, of 2 targets
        path = tmp_path / f"r{restart}.h5"
        write_h5(path, {"loss": np.ones((2, 4)), "initial_mse": np.ones(2), "final_mse": np.ones(2),
                        "cosine": np.ones((2, 3)), "diverged": np.zeros(2, bool), "target_id": np.arange(2),
                        "target_mean_square": np.ones(2),
                        "condition": np.zeros(2, int), "restart": np.full(2, restart),
                        "tokens": np.array([[10 * restart, 1, 2], [10 * restart + 5, 6, 7]])}, {"conditions": ["text"]})
        paths.append(str(path))
    runs = collect_runs(paths, ["text"], n_targets=2, restarts=2, expect={})
    np.testing.assert_array_equal(runs["tokens"][0, :, :, 0], [[0, 10], [5, 15]])  # [target, restart]
    assert runs["tokens"].dtype == np.int64
    write_h5(tmp_path / "soft.h5", {"loss": np.ones((1, 4)), "initial_mse": np.ones(1), "final_mse": np.ones(1),
                                    "cosine": np.ones((1, 3)), "diverged": np.zeros(1, bool), "target_id": np.arange(1),
                                    "target_mean_square": np.ones(1),
                                    "condition": np.zeros(1, int), "restart": np.zeros(1, int)}, {"conditions": ["real"]})
    assert "tokens" not in collect_runs([str(tmp_path / "soft.h5")], ["real"], n_targets=1, restarts=1, expect={})


def test_the_nearest_token_search_runs_in_exact_float32_under_tf32(monkeypatch):
    """Near-ties among 50k tokens must not flip with the study's TF32 matmuls."""
    from reachability.precision import precision_mode

    vocabulary = torch.randn(50, 16)
    seen, argmax = [], torch.Tensor.argmax

    def spy(self, *args, **kwargs):
        seen.append(torch.get_float32_matmul_precision())
        return argmax(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "argmax", spy)
    with precision_mode("tf32", torch.device("cuda")):  # as a step on a GPU runs it
        project_to_tokens(torch.randn(2, SEQ, 16), vocabulary, torch.nn.functional.normalize(vocabulary, dim=-1))
        assert torch.get_float32_matmul_precision() == "high"  # and the step's own setting is back
    assert seen == ["highest"]


def test_hard_and_soft_sides_take_the_same_restarts_and_a_diverged_target_stays():
    from reachability.hard_prompt import compare

    hard = {"final_mse": np.array([[[0.0], [np.nan]]]), "cosine": np.ones((1, 2, 1, 3)),
            "tokens": np.array([[[[1, 2, 3]], [[4, 5, 6]]]]), "target_mean_square": np.full((1, 2, 1), 2.0)}
    soft = {"final_mse": np.array([[[0.5, 0.1], [0.4, 0.3]]]), "cosine": np.ones((1, 2, 2, 3))}
    projected = {"target_id": [0, 0, 1, 1], "restart": [0, 1, 0, 1], "mse": [0.9, 0.2, 0.8, 0.1],
                 "cosine": [0.5, 0.9, 0.6, 0.95]}
    rows, summary = compare(hard, ["pez"], soft, projected, np.array([[1, 2, 3], [7, 8, 9]]),
                            lambda ids: " ".join(map(str, ids)))
    assert [r["soft_mse"] for r in rows] == [0.5, 0.4]  # the first restart only: the hard side has one
    assert [r["projected_mse"] for r in rows] == [0.9, 0.8]
    pez = [r["methods"]["pez"] for r in rows]
    assert pez[0]["mse"] == 0.0 and pez[0]["exact"] and pez[0]["text"] == "1 2 3" and pez[0]["relative_mse"] == 0.0
    assert pez[1]["diverged"] and pez[1]["mse"] is None and pez[1]["text"] == "(every run diverged)"
    assert summary["methods"]["pez"]["n_diverged"] == 1 and summary["restarts"] == 1
    assert summary["methods"]["pez"]["median_mse"] is None  # half at 0, half diverged (the worst): the median is +inf


# GCG: greedy coordinate gradient, beside PEZ

def gcg_inputs(tokens: torch.Tensor, seeds) -> dict:
    return {"tokens": tokens, "seed": torch.tensor(seeds)}


def test_gcg_recovers_a_known_sequence_from_a_start_a_few_tokens_off(two_layer_lm):
    from reachability.methods import Gcg

    lm, site = two_layer_lm, Site("hidden_states", 2)
    vocabulary = lm.embedding.weight.detach()
    tokens = torch.tensor([[5, 17, 42, 8, 33, 60]])
    start = tokens.clone()
    start[0, 1], start[0, 4] = 3, 50  # two tokens wrong
    method = Gcg(vocabulary=vocabulary, top_k=64, candidates=256)
    result = optimize_batch(residual_function(lm, site), residuals_of_tokens(lm, site, tokens),
                            gcg_inputs(start, [7]), method, steps=25)
    np.testing.assert_array_equal(result.tokens, tokens.numpy())
    assert result.final_mse[0] < 1e-10 and result.loss[0, 0] > 1e-3


def test_a_gcg_step_whose_one_candidate_changes_nothing_leaves_the_run_unchanged(neox_lm, monkeypatch):
    from reachability import methods

    residual, targets, _, vocabulary = hard_batch(neox_lm, 2)
    start = torch.randint(0, 97, (2, SEQ), generator=torch.Generator().manual_seed(9))
    monkeypatch.setattr(methods, "gcg_candidates", lambda ids, top, positions, choices: ids[:, None, :].clone())
    result = optimize_batch(residual, targets, gcg_inputs(start, [1, 2]), methods.Gcg(vocabulary, candidates=1), steps=1)
    np.testing.assert_array_equal(result.tokens, start.numpy())
    assert_same_losses(result.final_mse, result.loss[:, 0], mean_square(targets), rtol=1e-5)  # the start's own MSE


def test_a_gcg_run_alone_equals_the_same_run_inside_a_batch(neox_lm):
    from reachability.methods import Gcg

    residual, targets, _, vocabulary = hard_batch(neox_lm, 4)
    start = torch.randint(0, 97, (4, SEQ), generator=torch.Generator().manual_seed(3))
    method = Gcg(vocabulary=vocabulary, top_k=16, candidates=24, candidate_batch=40)  # several candidate forwards
    batch = optimize_batch(residual, targets, gcg_inputs(start, [11, 12, 13, 14]), method, steps=6)
    alone = optimize_batch(residual, targets[2:3], gcg_inputs(start[2:3], [13]), method, steps=6)
    np.testing.assert_array_equal(batch.tokens[2], alone.tokens[0])
    assert_same_losses(batch.loss[2], alone.loss[0], mean_square(targets[2]), rtol=1e-5)
    assert batch.batches[0]["mode"] == "eager"


def test_the_candidate_forward_equals_the_models_own_forward(neox_lm):
    from reachability.methods import candidate_mse
    from reachability.objectives import mse_of

    residual, targets, _, vocabulary = hard_batch(neox_lm, 3)
    candidates = torch.randint(0, 97, (3, 7, SEQ), generator=torch.Generator().manual_seed(5))
    found = candidate_mse(mse_of(residual, targets, "fp32"), vocabulary, candidates, [5])  # 21 in forwards of <= 5
    own = torch.stack([((residual(neox_lm.embed(candidates[b])) - targets[b]) ** 2).mean(dim=(1, 2)) for b in range(3)])
    torch.testing.assert_close(found, own.detach(), rtol=1e-5, atol=1e-7)


def test_gcg_candidates_change_one_position_to_one_of_its_top_k():
    from reachability.methods import gcg_candidates

    ids = torch.randint(0, 50, (2, SEQ), generator=torch.Generator().manual_seed(0))
    top = torch.randint(0, 50, (2, SEQ, 4), generator=torch.Generator().manual_seed(1))
    positions = torch.randint(0, SEQ, (2, 9), generator=torch.Generator().manual_seed(2))
    choices = torch.randint(0, 4, (2, 9), generator=torch.Generator().manual_seed(3))
    out = gcg_candidates(ids, top, positions, choices)
    assert out.shape == (2, 9, SEQ)
    for b in range(2):
        for c in range(9):
            p = positions[b, c]
            assert out[b, c, p] == top[b, p, choices[b, c]]
            assert torch.equal(torch.cat([out[b, c, :p], out[b, c, p + 1:]]), torch.cat([ids[b, :p], ids[b, p + 1:]]))


def test_gcg_candidates_are_nanogcgs_for_the_same_random_draws():
    """nanoGCG (the reference implementation, PyPI) samples one prompt's candidates from the
    global RNG; ours takes each run's draws from its own generator. Given nanoGCG's own draws,
    ours are exactly its candidates."""
    nanogcg = pytest.importorskip("nanogcg.gcg")
    from reachability.methods import gcg_candidates

    ids, grad, width, topk = torch.randint(0, 300, (SEQ,)), torch.randn(SEQ, 300), 64, 32
    torch.manual_seed(0)
    theirs = nanogcg.sample_ids_from_grad(ids.clone(), grad.clone(), width, topk, n_replace=1, not_allowed_ids=None)
    torch.manual_seed(0)  # the same draws, as nanoGCG makes them
    positions = torch.argsort(torch.rand((width, SEQ)))[..., :1]
    choices = torch.randint(0, topk, (width, 1, 1))
    ours = gcg_candidates(ids[None], (-grad).topk(topk, dim=1).indices[None], positions[None, :, 0], choices[None, :, 0, 0])
    torch.testing.assert_close(ours[0], theirs, rtol=0, atol=0)


def test_the_runs_of_two_methods_share_one_pack():
    """A hard-prompt pack holds PEZ runs (Adam's state, the study's steps) and GCG runs (tokens
    only, their own steps): one result, the missing entries filled, the shorter curves padded."""
    from reachability.optimize import BatchResult

    pez = BatchResult({"loss": np.ones((2, 5)), "final_mse": np.ones(2), "prompt": np.ones((2, 3, 4)),
                       "adam_step": np.full(2, 5), "tokens": np.zeros((2, 3), int)}, [{"runs": 2}])
    gcg = BatchResult({"loss": np.full((1, 2), 0.5), "final_mse": np.zeros(1), "tokens": np.ones((1, 3), int)},
                      [{"runs": 1}])
    both = BatchResult.concatenate([pez, gcg])
    assert both.loss.shape == (3, 5) and np.isnan(both.loss[2, 2:]).all() and both.loss[2, 1] == 0.5
    assert np.isnan(both.prompt[2]).all() and both.adam_step.tolist() == [5, 5, -1]
    assert both.tokens.tolist() == [[0, 0, 0], [0, 0, 0], [1, 1, 1]] and len(both.batches) == 2


# GCG's candidates on the cached prefix: the same numbers as the full recomputation, half the work

def gcg_state(lm, n: int, seq_len: int, seed: int = 0):
    """A batch's residual function, targets, tokens and loss at a site of `lm`."""
    from reachability.objectives import mse_of

    site = Site("hidden_states", lm.n_layers)
    generator = torch.Generator().manual_seed(seed)
    vocab = lm.config.vocab_size
    residual = residual_function(lm, site)
    targets = residuals_of_tokens(lm, site, torch.randint(0, vocab, (n, seq_len), generator=generator))
    tokens = torch.randint(0, vocab, (n, seq_len), generator=generator)
    return residual, targets, tokens, mse_of(residual, targets, "fp32")


def test_candidates_on_the_cached_prefix_equal_the_full_recomputation(tiny_lm):
    """Every family: each candidate's MSE computed from the position it changes on, on the keys
    and values of its run's own forward, equals its full forward's; the best candidates are the
    same; a forward that records a prefix returns what a plain one does."""
    from reachability.forward import Prefix
    from reachability.methods import candidate_mse, gcg_candidates, gcg_choices, gcg_positions

    residual, targets, tokens, loss = gcg_state(tiny_lm, 3, 9)
    vocabulary = tiny_lm.embedding.weight.detach()
    positions = gcg_positions(40, 9)
    top = torch.randint(0, len(vocabulary), (3, 9, 8), generator=torch.Generator().manual_seed(1))
    options = gcg_candidates(tokens, top, torch.tensor(positions).expand(3, -1),
                             gcg_choices(torch.tensor([5, 6, 7]), torch.zeros(1, dtype=torch.long), 40, 8))
    prefix = Prefix()
    recorded = loss(vocabulary[tokens], None, prefix)
    assert_same_losses(recorded, loss(vocabulary[tokens]), mean_square(targets), rtol=1e-5)
    cached = candidate_mse(loss, vocabulary, options, [16], prefix, positions)  # several chunks per position too
    full = candidate_mse(loss, vocabulary, options, [16])
    assert_same_losses(cached.numpy(), full.numpy(), mean_square(targets), rtol=1e-5)
    np.testing.assert_array_equal(cached.argmin(dim=1), full.argmin(dim=1))
    assert (options != tokens[:, None]).sum(-1).le(1).all() and len(set(positions)) == 9  # one change, every position


def full_recomputation(monkeypatch):
    """GCG as it was: every candidate's whole sequence forward, from position 0."""
    from reachability import methods

    whole = methods.candidate_mse
    monkeypatch.setattr(methods, "candidate_mse", lambda loss, vocabulary, candidates, chunk, *cached: whole(
        loss, vocabulary, candidates, chunk))


def test_a_gcg_run_on_the_cached_prefix_chooses_the_tokens_full_recomputation_chooses(tiny_lm, monkeypatch):
    from reachability.methods import Gcg

    residual, targets, tokens, _ = gcg_state(tiny_lm, 2, 8, seed=3)
    method = Gcg(vocabulary=tiny_lm.embedding.weight.detach(), top_k=16, candidates=24, candidate_batch=20)
    cached = optimize_batch(residual, targets, gcg_inputs(tokens, [21, 22]), method, steps=5)
    full_recomputation(monkeypatch)
    full = optimize_batch(residual, targets, gcg_inputs(tokens, [21, 22]), method, steps=5)
    np.testing.assert_array_equal(cached.tokens, full.tokens)
    assert_same_losses(cached.loss, full.loss, mean_square(targets), rtol=1e-5)
    assert_same_losses(cached.final_mse, full.final_mse, mean_square(targets), rtol=1e-5)
    assert (cached.tokens != tokens.numpy()).any()  # the search moved


def test_a_gcg_step_costs_at_most_0_6_of_the_full_recomputations_flops(neox_lm, monkeypatch):
    """The paper's search (512 candidates, 20 positions): torch's FLOP counter over one step."""
    from torch.utils.flop_counter import FlopCounterMode

    from reachability.methods import Gcg

    residual, targets, tokens, loss = gcg_state(neox_lm, 2, 20)
    method = Gcg(vocabulary=neox_lm.embedding.weight.detach(), top_k=64, candidates=512)

    def flops() -> int:
        program = method.program(gcg_inputs(tokens, [1, 2]), loss, capturable=False)
        with FlopCounterMode(display=False) as counter:
            program.step()
        return counter.get_total_flops()

    cached = flops()
    full_recomputation(monkeypatch)
    assert cached <= 0.6 * flops()


def test_gcg_draws_are_each_runs_own_cover_the_top_k_and_change_every_step():
    from reachability.methods import gcg_choices

    seeds, step = torch.tensor([3, 2**62 + 5, 7]), torch.zeros(1, dtype=torch.long)
    draws = gcg_choices(seeds, step, 4096, 16)
    np.testing.assert_array_equal(draws[1:2], gcg_choices(seeds[1:2], step, 4096, 16))  # alone as in a batch
    assert draws.min() == 0 and draws.max() == 15
    counts = torch.bincount(draws.flatten(), minlength=16)
    assert counts.min() > 0.8 * counts.float().mean()  # about uniform over the top-k
    assert (gcg_choices(seeds, step + 1, 4096, 16) != draws).float().mean() > 0.8
    assert (draws[0] != draws[2]).float().mean() > 0.8


def test_a_simulated_capture_of_the_gcg_step_equals_the_eager_one(neox_lm, monkeypatch):
    """The whole GCG step on the device, no host read: captured (simulated), it replays the
    same draws as the eager step and says it was captured."""
    from test_capture import Simulated
    from reachability import capture
    from reachability.methods import Gcg

    residual, targets, tokens, _ = gcg_state(neox_lm, 3, 8, seed=4)
    method = Gcg(vocabulary=neox_lm.embedding.weight.detach(), top_k=16, candidates=24)
    eager = optimize_batch(residual, targets, gcg_inputs(tokens, [1, 2, 3]), method, steps=8)
    monkeypatch.setattr(capture, "backend_for", lambda device: Simulated())
    captured = optimize_batch(residual, targets, gcg_inputs(tokens, [1, 2, 3]), method, steps=8, capture=True)
    np.testing.assert_array_equal(captured.tokens, eager.tokens)
    np.testing.assert_array_equal(captured.loss, eager.loss)
    assert captured.batches == [{"runs": 3, "mode": "captured", "reason": ""}]


@pytest.mark.gpu
def test_a_captured_gcg_step_tracks_the_eager_one_on_a_gpu(gpu_lm):
    """The whole GCG step on a real GPU — the one-hot gradient, the draws on the device, the
    candidates on the cached keys and values — runs captured and chooses what the eager step
    chooses (a near-tie between candidates may resolve apart after some steps)."""
    from reachability.methods import Gcg

    residual, targets, tokens, _ = gcg_state(gpu_lm, 4, 8, seed=4)
    method = Gcg(vocabulary=gpu_lm.embedding.weight.detach(), top_k=16, candidates=24)
    inputs = gcg_inputs(tokens, [1, 2, 3, 4])
    eager = optimize_batch(residual, targets.cuda(), inputs, method, steps=10)
    captured = optimize_batch(residual, targets.cuda(), inputs, method, steps=10, capture=True)
    assert captured.batches[0]["mode"] == "captured", captured.batches
    np.testing.assert_allclose(captured.loss[:, :3], eager.loss[:, :3], rtol=1e-4, atol=1e-7)
    assert (captured.tokens == eager.tokens).mean() >= 0.9


def test_packs_of_other_step_counts_and_arrays_pad_to_the_widest(tmp_path):
    """One pack of an inversion run (4 steps, tokens) after one of a soft run (6 steps, none): the
    loss is as wide as the longer, the shorter padded with NaN; tokens -1 where a run has none."""
    from reachability.results import collect_runs
    from reachability.storage import write_h5

    common = {"initial_mse": np.ones(1), "final_mse": np.ones(1), "cosine": np.ones((1, 3)), "diverged": np.zeros(1, bool),
              "target_id": np.zeros(1, int), "target_mean_square": np.ones(1), "restart": np.zeros(1, int)}
    write_h5(tmp_path / "a.h5", {**common, "loss": np.full((1, 6), 2.0), "condition": np.zeros(1, int)},
             {"conditions": ["real", "real/inversion"]})
    write_h5(tmp_path / "b.h5", {**common, "loss": np.full((1, 4), 3.0), "condition": np.ones(1, int),
                                 "tokens": np.array([[4, 5, 6]])}, {"conditions": ["real", "real/inversion"]})
    for order in (["a.h5", "b.h5"], ["b.h5", "a.h5"]):  # the wider pack first, then last (the arrays grow)
        runs = collect_runs([str(tmp_path / name) for name in order], ["real", "real/inversion"], 1, 1, expect={})
        np.testing.assert_array_equal(runs["loss"][:, 0, 0], [[2.0] * 6, [3.0] * 4 + [np.nan] * 2])
        np.testing.assert_array_equal(runs["tokens"][:, 0, 0], [[-1, -1, -1], [4, 5, 6]])
        assert runs["final_mse"].shape == (2, 1, 1) and (runs["final_mse"] == 1).all()
