"""Sliding windows over a checked (n_steps, n_channels) matrix, shared by the preprocessor and timeseries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

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


def time_column(frame: pd.DataFrame) -> str | None:
    """The frame's timestamp column, if it has one: its time axis, never a feature.

    One of datetime type, or of text that reads as ISO dates throughout, as a CSV read without
    `parse_dates` gives (NAB's `timestamp,value`).

    Raises:
        InputError: several timestamp columns.
    """
    found = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    for column in frame.columns:
        if pd.api.types.is_object_dtype(frame[column]) and _reads_as_dates(frame[column]):
            found.append(column)
    if len(found) > 1:
        raise InputError(
            f"several timestamp columns {sorted(map(str, found))}: keep the one that orders the rows"
        )
    return str(found[0]) if found else None


def time_axis(frame: pd.DataFrame) -> pd.DatetimeIndex | None:
    """The frame's timestamps: its timestamp column's, else its index when that is a DatetimeIndex."""
    column = time_column(frame)
    if column is not None:
        return pd.DatetimeIndex(pd.to_datetime(frame[column], format="ISO8601"))
    return frame.index if isinstance(frame.index, pd.DatetimeIndex) else None


def _axis_name(frame: pd.DataFrame) -> str:
    column = time_column(frame)
    return "index" if column is None else f"timestamp column {column!r}"


def require_time_order(parts: Iterable[Any]) -> None:
    """Windows need rows in time order: refuse a frame among `parts` whose timestamps say otherwise.

    Raises:
        InputError: rows out of time order (gaps are fine: they stay visible in the timestamps).
    """
    for frame in parts:
        latest_time(frame, None)


def latest_time(rows: Any, before: pd.Timestamp | None) -> pd.Timestamp | None:
    """A series' last timestamp once `rows` are appended: theirs, or `before` (its last so far) if none.

    Raises:
        InputError: the rows are out of time order, or start before `before`.
    """
    times = time_axis(rows) if isinstance(rows, pd.DataFrame) else None
    if times is None or len(times) == 0:
        return before
    if not times.is_monotonic_increasing:
        raise InputError(f"rows are not in time order by their {_axis_name(rows)}: sort them first")
    if before is not None and times[0] < before:
        raise InputError(
            f"rows start at {times[0]}, before this series' last row at {before} (by their "
            f"{_axis_name(rows)}): send a series' rows in time order"
        )
    return times[-1]


def _reads_as_dates(values: pd.Series) -> bool:
    try:
        pd.to_datetime(values, format="ISO8601")
    except (ValueError, TypeError):
        return False
    return True


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
