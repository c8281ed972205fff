"""A calibration window that drifts within itself is named at fit: its FPR range will not hold."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from vae import ExchangeabilityWarning, VAEDetector
from vae.calibration import DRIFT_FLOOR, calibration_drift

OPTIONS = {"epochs": 4, "hidden_dims": (16,), "latent_dim": 2, "device": "cpu", "seed": 0}


def _series(shift: float, n: int = 1500) -> np.ndarray:
    """Noise whose last 100 steps (inside the newest slice, which calibrates) moved by `shift`."""
    values = np.random.default_rng(0).normal(size=(n, 3))
    values[-100:] += shift * np.array([1.0, -1.0, 0.5])
    return values


def test_a_steady_series_calibrates_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ExchangeabilityWarning)
        detector = VAEDetector(window=8, **OPTIONS).fit(_series(shift=0.0))
    statistic, drifted = detector.calibration_drift_
    assert not drifted and statistic < DRIFT_FLOOR


def test_a_calibration_window_that_drifts_is_named_at_fit():
    with pytest.warns(ExchangeabilityWarning, match="drifts within itself"):
        detector = VAEDetector(window=8, **OPTIONS).fit(_series(shift=4.0))
    statistic, drifted = detector.calibration_drift_
    assert drifted and statistic >= DRIFT_FLOOR


def test_rows_calibrated_on_a_random_slice_have_no_order_to_drift_along():
    detector = VAEDetector(**OPTIONS).fit(_series(shift=4.0))  # window 1: a seeded random holdout
    assert detector.calibration_drift_ == (0.0, False)


def test_the_halves_test_needs_enough_scores():
    assert calibration_drift(np.arange(15.0)) == (0.0, False)
    assert calibration_drift(np.arange(100.0)) == (1.0, True)
