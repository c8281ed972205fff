"""Sliding windows over a checked (n_steps, n_channels) matrix, shared by the preprocessor and timeseries."""

from __future__ import annotations

import numpy as np

from vae.errors import InputError


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


def sliding(matrix: np.ndarray, size: int, stride: int = 1) -> np.ndarray:
    """`windows` of an already checked (n_steps, n_channels) matrix."""
    starts = window_starts(len(matrix), size, stride)
    view = np.lib.stride_tricks.sliding_window_view(matrix, size, axis=0)  # (n-size+1, channels, size)
    return np.ascontiguousarray(view[starts].transpose(0, 2, 1).reshape(len(starts), -1))
