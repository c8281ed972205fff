"""The fit loop: mini-batch ELBO with KL annealing, free bits, clipping, early stopping and a NaN guard.

Example:
    >>> result = train_vae(vae, x_train, x_val, TrainConfig(epochs=5), seed=0)
    >>> result.history[-1].val_loss
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vae.config import TrainConfig
from vae.errors import TrainingDivergedError
from vae.losses import active_units, gaussian_kl, kl_weight, kl_with_free_bits, reconstruction_nll
from vae.model import VAE


@dataclass(frozen=True)
class EpochStats:
    """One epoch of training, as kept in `VAEDetector.history_`."""

    epoch: int
    loss: float
    reconstruction: float
    kl: float
    beta: float
    val_loss: float
    active_units: int


@dataclass(frozen=True)
class TrainResult:
    """History of every epoch and the weights of the best validation epoch."""

    history: tuple[EpochStats, ...]
    best_epoch: int
    state: dict[str, torch.Tensor]


@torch.no_grad()
def validation_loss(model: VAE, x: torch.Tensor, beta: float, batch_size: int = 65536) -> tuple[float, int]:
    """Deterministic negative ELBO per row (z at the posterior mean, full beta) and the active units."""
    model.eval()
    total, mus = 0.0, []
    for chunk in x.split(batch_size):
        mu, logvar = model.encode(chunk)
        rec = reconstruction_nll(chunk, model.decode(mu), model.log_sigma2)
        total += float((rec + beta * gaussian_kl(mu, logvar).sum(dim=1)).sum())
        mus.append(mu)
    return total / x.shape[0], active_units(torch.cat(mus))


def auto_batch_size(n_train: int) -> int:
    """About 32 steps an epoch, within [256, 4096]: a step costs nearly the same up to ~1000 rows on a CPU."""
    return min(max(256, n_train // 32), 4096)


def _snapshot(model: VAE) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _check_finite(value: torch.Tensor, epoch: int, what: str) -> None:
    if not torch.isfinite(value):
        raise TrainingDivergedError(
            f"{what} became {float(value)} at epoch {epoch}; lower lr, enable grad_clip or check input scale"
        )


def train_vae(
    model: VAE,
    x_train: torch.Tensor,
    x_val: torch.Tensor,
    cfg: TrainConfig,
    seed: int,
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train `model` in place on standardized rows and return the history and best weights.

    Args:
        model: the VAE to train (fresh or warm-started).
        x_train: (n_train, n_features) standardized training rows, on the model's device.
        x_val: (n_val, n_features) standardized held-out rows for early stopping.
        cfg: training options.
        seed: seeds batch order, noise and latent samples.
        on_epoch: called after each epoch, for progress display.

    Raises:
        TrainingDivergedError: the training or validation loss became NaN or infinite.
    """
    device = x_train.device
    gen = torch.Generator(device=device).manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    n = x_train.shape[0]
    batch_size = cfg.batch_size or auto_batch_size(n)
    history: list[EpochStats] = []
    best_loss, best_epoch, best_state, stale = math.inf, 0, _snapshot(model), 0
    for epoch in range(cfg.epochs):
        beta = kl_weight(epoch, cfg.beta, cfg.kl_warmup_epochs)
        model.train()
        sums = torch.zeros(3, device=device)
        for idx in torch.randperm(n, generator=gen, device=device).split(batch_size):
            xb = x_train[idx]
            x_in = (
                xb + cfg.noise_std * torch.randn(xb.shape, generator=gen, device=device)
                if cfg.noise_std
                else xb
            )
            x_hat, mu, logvar = model(x_in, generator=gen)
            rec = reconstruction_nll(xb, x_hat, model.log_sigma2).mean()
            kl = kl_with_free_bits(gaussian_kl(mu, logvar), cfg.free_bits)
            loss = rec + beta * kl
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip, foreach=True)
            optimizer.step()
            sums += torch.stack([loss.detach(), rec.detach(), kl.detach()]) * len(idx)
        means = sums / n
        _check_finite(means[0], epoch, "training loss")
        val, au = validation_loss(model, x_val, cfg.beta)
        _check_finite(torch.tensor(val), epoch, "validation loss")
        mean_loss, mean_rec, mean_kl = means.tolist()
        stats = EpochStats(epoch, mean_loss, mean_rec, mean_kl, beta, val, au)
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        improved = epoch == 0 or val < best_loss - cfg.min_delta * abs(best_loss)
        if improved or epoch < cfg.kl_warmup_epochs:
            best_loss, best_epoch, stale = val, epoch, 0
            best_state = _snapshot(model)
        else:
            stale += 1
            if stale >= cfg.patience:
                break
        if (epoch + 1) * math.ceil(n / batch_size) >= cfg.max_steps:
            break
    model.load_state_dict(best_state)
    return TrainResult(tuple(history), best_epoch, best_state)
