"""The VAE itself: an encoder to a diagonal Gaussian posterior and a decoder, as an MLP or a temporal CNN.

`encoder="mlp"` sees a sample as one flat vector (a row, or a window flattened step by step).
`encoder="conv"` sees a window as a sequence: 1-D convolutions run over its steps with the channels as
convolution channels, so a pattern is learnt once wherever it sits in the window. Both take and return
flat time-major samples, so training, scoring and export treat them alike. Math only, no I/O.

Example:
    >>> vae = VAE(n_features=20, hidden_dims=(64, 32), latent_dim=8)
    >>> x_hat, mu, logvar = vae(torch.zeros(4, 20))
    >>> conv = VAE(n_features=16 * 8, hidden_dims=(32, 16), latent_dim=8, encoder="conv", window=16)
"""

from __future__ import annotations

import itertools
from typing import Literal

import torch
from torch import nn

from vae.config import DetectorConfig

Encoder = Literal["mlp", "conv"]
KERNEL = 5  # steps each convolution sees; 'same' padding keeps the window length


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear layers with ReLU between them and after the last (a hidden stack)."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers)


def convs(channels: tuple[int, ...], last_relu: bool = True) -> list[nn.Module]:
    """1-D convolutions over time ('same' padding) with ReLU between them, and after the last if asked."""
    layers: list[nn.Module] = []
    for n_in, n_out in itertools.pairwise(channels):
        layers += [nn.Conv1d(n_in, n_out, KERNEL, padding=KERNEL // 2), nn.ReLU()]
    return layers if last_relu else layers[:-1]


class StepsToChannels(nn.Module):
    """Flat time-major windows (n, window * channels) -> (n, channels, window), as Conv1d takes them."""

    def __init__(self, window: int, n_channels: int) -> None:
        super().__init__()
        self.window, self.n_channels = window, n_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reshape and move the channels ahead of the steps."""
        return x.reshape(-1, self.window, self.n_channels).transpose(1, 2)


class ChannelsToSteps(nn.Module):
    """(n, channels, window) -> flat time-major windows (n, window * channels): `StepsToChannels` undone."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Move the steps ahead of the channels and flatten."""
        return x.transpose(1, 2).flatten(1)


def encoder_stack(
    kind: Encoder, n_features: int, hidden_dims: tuple[int, ...], window: int
) -> tuple[nn.Sequential, int]:
    """Flat samples -> hidden features, and how many of them the latent heads take."""
    if kind == "mlp":
        return mlp((n_features, *hidden_dims)), hidden_dims[-1]
    n_channels = n_features // window
    layers = [StepsToChannels(window, n_channels), *convs((n_channels, *hidden_dims)), nn.Flatten()]
    return nn.Sequential(*layers), hidden_dims[-1] * window


def decoder_stack(
    kind: Encoder, n_features: int, hidden_dims: tuple[int, ...], latent_dim: int, window: int
) -> nn.Sequential:
    """Latent codes -> flat samples, mirroring `encoder_stack`."""
    if kind == "mlp":
        return nn.Sequential(
            *mlp((latent_dim, *reversed(hidden_dims))), nn.Linear(hidden_dims[0], n_features)
        )
    return nn.Sequential(
        nn.Linear(latent_dim, hidden_dims[-1] * window),
        nn.ReLU(),
        nn.Unflatten(1, (hidden_dims[-1], window)),
        *convs((*reversed(hidden_dims), n_features // window), last_relu=False),
        ChannelsToSteps(),
    )


class VAE(nn.Module):
    """Gaussian-latent VAE with a Gaussian likelihood whose per-feature log-variance is optionally learnt.

    Args:
        n_features: inputs per sample (window * channels for windows).
        hidden_dims: MLP widths, or ('conv') convolution channels; the decoder mirrors them.
        latent_dim: size of z.
        learn_variance: learn the likelihood's per-feature variance (else plain MSE).
        encoder: 'mlp' or 'conv' (needs window > 1).
        window: steps per sample; only 'conv' uses it.
    """

    LOGVAR_BOUNDS = (-12.0, 8.0)

    def __init__(
        self,
        n_features: int,
        hidden_dims: tuple[int, ...],
        latent_dim: int,
        learn_variance: bool = False,
        encoder: Encoder = "mlp",
        window: int = 1,
    ) -> None:
        super().__init__()
        self.n_features = n_features
        self.hidden_dims = tuple(hidden_dims)
        self.latent_dim = latent_dim
        self.kind: Encoder = encoder
        # Registration order is creation order, which draws the initial weights: encoder, heads, decoder.
        self.encoder, flat = encoder_stack(encoder, n_features, self.hidden_dims, window)
        self.mu = nn.Linear(flat, latent_dim)
        self.logvar = nn.Linear(flat, latent_dim)
        self.decoder = decoder_stack(encoder, n_features, self.hidden_dims, latent_dim, window)
        # log sigma^2 of the likelihood per feature; frozen at 0 (plain MSE) unless learn_variance.
        self.log_sigma2 = nn.Parameter(torch.zeros(n_features), requires_grad=learn_variance)

    @classmethod
    def of(
        cls, config: DetectorConfig, n_features: int, hidden_dims: tuple[int, ...], latent_dim: int
    ) -> VAE:
        """The untrained network `config` describes, for `n_features` inputs and the resolved sizes."""
        return cls(
            n_features,
            hidden_dims,
            latent_dim,
            learn_variance=config.model.reconstruction == "gaussian_nll",
            encoder=config.model.encoder,
            window=config.window,
        )

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
