"""The VAE itself: an MLP encoder to a diagonal Gaussian posterior and an MLP decoder. Math only, no I/O.

Example:
    >>> vae = VAE(n_features=20, hidden_dims=(64, 32), latent_dim=8)
    >>> x_hat, mu, logvar = vae(torch.zeros(4, 20))
"""

from __future__ import annotations

import itertools

import torch
from torch import nn


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers with ReLU between them and after the last (a hidden stack)."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Gaussian-latent VAE with a Gaussian likelihood whose per-feature log-variance is optionally learnt."""

    LOGVAR_BOUNDS = (-12.0, 8.0)

    def __init__(
        self, n_features: int, hidden_dims: tuple[int, ...], latent_dim: int, learn_variance: bool = False
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.hidden_dims = tuple(hidden_dims)
        self.latent_dim = latent_dim
        self.encoder = mlp((n_features, *hidden_dims))
        self.mu = nn.Linear(hidden_dims[-1], latent_dim)
        self.logvar = nn.Linear(hidden_dims[-1], latent_dim)
        self.decoder = nn.Sequential(
            *mlp((latent_dim, *reversed(hidden_dims))), nn.Linear(hidden_dims[0], n_features)
        )
        # log sigma^2 of the likelihood per feature; frozen at 0 (plain MSE) unless learn_variance.
        self.log_sigma2 = nn.Parameter(torch.zeros(n_features), requires_grad=learn_variance)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each (n_samples, latent_dim)."""
        h = self.encoder(x)
        return self.mu(h), self.logvar(h).clamp(*self.LOGVAR_BOUNDS)

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw z = mu + sigma * eps, differentiable in mu and logvar."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Mean of the likelihood, (n_samples, n_features) in standardized units."""
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled reconstruction, posterior mean and log-variance."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar, generator)), mu, logvar
