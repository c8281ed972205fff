"""NAB's anomaly-window score of 0/1 flags on one series (the Numenta Anomaly Benchmark's scoring rules).

Written from NAB's published rules (Lavin & Ahmad, 2015; `nab/sweeper.py`): every labelled window earns
its earliest alert, weighted by how early in the window it came (a scaled sigmoid: 1.0 at the window's
first row, 0 past its last), or loses `fn` when it has none; every alert outside the windows loses up to
`fp`, less when it follows a window closely. Rows in the probationary period count for nothing. The
normalized score is 100 for a detector that alerts at the start of every window and nothing else, 0 for
one that never alerts.

Example:
    >>> score = nab_score(flags, windows=[(1200, 1450)], start=750)
    >>> score.raw, score.normalized
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae.errors import InputError


@dataclass(frozen=True)
class Profile:
    """NAB's application profile: the weights of a window caught, an alert outside, a window missed."""

    tp: float = 1.0
    fp: float = 0.11
    fn: float = 1.0


STANDARD = Profile()


def scaled_sigmoid(position: np.ndarray | float) -> np.ndarray:
    """2 sigmoid(-5 x) - 1: 0.98661 at -1 (a window's start), 0 at 0 (its end); -1 from 3 on."""
    x = np.asarray(position, dtype=np.float64)
    return np.where(x >= 3.0, -1.0, 2.0 / (1.0 + np.exp(np.minimum(5.0 * x, 700.0))) - 1.0)


@dataclass(frozen=True)
class NabScore:
    """A series' raw NAB score, its windows (those with a scorable row) and the profile's weights."""

    raw: float
    windows: int
    profile: Profile

    @property
    def normalized(self) -> float:
        """100 (raw - null) / (perfect - null): null never alerts, perfect alerts at each window's start."""
        return normalized([self])


def normalized(scores: list[NabScore]) -> float:
    """The normalized score of several series together (NAB sums raw scores over its corpus)."""
    null = -sum(s.profile.fn * s.windows for s in scores)
    perfect = sum(s.profile.tp * s.windows for s in scores)
    return 100.0 * (sum(s.raw for s in scores) - null) / (perfect - null) if perfect > null else 0.0


def nab_score(
    flags: np.ndarray, windows: list[tuple[int, int]], start: int = 0, profile: Profile = STANDARD
) -> NabScore:
    """Score 0/1 flags, one per row of the series, against labelled windows.

    Args:
        flags: alerts, one per row of the whole series (rows before `start` are ignored).
        windows: (first row, last row) of each labelled window, inclusive, in order, not overlapping.
        start: rows before it are the probationary period: no alert or window row there counts.
        profile: the weights (NAB's standard profile by default).

    Raises:
        InputError: a window outside the series, reversed, or overlapping the one before it.
    """
    alerts = np.asarray(flags).astype(bool).ravel()
    n, last_end = len(alerts), -1
    for first, last in windows:
        if not 0 <= first <= last < n or first <= last_end:
            raise InputError(f"window ({first}, {last}) is outside {n} rows, reversed or overlapping")
        last_end = last
    inside = np.zeros(n, bool)
    raw, counted = 0.0, 0
    top = float(scaled_sigmoid(-1.0))
    for first, last in windows:
        inside[first : last + 1] = True
        rows = np.arange(max(first, start), last + 1)
        if not len(rows):
            continue
        counted += 1
        hits = rows[alerts[rows]]
        width = last - first + 1
        earliest = float(scaled_sigmoid(-(last - hits[0] + 1) / width)) if len(hits) else None
        raw += profile.tp * earliest / top if earliest is not None else -profile.fn
    outside = np.flatnonzero(alerts & ~inside & (np.arange(n) >= start))
    ends = np.array([last for _, last in windows], dtype=np.int64)
    widths = np.array([last - first + 1 for first, last in windows], dtype=np.float64)
    before = np.searchsorted(ends, outside) - 1  # the window that ended last before each alert
    gap = np.full(len(outside), 3.0)  # no window before it: the full penalty
    after = before >= 0
    gap[after] = (outside[after] - ends[before[after]]) / np.maximum(widths[before[after]] - 1, 1)
    raw += profile.fp * float(scaled_sigmoid(gap).sum())
    return NabScore(raw, counted, profile)
