import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae.losses import active_units, gaussian_kl, kl_weight, kl_with_free_bits, reconstruction_nll


def test_kl_matches_closed_form_of_torch_distributions():
    mu, logvar = torch.randn(7, 3), torch.randn(7, 3)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0))
    assert torch.allclose(gaussian_kl(mu, logvar), expected, atol=1e-5)


def test_kl_is_zero_only_at_the_prior():
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max() == 0
    assert (gaussian_kl(torch.full((2, 4), 0.1), torch.zeros(2, 4)) > 0).all()


def test_reconstruction_nll_is_half_squared_error_at_unit_variance():
    x, x_hat = torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 0.0]])
    assert reconstruction_nll(x, x_hat, torch.zeros(2)).item() == pytest.approx(2.5)
    # a larger variance lowers the squared-error part and adds its log-normalizer
    assert reconstruction_nll(x, x_hat, torch.ones(2)).item() == pytest.approx(0.5 * (5 / torch.e + 2))


def test_annealing_schedule_is_linear_then_flat():
    assert [kl_weight(e, 2.0, 4) for e in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]
    assert kl_weight(0, 0.7, 0) == 0.7


def test_free_bits_floors_each_dimension():
    kl = torch.tensor([[0.0, 1.0], [0.0, 3.0]])  # batch means 0 and 2
    assert kl_with_free_bits(kl, 0.0).item() == pytest.approx(2.0)
    assert kl_with_free_bits(kl, 0.5).item() == pytest.approx(2.5)


def test_active_units_counts_varying_dimensions():
    mu = torch.stack([torch.linspace(-1, 1, 50), torch.full((50,), 0.3), 0.001 * torch.randn(50)], dim=1)
    assert active_units(mu) == 1
