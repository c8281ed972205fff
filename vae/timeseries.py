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
from vae.windowing import sliding, window_starts


def windows(series: Any, size: int, stride: int = 1) -> np.ndarray:
    """Sliding windows of a (n_steps,) or (n_steps, n_channels) series, flattened time-major.

    Returns:
        (n_windows, size * n_channels) float32 array; window i covers steps starts[i] .. starts[i] + size - 1.

    Raises:
        InputError: NaN/inf values, non-numeric data, or a series shorter than the window.
    """
    values = np.asarray(series)
    return sliding(as_matrix(values.reshape(-1, 1) if values.ndim == 1 else series), size, stride)


def to_time_steps(
    window_scores: np.ndarray,
    n_steps: int,
    size: int,
    stride: int = 1,
    reduce: Literal["mean", "max", "min"] = "max",
) -> np.ndarray:
    """Map window scores back to the steps each window covers: the mean, max or min over covering windows.

    "max": a step is as anomalous as the worst window that holds it (any window's alert marks all its
    steps). "min": as the least anomalous one, so a step is above a threshold only when every window
    covering it is (a consensus that keeps a short event from marking a window's worth of steps).
    """
    scores = np.asarray(window_scores, dtype=np.float64)
    starts = window_starts(n_steps, size, stride)
    if scores.shape != starts.shape:
        raise InputError(f"expected {len(starts)} window scores for {n_steps} steps, got {scores.shape[0]}")
    if reduce in ("max", "min"):
        extreme = np.maximum if reduce == "max" else np.minimum
        out = np.full(n_steps, -np.inf if reduce == "max" else np.inf)
        for offset in range(size):
            extreme.at(out, starts + offset, scores)
        return out
    sums, counts = np.zeros(n_steps + 1), np.zeros(n_steps + 1)
    np.add.at(sums, starts, scores)
    np.add.at(sums, starts + size, -scores)
    np.add.at(counts, starts, 1.0)
    np.add.at(counts, starts + size, -1.0)
    return np.cumsum(sums)[:-1] / np.cumsum(counts)[:-1]


def ema(scores: np.ndarray, beta: float, initial: float | None = None) -> np.ndarray:
    """Exponential moving average s_t = beta * s_{t-1} + (1 - beta) * x_t.

    Args:
        scores: the stream x_0, x_1, ...
        beta: weight of the past, in [0, 1).
        initial: s_{-1}, the state carried over from an earlier part of the stream; None starts at s_0 = x_0.
    """
    if not 0 <= beta < 1:
        raise InputError(f"ema beta must be in [0, 1), got {beta}")
    x = np.asarray(scores, dtype=np.float64).ravel()
    if x.size == 0:
        return x
    start = x[0] if initial is None else initial
    smoothed, _ = lfilter([1 - beta], [1, -beta], x, zi=[beta * start])
    return smoothed
