"""Typed, frozen configuration of the detector: model, training and scoring sections.

Example:
    >>> cfg = DetectorConfig.from_flat(latent_dim=4, epochs=50, alpha=0.5)
    >>> cfg.model.latent_dim, cfg.train.epochs, cfg.score.alpha
    (4, 50, 0.5)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelConfig(_Frozen):
    """Architecture of the VAE."""

    encoder: Literal["mlp", "conv"] = Field(
        "mlp",
        description="mlp: layers over the flat sample; conv (window > 1 only): 1-D convolutions over the "
        "window's steps, the decoder mirrors them.",
    )
    hidden_dims: tuple[int, ...] | None = Field(
        None,
        description="Encoder widths (conv: channels), the decoder mirrors them; None: mlp (w, w/2), "
        "w = max(64, 2*n_features) rounded up to a power of two; conv (32, 16).",
    )
    latent_dim: int | None = Field(
        None, ge=1, description="Latent size; None picks min(8, max(2, n_features // 2))."
    )
    reconstruction: Literal["mse", "gaussian_nll"] = Field(
        "gaussian_nll",
        description="Reconstruction likelihood: unit-variance Gaussian (MSE) or learnt per-feature variance.",
    )

    def architecture(self, n_features: int) -> tuple[tuple[int, ...], int]:
        """Hidden widths and latent size for `n_features` inputs, filling in the automatic defaults."""
        width = 32 if self.encoder == "conv" else max(64, 1 << (2 * n_features - 1).bit_length())
        hidden = self.hidden_dims or (width, width // 2)
        return hidden, self.latent_dim or min(8, max(2, n_features // 2))


class TrainConfig(_Frozen):
    """Optimisation, regularisation and data-handling options of `fit`."""

    epochs: int = Field(200, ge=1, description="Upper bound on epochs; early stopping usually ends sooner.")
    max_steps: int = Field(
        2000,
        ge=1,
        description="Upper bound on optimizer steps (checked at epoch ends): bounds fit time on large data.",
    )
    batch_size: int | None = Field(
        None,
        ge=2,
        description="Mini-batch size; None: n_train // 32 within [256, 4096] (about 32 steps an epoch).",
    )
    lr: float = Field(5e-3, gt=0, description="Adam learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay.")
    beta: float = Field(1.0, ge=0, description="Final weight of the KL term.")
    kl_warmup_epochs: int = Field(10, ge=0, description="Epochs of linear KL annealing from 0 to beta.")
    free_bits: float = Field(0.0, ge=0, description="Per-latent-dimension KL floor (nats) against collapse.")
    patience: int = Field(15, ge=1, description="Epochs without validation improvement before stopping.")
    min_delta: float = Field(1e-4, ge=0, description="Relative validation-loss improvement that counts.")
    grad_clip: float | None = Field(5.0, gt=0, description="Max gradient norm; None disables clipping.")
    val_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of X held out to calibrate the threshold (and nothing else)."
    )
    tune_fraction: float = Field(
        0.1,
        gt=0,
        lt=1,
        description="Share of the remaining rows held out for the training decisions: early stopping, "
        "score normalisation and alpha.",
    )
    noise_std: float = Field(0.0, ge=0, description="Std of Gaussian noise added to standardized inputs.")
    prefilter_fraction: float = Field(
        0.0, ge=0, lt=0.5, description="Share of the most outlying training rows an Isolation Forest drops."
    )
    min_rows: int = Field(32, ge=4, description="Fewest rows `fit` accepts.")


class ScoreConfig(_Frozen):
    """How the reconstruction and latent terms become one anomaly score."""

    latent_term: Literal["typicality", "nll", "kl"] = Field(
        "typicality",
        description="typicality: |latent NLL - its held-out median|, two-sided; "
        "nll: -log N(mu; 0, I) up to a constant (one-sided); kl: KL(q(z|x) || p(z)).",
    )
    normalization: Literal["robust", "zscore"] = Field(
        "robust", description="Per-term normalisation on held-out normal rows: median/IQR or mean/std."
    )
    transform: Literal["none", "softplus", "sigmoid"] = Field(
        "softplus", description="Applied to each normalised term before mixing."
    )
    combine: Literal["sum", "product"] = Field(
        "sum", description="alpha*R + (1-alpha)*L, or R**alpha * L**(1-alpha)."
    )
    alpha: float | Literal["auto"] = Field(
        "auto", description="Weight of the reconstruction term; 'auto' picks it without labels."
    )
    threshold_method: Literal["conformal", "gaussian_tail", "control_limit"] = Field(
        "conformal",
        description="conformal / gaussian_tail: from held-out normal scores. control_limit (alpha 1): "
        "an upper control limit as process control sets one, 4/3 of the (1 - target_fpr) quantile of the "
        "raw reconstruction error of the training rows themselves (none held out: fit for short series; "
        "SKAB's Conv-AE sets its limit so).",
    )

    @model_validator(mode="after")
    def _control_limit_needs_reconstruction_alone(self) -> ScoreConfig:
        if self.threshold_method == "control_limit" and self.alpha != 1:
            raise ValueError(
                f"threshold_method 'control_limit' limits the reconstruction error alone: set alpha 1, "
                f"not {self.alpha!r}"
            )
        return self


class DetectorConfig(_Frozen):
    """Everything that defines a detector; saved with it as JSON."""

    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    score: ScoreConfig = ScoreConfig()
    target_fpr: float = Field(0.01, gt=0, lt=1, description="False-positive rate the threshold aims for.")
    window: int = Field(
        1,
        ge=1,
        description="Time steps per sample. 1: rows are independent samples. w > 1: the input is a "
        "time-ordered series, each sample is the sliding window of its last w rows, and scores belong to "
        "the window's last step (n - w + 1 scores for n rows).",
    )
    drifting_channels: Literal["levels", "centered"] = Field(
        "levels",
        description="Windows only. 'centered': a channel whose level drifts within the training rows (KS "
        "between their halves above 0.5, e.g. a temperature climbing through a run) is seen by its shape, "
        "each window's mean removed, so later windows at a new level are not flagged for it; 'levels': "
        "every channel as it is.",
    )
    seed: int = Field(0, description="Seed of every random choice (split, init, batches).")
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu', 'cuda', 'cuda:1', ...")

    @model_validator(mode="after")
    def _temporal_needs_windows(self) -> DetectorConfig:
        if self.model.encoder == "conv" and self.window == 1:
            raise ValueError("encoder 'conv' convolves over a window's steps: set window > 1")
        if self.drifting_channels == "centered" and self.window == 1:
            raise ValueError("drifting_channels 'centered' removes a window's mean: set window > 1")
        return self

    @classmethod
    def from_flat(cls, **options: Any) -> DetectorConfig:
        """Build a config from flat keyword options, routing each to the section that owns it.

        Raises:
            TypeError: an option belongs to no section.
        """
        sections: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "score": {}}
        top: dict[str, Any] = {}
        owners = {name: sec for sec in sections for name in cls.model_fields[sec].annotation.model_fields}  # type: ignore[union-attr]
        for key, value in options.items():
            if key in cls.model_fields:
                top[key] = value
            elif key in owners:
                sections[owners[key]][key] = value
            else:
                raise TypeError(f"unknown detector option {key!r}")
        return cls(
            model=ModelConfig(**sections["model"]),
            train=TrainConfig(**sections["train"]),
            score=ScoreConfig(**sections["score"]),
            **top,
        )
