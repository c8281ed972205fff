"""Labelled evaluation of a fitted detector: ranking quality and behaviour at the calibrated threshold.

Example:
    >>> report = evaluate(det, X_test, y_test)
    >>> report.auroc, report.realized_fpr
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from vae.errors import InputError


@dataclass(frozen=True)
class EvaluationReport:
    """AUROC/AUPRC of the scores; false-positive rate and recall of the flags."""

    auroc: float
    auprc: float
    realized_fpr: float
    recall: float
    n_normal: int
    n_anomalies: int


def evaluate_scores(scores: np.ndarray, flags: np.ndarray, y: np.ndarray) -> EvaluationReport:
    """Evaluate scores and flags against labels y (1 = anomaly, 0 = normal).

    Raises:
        InputError: lengths differ, or y lacks one of the two classes.
    """
    y = np.asarray(y).astype(int).ravel()
    if not len(scores) == len(flags) == len(y):
        raise InputError(f"scores, flags and labels differ in length: {len(scores)}, {len(flags)}, {len(y)}")
    normal, anomalous = y == 0, y == 1
    if not normal.any() or not anomalous.any():
        raise InputError("labels need both normal (0) and anomalous (1) rows")
    return EvaluationReport(
        auroc=float(roc_auc_score(y, scores)),
        auprc=float(average_precision_score(y, scores)),
        realized_fpr=float(flags[normal].mean()),
        recall=float(flags[anomalous].mean()),
        n_normal=int(normal.sum()),
        n_anomalies=int(anomalous.sum()),
    )


def semi_supervised_split(
    X: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half of the normal rows train; the other half plus every anomaly test (the DTE / ADBench protocol).

    Returns:
        (X_train, X_test, y_test).
    """
    rng = np.random.default_rng(seed)
    normal = np.flatnonzero(y == 0)
    rng.shuffle(normal)
    half = len(normal) // 2
    test = np.concatenate([normal[half:], np.flatnonzero(y == 1)])
    return X[np.sort(normal[:half])], X[test], y[test]


@dataclass(frozen=True)
class SeriesReport:
    """SKAB's point-wise metrics over scored steps: F1, false alarms and missed anomalies (in %)."""

    f1: float
    far: float  # % of normal steps flagged
    mar: float  # % of anomalous steps not flagged
    n_steps: int
    n_anomalous: int


def series_metrics(truth: np.ndarray, flags: np.ndarray) -> SeriesReport:
    """F1, FAR % and MAR % of 0/1 flags against 0/1 labels, step by step (SKAB's outlier protocol).

    Raises:
        InputError: lengths differ.
    """
    truth, flags = np.asarray(truth).astype(bool).ravel(), np.asarray(flags).astype(bool).ravel()
    if len(truth) != len(flags):
        raise InputError(f"labels and flags differ in length: {len(truth)}, {len(flags)}")
    tp, fp, fn = int((flags & truth).sum()), int((flags & ~truth).sum()), int((~flags & truth).sum())
    return SeriesReport(
        f1=2 * tp / max(2 * tp + fp + fn, 1),
        far=100 * fp / max(int((~truth).sum()), 1),
        mar=100 * fn / max(int(truth.sum()), 1),
        n_steps=len(truth),
        n_anomalous=int(truth.sum()),
    )


def series_split(n_steps: int, train_steps: int = 400) -> tuple[slice, slice]:
    """SKAB's split of one experiment: its first `train_steps` steps train, the rest is scored.

    Raises:
        InputError: the series leaves nothing to score.
    """
    if n_steps <= train_steps:
        raise InputError(
            f"a series of {n_steps} steps leaves nothing to score after {train_steps} training steps"
        )
    return slice(0, train_steps), slice(train_steps, n_steps)
