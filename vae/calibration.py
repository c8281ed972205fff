"""Thresholds and p-values from held-out normal scores (split conformal); Gaussian-tail and control limits.

Example:
    >>> t = conformal_threshold(np.arange(999.0), fpr=0.01)   # the 990th smallest of 999
    >>> conformal_pvalues(np.arange(999.0), np.array([998.5]))
    array([0.001])
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from vae.errors import CalibrationError

IQR_TO_STD = 1.3489795  # IQR of a standard normal: robust spreads are on the std scale


def _checked(scores: np.ndarray, fpr: float) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0:
        raise CalibrationError("no held-out scores to calibrate on")
    if not np.isfinite(scores).all():
        raise CalibrationError("held-out scores contain NaN/inf")
    if not 0 < fpr < 1:
        raise CalibrationError(f"fpr must be in (0, 1), got {fpr}")
    return scores


def conformal_rank(n: int, fpr: float) -> int:
    """Rank (from 1) of the conformal threshold among n held-out scores: ceil((n+1)(1-fpr)).

    It exceeds n when n scores cannot resolve fpr.
    """
    return math.ceil((n + 1) * (1 - fpr))


def realized_fpr_law(n: int, rank: int) -> tuple[int, int]:
    """Beta(a, b) parameters of the realized FPR of a threshold at the `rank`-th smallest of n normal scores.

    Under exchangeability a new normal score exceeds the k-th smallest of n with a probability that is
    itself random, Beta(n + 1 - k, k): small calibration sets give visibly uncertain false-positive rates.
    """
    if not 1 <= rank <= n:
        raise CalibrationError(f"rank must be in [1, {n}], got {rank}")
    return n + 1 - rank, rank


def realized_fpr_interval(n: int, rank: int, confidence: float = 0.95) -> tuple[float, float]:
    """Central `confidence` interval of the realized FPR of the `rank`-th smallest of n normal scores."""
    if not 0 < confidence < 1:
        raise CalibrationError(f"confidence must be in (0, 1), got {confidence}")
    from scipy import stats  # here: importing scipy.stats costs 0.5 s that most callers never need

    tail = (1 - confidence) / 2
    low, high = stats.beta.ppf([tail, 1 - tail], *realized_fpr_law(n, rank))
    return float(low), float(high)


def conformal_threshold(scores: np.ndarray, fpr: float) -> float:
    """The ceil((n+1)(1-fpr))-th smallest of n held-out normal scores.

    A new normal score exceeds it with probability at most fpr (exchangeability), and close to fpr.

    Raises:
        CalibrationError: fpr < 1/(n+1), which n held-out scores cannot resolve.
    """
    scores = _checked(scores, fpr)
    n = scores.size
    k = conformal_rank(n, fpr)
    if k > n:
        raise CalibrationError(
            f"target fpr {fpr} needs at least {math.ceil(1 / fpr) - 1} held-out normal rows, got {n}"
        )
    return float(np.partition(scores, k - 1)[k - 1])


def gaussian_tail_threshold(scores: np.ndarray, fpr: float) -> float:
    """Robust Gaussian fit (median, IQR/1.349) of held-out scores, cut at its (1 - fpr) quantile.

    Extrapolates below 1/(n+1); only as good as the Gaussian assumption about the score tail.
    """
    scores = _checked(scores, fpr)
    q25, q50, q75 = np.quantile(scores, [0.25, 0.5, 0.75])
    return float(q50 + NormalDist().inv_cdf(1 - fpr) * (q75 - q25) / IQR_TO_STD)


CONTROL_MARGIN = 4 / 3  # how far an in-sample control limit sits above its quantile


def control_limit(errors: np.ndarray, fpr: float) -> float:
    """An upper control limit: CONTROL_MARGIN times the (1 - fpr) quantile of in-sample errors (>= 0).

    Process control's way (and SKAB's Conv-AE's): the limit comes from the rows the model was fitted
    on, whose errors run lower than new normal rows', so it is widened by a third instead of holding
    rows out. No FPR guarantee: it trades one for training on every row, which short series need.
    """
    errors = _checked(errors, fpr)
    return float(np.quantile(errors, 1 - fpr) * CONTROL_MARGIN)


def conformal_pvalues(calibration_sorted: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """P = (1 + #{held-out >= s}) / (n + 1) for each score s; uniform on normal data.

    Args:
        calibration_sorted: held-out normal scores, sorted ascending.
        scores: scores to turn into p-values.
    """
    n = calibration_sorted.size
    n_greater_equal = n - np.searchsorted(calibration_sorted, scores, side="left")
    return (1.0 + n_greater_equal) / (n + 1.0)


DRIFT_FLOOR = 0.3  # KS between the halves of a time-ordered calibration set above which it has drifted


def calibration_drift(scores_in_order: np.ndarray) -> tuple[float, bool]:
    """KS statistic between the halves of time-ordered calibration scores, and whether they drifted.

    Split conformal assumes calibration scores and future normal scores are exchangeable. The future is
    unseen at fit, but a calibration window whose own halves differ this much is already moving, and its
    threshold will not hold its FPR range. Windows of a series overlap, so their scores are correlated
    and a KS p-value would call every wiggle significant: the verdict uses the statistic (the largest
    gap between the halves' score CDFs), drifted at `DRIFT_FLOOR` or more.
    """
    from scipy.stats import ks_2samp

    half = len(scores_in_order) // 2
    if half < 10:
        return 0.0, False
    statistic = float(ks_2samp(scores_in_order[:half], scores_in_order[half:]).statistic)
    return statistic, statistic >= DRIFT_FLOOR
