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
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from vae.calibration import IQR_TO_STD
from vae.config import ScoreConfig
from vae.losses import gaussian_kl
from vae.model import VAE
from vae.preprocessing import Preprocessor

_TINY = 1e-12


M = TypeVar("M", bound=nn.Module)


def _affine(h: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    assert isinstance(layer, nn.Linear)
    return F.linear(h, layer.weight, layer.bias)


def _stack_heads(mu: nn.Linear, logvar: nn.Linear) -> nn.Linear:
    """One linear layer computing [mu, logvar]: one matmul instead of two."""
    head = nn.Linear(mu.in_features, mu.out_features * 2)
    with torch.no_grad():
        head.weight.copy_(torch.cat([mu.weight, logvar.weight]))
        head.bias.copy_(torch.cat([mu.bias, logvar.bias]))
    return _frozen_copy(head)


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


class FoldedMLP(nn.Module):
    """Linear layers applied with functional calls, ReLU after every layer but (optionally) the last."""

    def __init__(self, layers: list[nn.Linear], relu_last: bool) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.relu_last = relu_last

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the stack."""
        *hidden, last = self.layers  # unpacking, not slicing: a ModuleList slice builds a new module
        for layer in hidden:
            x = torch.relu_(_affine(x, layer))
        x = _affine(x, last)
        return torch.relu_(x) if self.relu_last else x


class _Scaled(nn.Module):
    """A network beside the scaler's mean and scale, kept as buffers so that exports carry them."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, network: nn.Module, pre: Preprocessor) -> None:
        super().__init__()
        self.network = network
        self.register_buffer("mean", torch.as_tensor(pre.mean).clone())
        self.register_buffer("scale", torch.as_tensor(pre.scale).clone())


class StandardizedInput(_Scaled):
    """Raw samples in: standardized, then given to the network (an encoder)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(x - mean) / scale through the network."""
        return self.network((x - self.mean) / self.scale)


class RawOutput(_Scaled):
    """The network's standardized output, returned in raw units (a decoder)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network's output * scale + mean."""
        return self.network(x) * self.scale + self.mean


def _mlp_paths(vae: VAE, pre: Preprocessor) -> tuple[nn.Module, nn.Module]:
    """Raw rows -> hidden and latent -> raw rows for an MLP, with the scaler folded into the end layers.

    W' = W / s, b' = b - W' m in; W'' = diag(s) W, b'' = s b + m out: no separate standardization pass.
    """
    encoder, decoder = (
        [m for m in _frozen_copy(stack).modules() if isinstance(m, nn.Linear)]
        for stack in (vae.encoder, vae.decoder)
    )
    mean, scale = torch.as_tensor(pre.mean), torch.as_tensor(pre.scale)
    first, last = encoder[0], decoder[-1]
    first.weight /= scale
    first.bias.sub_(first.weight @ mean)
    last.weight *= scale[:, None]
    last.bias.mul_(scale).add_(mean)
    return FoldedMLP(encoder, relu_last=True), FoldedMLP(decoder, relu_last=False)


class Scorer(nn.Module):
    """Raw rows in, anomaly scores out. Built from a trained VAE and its preprocessor.

    An MLP's layers are applied with functional calls and the scaler folded into them: on a CPU the
    per-call overhead of nested modules costs more than the small matmuls themselves. A temporal (conv)
    network cannot fold the scaler (its padding is zero in standardized units), so it standardizes first.
    """

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
        self.latent_dim = vae.latent_dim
        if vae.kind == "mlp":
            self.encoder, self.decoder = _mlp_paths(vae, pre)
        else:
            self.encoder = StandardizedInput(_frozen_copy(vae.encoder), pre)
            self.decoder = RawOutput(_frozen_copy(vae.decoder), pre)
        self.head = _stack_heads(vae.mu, vae.logvar) if cfg.latent_term == "kl" else _frozen_copy(vae.mu)
        scale = torch.as_tensor(pre.scale)
        sigma2 = vae.log_sigma2.detach().cpu().float().exp()
        self.register_buffer("recon_weight", 0.5 / (sigma2 * scale.pow(2)))
        self.register_buffer("latent_center", torch.zeros(()))
        self.register_buffer("center", torch.zeros(2))
        self.register_buffer("spread", torch.ones(2))
        self.register_buffer("alpha", torch.tensor(0.5))
        self.register_buffer("threshold", torch.tensor(float("nan")))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Posterior mean and (for the 'kl' latent term only) log-variance of raw rows."""
        out = _affine(self.encoder(x), self.head)
        if self.latent_term != "kl":
            return out, None
        mu, logvar = out.split(self.latent_dim, dim=1)
        return mu, logvar.clamp(*VAE.LOGVAR_BOUNDS)

    def decode(self, mu: torch.Tensor) -> torch.Tensor:
        """Reconstruction in raw units."""
        return self.decoder(mu)

    def raw_components(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruction NLL at the posterior mean and the raw latent term, each (n_samples,)."""
        mu, logvar = self.encode(x)
        diff = x - self.decode(mu)
        recon = (diff * diff) @ self.recon_weight
        if logvar is not None:
            return recon, gaussian_kl(mu, logvar).sum(dim=1)
        nll = 0.5 * (mu * mu).sum(dim=1)
        if self.latent_term == "typicality":
            # Two-sided: anomalies can sit closer to the prior's mode than normal rows do, so a latent NLL
            # unusually low is as suspicious as one unusually high.
            return recon, (nll - self.latent_center).abs()
        return recon, nll

    def normalize(self, recon: torch.Tensor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalize each raw term with the held-out statistics, then apply the configured transform."""
        r = (recon - self.center[0]) / self.spread[0]
        z = (latent - self.center[1]) / self.spread[1]
        if self.transform == "softplus":
            return F.softplus(r), F.softplus(z)
        if self.transform == "sigmoid":
            return torch.sigmoid(r), torch.sigmoid(z)
        return r, z

    def raw_reconstruction(self, r: torch.Tensor) -> torch.Tensor:
        """The raw reconstruction errors whose normalized terms are `r`: `normalize`'s inverse."""
        if self.transform == "softplus":
            r = r.clamp_min(torch.finfo(r.dtype).tiny)
            r = r + torch.log(-torch.expm1(-r))  # log(expm1(r)), stable for large r
        elif self.transform == "sigmoid":
            r = torch.logit(r)
        return self.center[0] + self.spread[0] * r

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
            mu, _ = self.encode(x_val)
            self.latent_center.copy_((0.5 * (mu * mu).sum(dim=1)).median())
        recon, latent = self.raw_components(x_val)
        center, spread = robust_center_spread(torch.stack([recon, latent], dim=1), self.normalization)
        self.center.copy_(center)
        self.spread.copy_(spread)
        return self.normalize(recon, latent)
