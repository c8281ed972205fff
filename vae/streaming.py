"""Score a series as it arrives: the sliding-window buffer and the EMA state carried from call to call.

Pure functions over an immutable `StreamState`, so a service can keep one state per stream id and a
scorer can resume a stream anywhere. Streaming in chunks gives exactly the scores of the whole series at once.

Flags compare the smoothed score with a fixed threshold (`det.smoothed_threshold(beta)`), or with an
adaptive conformal one (`Adaptive`, `vae/adaptive.py`) that holds the alert rate when the stream moves;
its level is part of the state.

Example:
    >>> state, threshold = StreamState(), det.smoothed_threshold(0.9)
    >>> state, out = advance(det, state, next_rows, beta=0.9, threshold=threshold)
    >>> out.step, out.smoothed, out.is_anomaly     # one entry per newly completed window
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vae.adaptive import AdaptiveState, adapt, level_threshold
from vae.detector import VAEDetector
from vae.timeseries import ema
from vae.windowing import latest_time


@dataclass(frozen=True)
class StreamState:
    """What a stream carries between calls: its last window - 1 observations and its smoothed score.

    And the timestamp of its last row, when its rows carry timestamps: the next rows may not start before.
    """

    tail: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.float32))
    smoothed: float | None = None
    steps: int = 0  # observations received so far
    level: float | None = None  # the adaptive threshold's alert level (None: not adaptive yet)
    last_time: pd.Timestamp | None = None

    def rebase(self, detector: VAEDetector) -> StreamState:
        """The state for another model: the buffer it can still use (same columns), a fresh EMA and level."""
        keep, channels = detector.config.window - 1, detector.n_channels_
        usable = keep > 0 and self.tail.shape[1] == channels
        tail = self.tail[len(self.tail) - keep :] if usable else np.empty((0, channels), np.float32)
        return StreamState(tail, None, self.steps, last_time=self.last_time)


@dataclass(frozen=True)
class Adaptive:
    """Adaptive conformal flags for a stream: smoothed calibration scores, the rate to hold, the step."""

    calibration: np.ndarray  # `detector.smoothed_calibration(beta)`; held sorted, sorted once
    target: float
    gamma: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "calibration", np.sort(np.asarray(self.calibration, dtype=np.float64)))

    def threshold(self, level: float | None) -> float:
        """The threshold in force at `level` (a new stream starts at the target)."""
        return level_threshold(self.calibration, self.target if level is None else level)


@dataclass(frozen=True)
class StreamScores:
    """Scores of the windows a call completed, each belonging to the step that completed it."""

    step: np.ndarray  # 0-based position in the stream of each window's last observation
    score: np.ndarray
    smoothed: np.ndarray  # EMA of the score stream
    is_anomaly: np.ndarray  # smoothed > threshold


def advance(
    detector: VAEDetector,
    state: StreamState,
    observations: Any,
    beta: float,
    threshold: float,
    adaptive: Adaptive | None = None,
) -> tuple[StreamState, StreamScores]:
    """Append observations to a stream; score every window they complete.

    Args:
        detector: a fitted detector; its `config.window` is the window length (1: every row scores).
        state: the stream so far (`StreamState()` for a new one).
        observations: the next rows of the series, array or DataFrame with the detector's columns.
        beta: EMA weight of the past (0: no smoothing).
        threshold: flag when the smoothed score exceeds it (`detector.smoothed_threshold(beta)`).
        adaptive: flag against adaptive conformal thresholds instead (`threshold` is then unused).

    Raises:
        InputError: rows the detector cannot take (columns, NaN, types), or rows whose timestamps go back
            in time (within the call, or before the stream's last row).
    """
    rows = detector.observations(observations)
    latest = latest_time(observations, state.last_time)
    series = np.concatenate([state.tail, rows]) if len(state.tail) else rows
    steps, window = state.steps + len(rows), detector.config.window
    tail = series[len(series) - window + 1 :] if window > 1 else series[:0]
    if len(series) < window:
        return StreamState(series, state.smoothed, steps, state.level, latest), _no_scores()
    scores = detector.score(series).astype(np.float64)
    smoothed = ema(scores, beta, state.smoothed)
    level = state.level
    if adaptive is None:
        flags = smoothed > threshold
    else:
        start = AdaptiveState(adaptive.target if level is None else level)
        moved, adapted = adapt(adaptive.calibration, smoothed, adaptive.target, adaptive.gamma, start)
        flags, level = adapted.is_anomaly, moved.level
    out = StreamScores(np.arange(steps - len(scores), steps), scores, smoothed, flags)
    return StreamState(tail, float(smoothed[-1]), steps, level, latest), out


def _no_scores() -> StreamScores:
    empty = np.empty(0)
    return StreamScores(empty.astype(np.int64), empty, empty, empty.astype(bool))
