"""Latent-dimension sweep: validation loss per latent size on one fixed split, and the elbow of that curve.

Example:
    >>> result = latent_dim_sweep(X, dims=(1, 2, 4, 8, 16), epochs=50)
    >>> result.elbow, result.val_loss
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vae.detector import VAEDetector
from vae.errors import InputError
from vae.preprocessing import as_matrix
from vae.windowing import Segments


@dataclass(frozen=True)
class SweepResult:
    """Best validation loss for each latent size, and the size at the curve's elbow."""

    dims: tuple[int, ...]
    val_loss: tuple[float, ...]
    elbow: int


def elbow_point(xs: Sequence[float], ys: Sequence[float]) -> int:
    """Index of the point farthest below the chord from the first to the last point (Kneedle-style).

    Both axes are scaled to [0, 1] first; a straight or convex-up curve gives index 0.
    """
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if len(x) < 3:
        return int(np.argmin(y))
    xn = (x - x[0]) / (x[-1] - x[0])
    span = y.max() - y.min()
    yn = (y - y.min()) / span if span > 0 else np.zeros_like(y)
    chord = yn[0] + (yn[-1] - yn[0]) * xn
    gap = chord - yn
    return int(np.argmax(gap)) if gap.max() > 0 else 0


def latent_dim_sweep(X: Any, dims: Sequence[int] = (1, 2, 4, 8, 16), **options: Any) -> SweepResult:
    """Fit one detector per latent size on the same train/validation split and compare validation losses.

    The x axis of the elbow search is log2(latent size), since sizes are usually swept in powers of two.
    """
    dims = tuple(sorted(set(dims)))
    if not dims or dims[0] < 1:
        raise InputError(f"latent sizes must be positive integers, got {dims}")
    base = VAEDetector(**options)
    train, val = base.split_holdout([as_matrix(X)])
    X_train, X_val = Segments(train), Segments(val)
    losses = []
    for d in dims:
        det = VAEDetector(**{**options, "latent_dim": d}).fit(X_train, X_val=X_val)
        losses.append(min(h.val_loss for h in det.history_))
    return SweepResult(dims, tuple(losses), dims[elbow_point(np.log2(dims).tolist(), losses)])
