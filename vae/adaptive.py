"""Adaptive conformal inference (Gibbs & Candes, 2021): a threshold that holds the alert rate in a stream.

A split-conformal threshold holds its false-positive rate only while new normal scores look like the
calibration scores. When the stream moves, ACI moves the level instead: after each score,

    a_{t+1} = a_t + gamma * (target - flagged_t)

and the next threshold is the conformal quantile of the calibration scores at level a_{t+1}. Over any
stretch of T steps the realized alert rate is within (max(a_1, 1 - a_1) + gamma) / (gamma * T) of the
target, whatever the stream does. `gamma` is the knob between holding the budget and alerting on a
sustained anomaly: one is alerted throughout its first target / gamma steps or so (1,000 at a 1% target
and gamma 1e-5; 10 at 1e-3), then at the target rate; a quiet stretch brings the threshold back down.

Example:
    >>> state = AdaptiveState(level=det.threshold_fpr_)
    >>> state, flags = adapt(det.calibration_scores_, scores, target=0.01, gamma=0.005, state=state)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae.errors import InputError


@dataclass(frozen=True)
class AdaptiveState:
    """Where a stream's level stands (a_t), and how many scores it has seen."""

    level: float
    steps: int = 0


@dataclass(frozen=True)
class AdaptiveFlags:
    """Per score: the threshold it was compared with, whether it was flagged, the level after it."""

    threshold: np.ndarray
    is_anomaly: np.ndarray
    level: np.ndarray


def level_threshold(sorted_calibration: np.ndarray, level: float) -> float:
    """The conformal threshold at alert level `level`: inf at level <= 0 (never alert), -inf at >= 1."""
    n = len(sorted_calibration)
    if level >= 1:
        return -np.inf
    rank = int(np.ceil((n + 1) * (1 - level)))  # as `conformal_threshold`: the rank-th smallest
    return float(sorted_calibration[rank - 1]) if rank <= n else np.inf


def adapt(
    calibration: np.ndarray, scores: np.ndarray, target: float, gamma: float, state: AdaptiveState
) -> tuple[AdaptiveState, AdaptiveFlags]:
    """Flag each score against the threshold of the level so far, then update the level.

    Args:
        calibration: held-out normal scores (of the same kind as `scores`: raw, or EMA-smoothed).
        scores: the stream's next scores, in order.
        target: the long-run alert rate to hold (the detector's target FPR).
        gamma: the step size (> 0).
        state: the stream's state so far (`AdaptiveState(level=target)` for a new one).

    Raises:
        InputError: no calibration scores, a target outside (0, 1), or gamma <= 0.
    """
    if len(calibration) == 0:
        raise InputError("adaptive thresholds need calibration scores")
    if not 0 < target < 1 or gamma <= 0:
        raise InputError(f"need 0 < target < 1 and gamma > 0, got target={target}, gamma={gamma}")
    ordered = np.asarray(calibration, dtype=np.float64)
    if np.any(ordered[1:] < ordered[:-1]):  # a stream's rule holds them sorted: no sort per call
        ordered = np.sort(ordered)
    values = np.asarray(scores, dtype=np.float64)
    thresholds, flags, levels = np.empty(len(values)), np.empty(len(values), bool), np.empty(len(values))
    level = state.level
    for t, score in enumerate(values):
        thresholds[t] = level_threshold(ordered, level)
        flags[t] = score > thresholds[t]
        level += gamma * (target - flags[t])
        levels[t] = level
    return AdaptiveState(level, state.steps + len(values)), AdaptiveFlags(thresholds, flags, levels)
