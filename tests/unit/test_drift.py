"""Score drift and alert volume: real shifts are flagged; same-distribution splits and tiny shifts are not."""

import numpy as np
import pandas as pd
import pytest

from vae import VAEDetector
from validation.drift import DriftPolicy, alert_volume, assess_drift, dkw_bound, feature_drift, score_drift

POLICY = DriftPolicy()


@pytest.fixture(scope="module")
def cardio_scores(cardio):
    """Scores of a detector fitted on half of cardio's normal rows: other normal rows and the anomalies."""
    normal = cardio.X[cardio.y == 0]
    detector = VAEDetector(seed=0, epochs=20, device="cpu").fit(normal[::2])
    return detector, detector.score(normal[1::2]), detector.score(cardio.X[cardio.y == 1])


def test_same_distribution_splits_of_real_scores_are_not_drift(cardio_scores):
    _, normal, _ = cardio_scores
    rng = np.random.default_rng(0)
    alarms = 0
    for seed in range(20):
        order = rng.permutation(len(normal))
        half = len(order) // 2
        alarms += score_drift(normal[order[:half]], normal[order[half:]], POLICY, seed).drifted
    assert alarms == 0


def test_a_window_with_real_anomalies_mixed_in_is_drift(cardio_scores):
    _, normal, anomalies = cardio_scores
    window = np.concatenate([normal[:400], anomalies])  # about 30% anomalous
    drift = score_drift(normal[400:], window, POLICY)
    assert drift.drifted and "scores moved" in drift.reason


def test_a_negligible_shift_in_a_huge_window_is_significant_but_not_drift():
    rng = np.random.default_rng(1)
    reference, current = rng.normal(size=200_000), rng.normal(0.03, 1.0, size=1_000_000)
    drift = score_drift(reference, current, POLICY)
    assert drift.p_value < POLICY.p_value and not drift.drifted and "below floor" in drift.reason
    assert drift.n_current == POLICY.max_sample  # sampled
    assert drift.error_bound == pytest.approx(2 * dkw_bound(POLICY.max_sample, POLICY.confidence))


def test_a_shift_of_half_a_standard_deviation_is_drift():
    rng = np.random.default_rng(2)
    assert score_drift(rng.normal(size=5_000), rng.normal(0.5, 1.0, size=5_000), POLICY).drifted


def test_the_dkw_bound_shrinks_with_the_square_root_of_n():
    assert dkw_bound(400, 0.99) == pytest.approx(2 * dkw_bound(1600, 0.99))
    assert dkw_bound(50_000, 0.99) < 0.01


def test_alert_volume_at_the_target_is_fine_and_far_above_it_is_not(cardio_scores):
    detector, normal, anomalies = cardio_scores
    usual = alert_volume(normal > detector.threshold_, detector.config.target_fpr, POLICY)
    assert not usual.excessive
    burst = alert_volume(np.concatenate([normal, anomalies]) > detector.threshold_, 0.01, POLICY)
    assert burst.excessive and "above target" in burst.reason


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="non-empty, finite"):
        score_drift(np.array([]), np.array([1.0]), POLICY)
    with pytest.raises(ValueError, match="non-empty, finite"):
        score_drift(np.array([1.0, np.nan]), np.array([1.0]), POLICY)
    with pytest.raises(ValueError, match="at least one row"):
        alert_volume(np.array([], dtype=bool), 0.01, POLICY)


@pytest.fixture(scope="module")
def cardio_frames(cardio):
    normal = pd.DataFrame(cardio.X[cardio.y == 0], columns=[f"c{i:02d}" for i in range(cardio.X.shape[1])])
    order = np.random.default_rng(0).permutation(len(normal))
    half = len(order) // 2
    return normal.iloc[order[:half]], normal.iloc[order[half:]]


def test_a_same_distribution_split_of_real_rows_is_not_data_drift(cardio_frames):
    reference, current = cardio_frames
    drift = feature_drift(reference, current, POLICY)
    assert not drift.drifted and drift.drifted_columns == [] and "no data drift" in drift.reason


def test_a_real_shift_in_some_features_is_data_drift(cardio_frames):
    reference, current = cardio_frames
    moved = ["c00", "c03", "c07", "c10", "c12", "c15"]
    shifted = current.assign(**{c: current[c] + 0.5 * reference[c].std() for c in moved})
    drift = feature_drift(reference, shifted, POLICY)
    assert drift.drifted and set(drift.drifted_columns) == set(moved)
    assert all(c.effect >= POLICY.effect_floor for c in drift.columns if c.column in moved)


def test_a_negligible_feature_shift_in_a_huge_window_is_not_data_drift():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rng.normal(size=(100_000, 3)), columns=["a", "b", "c"])
    current = pd.DataFrame(
        rng.normal(size=(1_000_000, 3)) + np.array([0.03, 0.0, 0.0]), columns=["a", "b", "c"]
    )
    drift = feature_drift(reference, current, POLICY)
    a = drift.columns[0]
    assert a.p_value < POLICY.p_value and a.effect < POLICY.effect_floor and not a.drifted
    assert drift.n_current == POLICY.max_sample


def test_feature_drift_needs_every_reference_column(cardio_frames):
    reference, current = cardio_frames
    with pytest.raises(ValueError, match=r"missing \['c01'\]"):
        feature_drift(reference, current.drop(columns=["c01"]), POLICY)


def test_a_tenth_of_a_standard_deviation_in_two_features_of_a_large_window_is_drift():
    rng = np.random.default_rng(5)
    columns = [f"f{i:02d}" for i in range(20)]
    reference = pd.DataFrame(rng.normal(size=(20_000, 20)), columns=columns)
    current = pd.DataFrame(rng.normal(size=(100_000, 20)), columns=columns)
    current[["f03", "f11"]] += 0.1
    drift = feature_drift(reference, current, POLICY)
    assert drift.drifted and drift.drifted_columns == ["f03", "f11"]


@pytest.mark.slow
def test_many_same_distribution_splits_of_real_rows_rarely_drift(cardio_frames):
    reference, current = cardio_frames
    normal = pd.concat([reference, current])
    flagged = 0
    for seed in range(10):
        order = np.random.default_rng(seed).permutation(len(normal))
        half = len(order) // 2
        flagged += feature_drift(normal.iloc[order[:half]], normal.iloc[order[half:]], POLICY).drifted
    assert flagged <= 1  # family-wise level 1% per split


def test_one_verdict_combines_the_three_checks(cardio, cardio_scores):
    detector, normal_scores, _ = cardio_scores
    normal = cardio.X[cardio.y == 0]
    columns = [f"c{i:02d}" for i in range(normal.shape[1])]
    reference, rows = pd.DataFrame(normal[::2], columns=columns), pd.DataFrame(normal[1::2], columns=columns)
    flags = detector.predict(normal[1::2]).is_anomaly
    stable = assess_drift(
        reference, detector.calibration_scores_, rows, normal_scores, flags, detector.threshold_fpr_, POLICY
    )
    assert not stable.drifted and len(stable.reasons) == 3 and stable.summary()["verdict"] == "stable"

    mixed = np.vstack([normal[1::2], cardio.X[cardio.y == 1]])
    prediction = detector.predict(mixed)
    with_anomalies = (
        reference,
        detector.calibration_scores_,
        pd.DataFrame(mixed, columns=columns),
        prediction.score,
        prediction.is_anomaly,
        detector.threshold_fpr_,
        POLICY,
    )
    moved = assess_drift(*with_anomalies)
    assert moved.drifted and moved.alerts.excessive and moved.summary()["verdict"] == "drift"
    assert moved.reasons == [part.reason for part in (moved.features, moved.scores) if part.drifted] + [
        moved.alerts.reason
    ]
    assert moved.scores.drifted and "scores moved away from the calibration scores" in moved.alerts.reason
    assert "exchangeability" in moved.alerts.reason and "exchangeability" not in stable.alerts.reason
    drifting = assess_drift(*with_anomalies, calibration_drifted=True)
    assert "calibration window drifted within itself" in drifting.alerts.reason


def test_alert_volume_allows_for_the_randomness_of_a_small_calibration_set():
    """A threshold set on 200 normal scores lands low now and then; that alone is no alarm."""
    rng = np.random.default_rng(0)
    plain = calibrated = 0
    for _ in range(400):
        calibration = rng.normal(size=200)
        threshold = np.sort(calibration)[int(np.ceil(201 * 0.99)) - 1]  # the conformal order statistic
        flags = rng.normal(size=400) > threshold
        plain += alert_volume(flags, 0.01, POLICY).excessive
        calibrated += alert_volume(flags, 0.01, POLICY, n_calibration=200).excessive
    assert calibrated / 400 <= 0.01 < plain / 400
