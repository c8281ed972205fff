"""Time series helpers: sliding windows in, window scores back to time steps, EMA smoothing of scores.

Example:
    >>> X = windows(series, size=32)                      # (n_windows, 32 * n_channels)
    >>> step_scores = to_time_steps(det.score(X), len(series), size=32)
    >>> smooth = ema(step_scores, beta=0.9)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy.signal import lfilter

from vae.errors import InputError
from vae.preprocessing import as_matrix


def window_starts(n_steps: int, size: int, stride: int = 1) -> np.ndarray:
    """Start index of every window; a last window is aligned to the end so every step is covered."""
    if size < 1 or stride < 1:
        raise InputError(f"window size and stride must be >= 1, got size={size}, stride={stride}")
    if n_steps < size:
        raise InputError(f"series of {n_steps} step(s) is shorter than the window size {size}")
    starts = np.arange(0, n_steps - size + 1, stride)
    if starts[-1] != n_steps - size:
        starts = np.append(starts, n_steps - size)
    return starts


def windows(series: Any, size: int, stride: int = 1) -> np.ndarray:
    """Sliding windows of a (n_steps,) or (n_steps, n_channels) series, flattened time-major.

    Returns:
        (n_windows, size * n_channels) float32 array; window i covers steps starts[i] .. starts[i] + size - 1.

    Raises:
        InputError: NaN/inf values, non-numeric data, or a series shorter than the window.
    """
    values = np.asarray(series)
    matrix = as_matrix(values.reshape(-1, 1) if values.ndim == 1 else series)
    starts = window_starts(len(matrix), size, stride)
    view = np.lib.stride_tricks.sliding_window_view(matrix, size, axis=0)  # (n-size+1, channels, size)
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1).reshape(len(starts), -1))


def to_time_steps(
    window_scores: np.ndarray,
    n_steps: int,
    size: int,
    stride: int = 1,
    reduce: Literal["mean", "max"] = "max",
) -> np.ndarray:
    """Map window scores back to the steps each window covers (mean or max over covering windows)."""
    scores = np.asarray(window_scores, dtype=np.float64)
    starts = window_starts(n_steps, size, stride)
    if scores.shape != starts.shape:
        raise InputError(f"expected {len(starts)} window scores for {n_steps} steps, got {scores.shape[0]}")
    if reduce == "max":
        out = np.full(n_steps, -np.inf)
        for offset in range(size):
            np.maximum.at(out, starts + offset, scores)
        return out
    sums, counts = np.zeros(n_steps + 1), np.zeros(n_steps + 1)
    np.add.at(sums, starts, scores)
    np.add.at(sums, starts + size, -scores)
    np.add.at(counts, starts, 1.0)
    np.add.at(counts, starts + size, -1.0)
    return np.cumsum(sums)[:-1] / np.cumsum(counts)[:-1]


def ema(scores: np.ndarray, beta: float) -> np.ndarray:
    """Exponential moving average s_t = beta * s_{t-1} + (1 - beta) * x_t, starting at s_0 = x_0."""
    if not 0 <= beta < 1:
        raise InputError(f"ema beta must be in [0, 1), got {beta}")
    x = np.asarray(scores, dtype=np.float64).ravel()
    if x.size == 0:
        return x
    smoothed, _ = lfilter([1 - beta], [1, -beta], x, zi=[beta * x[0]])
    return smoothed
