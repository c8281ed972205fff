"""Sliding windows over a checked (n_steps, n_channels) matrix, shared by the preprocessor and timeseries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class Segments:
    """Pieces of one time-ordered series with gaps between them (dropped rows): no window spans two.

    Give it wherever a windowed detector takes a series: `det.fit(Segments([a, b]))`, `det.score(...)`.
    """

    parts: tuple[Any, ...]

    def __init__(self, parts: Iterable[Any]) -> None:
        object.__setattr__(self, "parts", tuple(parts))
        if not self.parts:
            raise InputError("Segments needs at least one part")


def parts_of(X: Any) -> tuple[Any, ...]:
    """The pieces of X: its `Segments` parts, or X itself as the only piece."""
    return X.parts if isinstance(X, Segments) else (X,)


def windows_of(parts: Sequence[np.ndarray], size: int) -> np.ndarray:
    """The samples of checked parts: their rows (size 1), or the sliding windows within each part.

    Raises:
        InputError: no part is as long as the window.
    """
    if size == 1:
        return parts[0] if len(parts) == 1 else np.concatenate(parts)
    full = [sliding(p, size) for p in parts if len(p) >= size]
    if not full:
        longest = max(len(p) for p in parts)
        raise InputError(f"series of {longest} step(s) is shorter than the window size {size}")
    return full[0] if len(full) == 1 else np.concatenate(full)


def window_counts(parts: Sequence[Any], size: int) -> tuple[int, ...]:
    """How many samples `windows_of` draws from each part, in order (parts shorter than a window: none)."""
    return tuple(len(p) - size + 1 for p in parts if len(p) >= size)
