"""The control limit: a threshold from the fitted rows' own reconstruction error, process control's way."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from vae import CalibrationError, ExchangeabilityWarning, VAEDetector
from vae.calibration import CONTROL_MARGIN, control_limit
from vae.datasets import load_skab

ROOT = Path(__file__).resolve().parents[2]
WINDOW, FPR = 30, 0.001
OPTIONS = {"epochs": 20, "hidden_dims": (32,), "latent_dim": 4, "seed": 0, "device": "cpu"}


@pytest.fixture(scope="module")
def run() -> pd.DataFrame:
    """One SKAB experiment: its first 400 rows are normal operation, an anomaly comes later."""
    return load_skab(ROOT / "data" / "timeseries" / "skab" / "valve1" / "5.csv").frame


@pytest.fixture(scope="module")
def limited(run: pd.DataFrame) -> VAEDetector:
    options = {"alpha": 1.0, "threshold_method": "control_limit", "target_fpr": FPR, **OPTIONS}
    with warnings.catch_warnings():  # the run's fluid warms up: its scores drift, and fit says so
        warnings.simplefilter("ignore", ExchangeabilityWarning)
        return VAEDetector(window=WINDOW, **options).fit(run.iloc[:400])


def test_the_limit_is_a_third_above_the_quantile_of_the_errors():
    errors = np.arange(1001.0)
    assert control_limit(errors, 0.01) == pytest.approx(990 * CONTROL_MARGIN)
    with pytest.raises(CalibrationError, match="NaN"):
        control_limit(np.array([1.0, np.nan]), 0.01)


def test_a_fitted_limit_comes_from_every_training_window_and_flags_as_the_raw_error_does(run, limited):
    fitted = limited.score_components(run.iloc[:400])
    assert len(limited.calibration_scores_) == len(fitted)  # nothing held out: the fitted rows calibrate
    limit = np.quantile(fitted["reconstruction"], 1 - FPR) * CONTROL_MARGIN
    parts = limited.score_components(run)
    near = np.isclose(parts["reconstruction"], limit, rtol=1e-4)
    assert ((parts["reconstruction"] > limit) == (parts["score"] > limited.threshold_))[~near].all()
    assert 0 < limited.predict(run).is_anomaly.mean() < 0.9


def test_a_saved_limit_loads_as_it_was_and_another_alpha_is_refused(limited, run, tmp_path):
    loaded = VAEDetector.load(limited.save(tmp_path / "limited"))
    assert loaded.threshold_ == limited.threshold_
    np.testing.assert_array_equal(loaded.predict(run).is_anomaly, limited.predict(run).is_anomaly)
    with pytest.raises(CalibrationError, match="alpha 1"):
        loaded.set_alpha(0.5)
    assert loaded.threshold_ == limited.threshold_


def test_a_control_limit_with_the_latent_term_in_the_score_is_refused_in_one_line():
    with pytest.raises(ValidationError, match="reconstruction error alone: set alpha 1, not 'auto'"):
        VAEDetector(window=WINDOW, threshold_method="control_limit")
