"""Input contract and scaling: checks every batch and standardizes with statistics of the training rows.

Windows can also see some channels by their shape rather than their level: a channel whose level drifts
within the training rows (a temperature that climbs through a run) has each window's mean removed
(`drifting_channels`, `CenteredChannels`), so a later window at a new level looks like the ones before.

Example:
    >>> pre = Preprocessor.fit(np.random.default_rng(0).normal(size=(100, 3)))
    >>> pre.transform(np.zeros((2, 3))).shape
    (2, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import ks_2samp
from torch import nn

from vae.errors import InputError
from vae.windowing import parts_of, require_time_order, windows_of


def as_matrix(
    X: Any, columns: tuple[str, ...] | None = None, n_features: int | None = None, allow_nan: bool = False
) -> np.ndarray:
    """Check X and return it as a C-contiguous float32 matrix (n_samples, n_features).

    Args:
        X: array-like or DataFrame of numeric rows.
        columns: expected column names; a DataFrame is reordered to them, extra columns are ignored.
        n_features: expected number of features for plain arrays.
        allow_nan: let NaN through (missing values to impute); infinities are still refused.

    Raises:
        InputError: empty input, wrong dimensions, missing/unknown columns, non-numeric or non-finite values.
    """
    if isinstance(X, pd.DataFrame):
        values = _frame_values(X, columns)
    else:
        try:
            values = np.asarray(X, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"input is not numeric: {exc}") from None
    if values.ndim == 1 and n_features in (None, 1):  # a 1-D series is one feature, at fit and after
        values = values.reshape(-1, 1)
    if values.ndim != 2:
        raise InputError(f"expected a 2-D input (n_samples, n_features), got shape {values.shape}")
    if values.shape[0] == 0:
        raise InputError("input has no rows")
    if values.shape[1] == 0:
        raise InputError("input has no columns")
    if n_features is not None and values.shape[1] != n_features:
        raise InputError(f"expected {n_features} feature(s), got {values.shape[1]}")
    bad = np.isinf(values) if allow_nan else ~np.isfinite(values)
    if bad.any():
        rows, cols = np.nonzero(bad)
        where = f"column {columns[cols[0]]!r}" if columns else f"column {cols[0]}"
        raise InputError(f"{bad.sum()} NaN/inf value(s), first at row {rows[0]}, {where}")
    return np.ascontiguousarray(values)


def _frame_values(X: pd.DataFrame, columns: tuple[str, ...] | None) -> np.ndarray:
    """The frame's `columns` (all when None) as float32; InputError naming missing or non-numeric ones."""
    if columns is not None:
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise InputError(f"missing column(s) {missing}; expected {list(columns)}")
        X = X.loc[:, list(columns)]
    non_numeric = [
        str(c)
        for c, t in X.dtypes.items()
        if not pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t)
    ]
    if non_numeric:
        raise InputError(f"non-numeric column(s) {non_numeric}")
    return X.to_numpy(dtype=np.float32)


DRIFT_KS = 0.5  # KS between the halves of a channel's training rows above which its level drifts


def drifting_channels(rows: np.ndarray) -> tuple[int, ...]:
    """The channels of time-ordered rows whose level drifts: KS between their halves above DRIFT_KS."""
    half = len(rows) // 2
    return tuple(
        c for c in range(rows.shape[1]) if ks_2samp(rows[:half, c], rows[half:, c]).statistic > DRIFT_KS
    )


class CenteredChannels(nn.Module):
    """Flat time-major windows with the chosen channels' window mean removed; the others pass unchanged.

    Linear and idempotent (a centered window is its own centering), so it can lead an exported graph.
    """

    mask: torch.Tensor

    def __init__(self, window: int, n_channels: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        self.window, self.n_channels = window, n_channels
        mask = torch.zeros(n_channels)
        mask[list(channels)] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Windows (n, window * n_channels) -> the same, the chosen channels centered per window."""
        steps = x.reshape(-1, self.window, self.n_channels)
        return (steps - self.mask * steps.mean(dim=1, keepdim=True)).flatten(1)


def centering(window: int, n_channels: int, channels: tuple[int, ...]) -> nn.Module:
    """`CenteredChannels` for these channels, or the identity when none is chosen."""
    return CenteredChannels(window, n_channels, channels) if channels else nn.Identity()


def centered(samples: np.ndarray, window: int, channels: tuple[int, ...]) -> np.ndarray:
    """Checked windows (float32) with the chosen channels centered per window (`centering`)."""
    with torch.inference_mode():
        return centering(window, samples.shape[1] // window, channels)(torch.from_numpy(samples)).numpy()


@dataclass(frozen=True)
class Preprocessor:
    """Column contract, sliding windows (for window > 1) and a standard scaler fitted on training samples.

    `mean` and `scale` have one entry per model input: `window * n_channels` of them, time-major, fitted
    on the windows as the model sees them (the `centered` channels' window mean removed).
    """

    mean: np.ndarray
    scale: np.ndarray
    columns: tuple[str, ...] | None = None
    window: int = 1
    centered: tuple[int, ...] = ()

    @property
    def n_features(self) -> int:
        """Number of model inputs (window * n_channels)."""
        return int(self.mean.shape[0])

    @property
    def n_channels(self) -> int:
        """Number of columns of one observation."""
        return self.n_features // self.window

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        columns: tuple[str, ...] | None = None,
        window: int = 1,
        centered: tuple[int, ...] = (),
    ) -> Preprocessor:
        """Learn means and scales of checked samples (as `check` returns them); constants get scale 1."""
        mean = values.mean(axis=0, dtype=np.float64)
        std = values.std(axis=0, dtype=np.float64)
        scale = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)
        return cls(mean.astype(np.float32), scale.astype(np.float32), columns, window, centered)

    def observations(self, X: Any) -> np.ndarray:
        """Validate rows of X against the column contract; raw float32 values in contract order."""
        if isinstance(X, pd.DataFrame) and self.columns is not None:
            return as_matrix(X, columns=self.columns)
        return as_matrix(X, n_features=self.n_channels)

    def samples(self, X: Any) -> np.ndarray:
        """Raw samples of X (or of `Segments`): checked rows, or windows for window > 1 (an export's)."""
        parts = parts_of(X)
        if self.window > 1:
            require_time_order(parts)
        return windows_of([self.observations(p) for p in parts], self.window)

    def check(self, X: Any) -> np.ndarray:
        """The model's input samples of X: `samples`, the `centered` channels centered per window."""
        return centered(self.samples(X), self.window, self.centered)

    def centering(self) -> nn.Module:
        """`check`'s step from raw samples to the model's, as a module (identity if nothing is centered)."""
        return centering(self.window, self.n_channels, self.centered)

    def standardize(self, samples: np.ndarray) -> np.ndarray:
        """Standardize checked samples (the output of `check`)."""
        return (samples - self.mean) / self.scale

    def transform(self, X: Any) -> np.ndarray:
        """Validate and standardize X."""
        return self.standardize(self.check(X))
