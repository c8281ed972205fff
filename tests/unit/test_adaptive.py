"""Adaptive conformal thresholds: the alert rate they hold when the stream moves, and their state."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vae import Adaptive, StreamState, VAEDetector, advance
from vae.adaptive import AdaptiveState, adapt, level_threshold
from vae.calibration import conformal_threshold
from vae.errors import InputError

RNG = np.random.default_rng(0)
CALIBRATION = RNG.normal(size=2000)


@pytest.mark.parametrize("level", [0.5, 0.1, 0.01, 0.001])
def test_the_threshold_at_a_level_is_the_conformal_one(level):
    assert level_threshold(np.sort(CALIBRATION), level) == conformal_threshold(CALIBRATION, level)
    assert level_threshold(np.sort(CALIBRATION), 0.0) == np.inf
    assert level_threshold(np.sort(CALIBRATION), 1.0) == -np.inf


@pytest.mark.parametrize("gamma", [0.001, 0.01])
def test_the_alert_rate_holds_its_target_on_a_stream_that_moved(gamma):
    target, steps = 0.01, 20_000
    moved = RNG.normal(loc=1.5, size=steps)  # every score higher than calibration ever saw
    fixed = moved > conformal_threshold(CALIBRATION, target)
    state, flags = adapt(CALIBRATION, moved, target, gamma, AdaptiveState(target))
    bound = (max(target, 1 - target) + gamma) / (gamma * steps)  # Gibbs & Candes 2021, Proposition 4.1
    assert fixed.mean() > 0.2  # a fixed threshold alerts on a fifth of the stream
    assert abs(flags.is_anomaly.mean() - target) <= bound
    assert state.steps == steps and state.level == flags.level[-1]


@pytest.mark.parametrize("gamma", [1e-5, 1e-4, 1e-3])
def test_a_sustained_anomaly_is_alerted_for_about_target_over_gamma_steps_then_at_the_target(gamma):
    target, anomaly = 0.01, RNG.normal(loc=4, size=3000)
    alerts = adapt(CALIBRATION, anomaly, target, gamma, AdaptiveState(target))[1].is_anomaly.sum()
    expected = target / gamma + target * len(anomaly)  # the budget spent at once, then the target rate
    assert 0.85 * expected <= alerts <= 1.15 * expected


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.integers(1, 499), max_size=5), gamma=st.floats(1e-4, 0.1))
def test_adapting_in_chunks_equals_adapting_the_whole_stream(cuts, gamma):
    stream = RNG.normal(loc=0.5, size=500)
    whole = adapt(CALIBRATION, stream, 0.05, gamma, AdaptiveState(0.05))[1]
    state, parts = AdaptiveState(0.05), []
    for start, end in itertools.pairwise([0, *sorted(set(cuts)), len(stream)]):
        state, flags = adapt(CALIBRATION, stream[start:end], 0.05, gamma, state)
        parts.append(flags.is_anomaly)
    np.testing.assert_array_equal(np.concatenate(parts), whole.is_anomaly)
    assert state.level == pytest.approx(whole.level[-1])


def test_bad_settings_are_named():
    with pytest.raises(InputError, match="calibration"):
        adapt(np.array([]), np.ones(3), 0.01, 0.01, AdaptiveState(0.01))
    with pytest.raises(InputError, match="gamma"):
        adapt(CALIBRATION, np.ones(3), 0.01, 0.0, AdaptiveState(0.01))


def test_a_stream_with_adaptive_flags_carries_its_level_from_call_to_call(pump: pd.DataFrame):
    options = {"epochs": 3, "hidden_dims": (16,), "latent_dim": 2, "device": "cpu"}
    detector = VAEDetector(window=5, seed=0, **options).fit(pump.iloc[:2000])
    series = pump.iloc[6000:6400].to_numpy(np.float32)  # hours later: the pump runs at another level
    rule = Adaptive(detector.smoothed_calibration(0.9), detector.threshold_fpr_, 1e-3)
    whole_state, whole = advance(detector, StreamState(), series, 0.9, np.inf, rule)
    state, flags = StreamState(), []
    for start in range(0, len(series), 70):
        state, out = advance(detector, state, series[start : start + 70], 0.9, np.inf, rule)
        flags.append(out.is_anomaly)
    np.testing.assert_array_equal(np.concatenate(flags), whole.is_anomaly)
    assert state.level == pytest.approx(whole_state.level) and state.level != detector.threshold_fpr_
    fixed = whole.smoothed > detector.smoothed_threshold(0.9)
    assert whole.is_anomaly.mean() <= fixed.mean()
    assert rule.threshold(state.level) == level_threshold(np.sort(rule.calibration), state.level)
