"""Score drift and alert volume: real shifts are flagged; same-distribution splits and tiny shifts are not."""

import numpy as np
import pytest

from vae import VAEDetector
from validation.drift import DriftPolicy, alert_volume, dkw_bound, score_drift

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
