"""ELBO terms and schedules: Gaussian reconstruction NLL, closed-form KL, KL annealing and free bits.

Example:
    >>> kl = gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 3))   # posterior == prior -> 0
    >>> float(kl.sum())
    0.0
"""

from __future__ import annotations

import torch


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample and dimension, shape (n_samples, latent_dim)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def reconstruction_nll(x: torch.Tensor, x_hat: torch.Tensor, log_sigma2: torch.Tensor) -> torch.Tensor:
    """Gaussian NLL per sample, without the constant 0.5*log(2*pi) terms; shape (n_samples,).

    With log_sigma2 == 0 this is half the summed squared error (the MSE objective).
    """
    return 0.5 * ((x - x_hat).pow(2) * torch.exp(-log_sigma2) + log_sigma2).sum(dim=1)


def kl_with_free_bits(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Batch-mean KL summed over dimensions, each floored at `free_bits` nats (Kingma et al. 2016)."""
    per_dim = kl_per_dim.mean(dim=0)
    if free_bits > 0:
        per_dim = per_dim.clamp(min=free_bits)
    return per_dim.sum()


def kl_weight(epoch: int, beta: float, warmup_epochs: int) -> float:
    """Linear KL annealing: 0 at epoch 0, reaching `beta` after `warmup_epochs` epochs."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, epoch / warmup_epochs)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across rows (Burda et al. 2016); low = collapse."""
    if mu.shape[0] < 2:
        return 0
    return int((mu.var(dim=0) > threshold).sum())
