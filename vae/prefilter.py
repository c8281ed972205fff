"""Isolation-Forest cleaning of training rows: drop the most outlying share before fitting the VAE.

Example:
    >>> kept, report = drop_outliers(X, fraction=0.02, seed=0)
    >>> report.n_dropped
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest


@dataclass(frozen=True)
class PrefilterReport:
    """How many training rows the prefilter saw and dropped."""

    n_seen: int
    n_dropped: int


def drop_outliers(X: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, PrefilterReport]:
    """Return the rows of X an Isolation Forest finds least isolated, without the top `fraction`."""
    if fraction <= 0:
        return X, PrefilterReport(len(X), 0)
    forest = IsolationForest(n_estimators=100, random_state=seed).fit(X)
    scores = -forest.score_samples(X)  # higher = more outlying
    n_drop = round(fraction * len(X))
    keep = np.sort(np.argsort(scores)[: len(X) - n_drop])
    return X[keep], PrefilterReport(len(X), n_drop)
