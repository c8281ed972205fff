"""Anomaly score: reconstruction error and a latent term, each normalized on held-out normal rows, then mixed.

`Scorer` is an `nn.Module` holding everything that turns raw rows into scores (scaler, weights,
normalization statistics, mixing weight, threshold), so an exported graph scores exactly like the detector.

Example:
    >>> scorer = Scorer(vae, preprocessor, ScoreConfig())
    >>> scorer.fit_normalization(torch.as_tensor(x_val_raw))
    >>> scores = scorer(torch.as_tensor(x_raw))      # (n_samples,), higher = more anomalous
"""

from __future__ import annotations

import copy
from typing import TypeVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from vae.config import ScoreConfig
from vae.losses import gaussian_kl
from vae.model import VAE
from vae.preprocessing import Preprocessor

IQR_TO_STD = 1.3489795  # IQR of a standard normal: robust spreads are on the std scale
_TINY = 1e-12


M = TypeVar("M", bound=nn.Module)


def _frozen_copy(module: M) -> M:
    clone = copy.deepcopy(module).cpu().float().eval()
    clone.requires_grad_(False)
    return clone


def robust_center_spread(values: torch.Tensor, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Center and spread of each column: median and IQR/1.349 ('robust') or mean and std ('zscore')."""
    if method == "robust":
        q = torch.quantile(values.double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64), dim=0)
        center, spread = q[1], (q[2] - q[0]) / IQR_TO_STD
    else:
        center, spread = values.double().mean(dim=0), values.double().std(dim=0)
    spread = torch.where(spread > _TINY, spread, torch.ones_like(spread))
    return center.float(), spread.float()


def mix_terms(r: torch.Tensor, z: torch.Tensor, alpha: torch.Tensor | float, combine: str) -> torch.Tensor:
    """Alpha * R + (1 - alpha) * L, or the weighted geometric mean R**alpha * L**(1 - alpha)."""
    if combine == "product":
        return r.clamp_min(_TINY).pow(alpha) * z.clamp_min(_TINY).pow(1 - alpha)
    return alpha * r + (1 - alpha) * z


class Scorer(nn.Module):
    """Raw rows in, anomaly scores out. Built from a trained VAE and its preprocessor."""

    encoder: nn.Sequential
    decoder: nn.Sequential
    recon_weight: torch.Tensor
    latent_center: torch.Tensor
    center: torch.Tensor
    spread: torch.Tensor
    alpha: torch.Tensor
    threshold: torch.Tensor

    def __init__(self, vae: VAE, pre: Preprocessor, cfg: ScoreConfig) -> None:
        super().__init__()
        self.latent_term = cfg.latent_term
        self.normalization = cfg.normalization
        self.transform = cfg.transform
        self.combine = cfg.combine
        mean, scale = torch.as_tensor(pre.mean), torch.as_tensor(pre.scale)
        self.encoder = _frozen_copy(vae.encoder)
        self.mu_head = _frozen_copy(vae.mu)
        self.logvar_head = _frozen_copy(vae.logvar)
        self.decoder = _frozen_copy(vae.decoder)
        # Fold the scaler into the first layer and its inverse into the last, so raw rows need no
        # separate standardization pass: W' = W / s, b' = b - W' m in; W'' = diag(s) W, b'' = s b + m out.
        first, last = cast(nn.Linear, self.encoder[0]), cast(nn.Linear, self.decoder[-1])
        first.weight /= scale
        first.bias.sub_(first.weight @ mean)
        last.weight *= scale[:, None]
        last.bias.mul_(scale).add_(mean)
        sigma2 = vae.log_sigma2.detach().cpu().float().exp()
        self.register_buffer("recon_weight", 0.5 / (sigma2 * scale.pow(2)))
        self.register_buffer("latent_center", torch.zeros(()))
        self.register_buffer("center", torch.zeros(2))
        self.register_buffer("spread", torch.ones(2))
        self.register_buffer("alpha", torch.tensor(0.5))
        self.register_buffer("threshold", torch.tensor(float("nan")))

    def raw_components(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction NLL at the posterior mean and the raw latent term, each (n_samples,)."""
        h = self.encoder(x)
        mu = self.mu_head(h)
        diff = x - self.decoder(mu)
        recon = (diff * diff) @ self.recon_weight
        if self.latent_term == "kl":
            latent = gaussian_kl(mu, self.logvar_head(h)).sum(dim=1)
        else:
            latent = 0.5 * (mu * mu).sum(dim=1)
            if self.latent_term == "typicality":
                latent = (torch.log(latent + _TINY) - self.latent_center).abs()
        return recon, latent

    def normalize(self, recon: torch.Tensor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalize each raw term with the held-out statistics, then apply the configured transform."""
        r = (recon - self.center[0]) / self.spread[0]
        z = (latent - self.center[1]) / self.spread[1]
        if self.transform == "softplus":
            return F.softplus(r), F.softplus(z)
        if self.transform == "sigmoid":
            return torch.sigmoid(r), torch.sigmoid(z)
        return r, z

    def mix(self, r: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Combine normalized terms with this scorer's alpha."""
        return mix_terms(r, z, self.alpha, self.combine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Anomaly scores of raw rows (n_samples, n_features) -> (n_samples,)."""
        return self.mix(*self.normalize(*self.raw_components(x)))

    @torch.no_grad()
    def fit_normalization(self, x_val: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Learn the latent center and each term's center/spread on held-out normal rows.

        Returns:
            The normalized (R, L) terms of `x_val`, ready for choosing alpha.
        """
        if self.latent_term == "typicality":
            h = self.encoder(x_val)
            mu = self.mu_head(h)
            self.latent_center.copy_(torch.log(0.5 * (mu * mu).sum(dim=1) + _TINY).median())
        recon, latent = self.raw_components(x_val)
        center, spread = robust_center_spread(torch.stack([recon, latent], dim=1), self.normalization)
        self.center.copy_(center)
        self.spread.copy_(spread)
        return self.normalize(recon, latent)
