import numpy as np
import pytest
import torch

from reachability.perturbation import epsilon_of_error, kl_vs_epsilon, predicted_kl, rms, unit_directions
from reachability.sites import Site


def test_kl_grows_with_epsilon_and_is_zero_at_zero(tiny_lm):
    tokens = torch.randint(0, 97, (6, 10), generator=torch.Generator().manual_seed(1))
    for kind in ("isotropic", "toward_real"):
        kl = kl_vs_epsilon(tiny_lm, Site("block_output", 2), tokens, 4, [0.0, 0.5, 2.0, 8.0], 3, kind, seed=0)
        assert kl[0] == pytest.approx(0.0, abs=1e-6)
        assert kl[1] < kl[2] < kl[3] and kl[3] > 1e-5, kl


def test_directions_are_unit_and_toward_other_sequences():
    h = torch.randn(5, 8)
    g = torch.Generator().manual_seed(0)
    for kind in ("isotropic", "toward_real"):
        v = unit_directions(h, kind, 7, g)
        assert v.shape == (5, 7, 8) and torch.allclose(v.norm(dim=-1), torch.ones(5, 7), atol=1e-5)
    v = unit_directions(h, "toward_real", 7, g)
    for i in range(5):  # every direction points from h_i to some other h_j
        candidates = torch.nn.functional.normalize(h - h[i], dim=-1)
        sims = v[i] @ candidates.T
        assert (sims.max(dim=-1).values > 0.9999).all() and (sims[:, i].abs() < 1e-6).all()
    with pytest.raises(ValueError):
        unit_directions(h, "sideways", 1, g)


def test_epsilon_of_an_error_and_the_curves_prediction():
    target = np.full((2, 4), 2.0)  # RMS 2 at each position
    achieved = target + np.array([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    assert epsilon_of_error(achieved, target).tolist() == [0.5, 0.0]
    assert rms(torch.full((3,), 2.0)) == 2.0
    assert predicted_kl([0, 1, 2], np.array([0.0, 0.1, 0.4]), np.array([0.5, 1.5, 9.0])).tolist() == [0.05, 0.25, 0.4]
