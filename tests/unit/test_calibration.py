import numpy as np
import pytest
from scipy import stats

from vae.calibration import (
    conformal_pvalues,
    conformal_rank,
    conformal_threshold,
    gaussian_tail_threshold,
    realized_fpr_interval,
)
from vae.errors import CalibrationError


def test_conformal_threshold_is_the_ceil_order_statistic():
    scores = np.random.default_rng(0).permutation(np.arange(1, 200.0))  # 199 scores, 1..199
    assert conformal_threshold(scores, 0.01) == 198.0  # ceil(200 * 0.99) = 198th smallest
    assert conformal_threshold(scores, 0.1) == 180.0


def test_fpr_below_one_over_n_plus_one_is_refused():
    with pytest.raises(CalibrationError, match="needs at least 99 held-out normal rows, got 50"):
        conformal_threshold(np.arange(50.0), 0.01)


@pytest.mark.parametrize("bad", [np.array([]), np.array([1.0, np.nan])])
def test_unusable_scores_are_refused(bad):
    with pytest.raises(CalibrationError):
        conformal_threshold(bad, 0.5)


def test_conformal_threshold_hits_the_fpr_on_fresh_normal_data():
    rng = np.random.default_rng(1)
    realized = [
        (rng.standard_normal(20_000) > conformal_threshold(rng.standard_normal(2_000), 0.01)).mean()
        for _ in range(200)
    ]
    # exceedance of the k-th order statistic has mean (n + 1 - k) / (n + 1) = 20/2001 < 0.01
    assert np.mean(realized) == pytest.approx(20 / 2001, abs=0.0008)


def test_gaussian_tail_threshold_extrapolates_on_gaussian_scores():
    scores = np.random.default_rng(2).standard_normal(5_000)
    assert gaussian_tail_threshold(scores, 0.001) == pytest.approx(stats.norm.ppf(0.999), abs=0.1)


def test_conformal_pvalues_are_uniform_on_normal_data():
    rng = np.random.default_rng(3)
    calibration = np.sort(rng.standard_normal(3_000))
    p = conformal_pvalues(calibration, rng.standard_normal(3_000))
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert p.min() >= 1 / 3001 and p.max() <= 1.0


def test_pvalue_of_an_extreme_score_is_the_smallest_possible():
    assert conformal_pvalues(np.arange(99.0), np.array([1e9]))[0] == pytest.approx(0.01)


def test_realized_fpr_interval_covers_the_true_fpr_at_its_confidence():
    # Normal scores are N(0, 1), so a threshold's true FPR is exactly 1 - Phi(t).
    rng, n, fpr = np.random.default_rng(4), 200, 0.01
    low, high = realized_fpr_interval(n, conformal_rank(n, fpr), 0.9)
    true_fprs = stats.norm.sf([conformal_threshold(rng.standard_normal(n), fpr) for _ in range(2_000)])
    assert np.mean((true_fprs >= low) & (true_fprs <= high)) == pytest.approx(0.9, abs=0.02)
    assert low < fpr < high


def test_realized_fpr_interval_narrows_with_more_calibration_rows():
    small = realized_fpr_interval(200, conformal_rank(200, 0.01))
    large = realized_fpr_interval(20_000, conformal_rank(20_000, 0.01))
    assert large[1] - large[0] < (small[1] - small[0]) / 5


@pytest.mark.parametrize(("n", "rank", "confidence"), [(100, 0, 0.95), (100, 101, 0.95), (100, 99, 1.0)])
def test_realized_fpr_interval_refuses_impossible_arguments(n, rank, confidence):
    with pytest.raises(CalibrationError):
        realized_fpr_interval(n, rank, confidence)
