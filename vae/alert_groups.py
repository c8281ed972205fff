"""Flagged rows grouped into causes: HDBSCAN on each row's per-feature share of its reconstruction error.

Two rows flagged for the same reason (one sensor stuck high, another drifting) put their reconstruction
error on the same features, whatever their magnitude; shares (a row's contributions divided by their sum)
keep that and drop the magnitude, so HDBSCAN finds one dense group per cause and leaves one-off rows
ungrouped (group -1). `benchmarks/alert_groups.py` measures this against the latent means and the raw rows.

Example:
    >>> grouping = group_alerts(detector.feature_contributions(flagged), detector.score(flagged))
    >>> grouping.labels, [g.drivers for g in grouping.groups]
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import HDBSCAN
from sklearn.neighbors import KNeighborsClassifier

UNGROUPED = -1
GROUP_SHARE = 0.03  # the smallest group, as a share of the alerts (and at least `min_group` rows)


@dataclass(frozen=True)
class AlertGroup:
    """One cause: its rows' count, the features that carry their error, their score range, examples."""

    group: int
    size: int
    drivers: dict[str, float]  # feature -> mean share of the reconstruction error, largest first
    score_min: float
    score_max: float
    examples: tuple[object, ...]  # index labels of the highest-scoring rows


@dataclass(frozen=True)
class AlertGrouping:
    """Each flagged row's group (UNGROUPED for rows in no group) and the groups, largest first."""

    labels: np.ndarray
    groups: tuple[AlertGroup, ...]

    def records(self) -> list[dict[str, Any]]:
        """The groups as JSON-ready dicts (examples as text)."""
        return [asdict(g) | {"examples": [str(e) for e in g.examples]} for g in self.groups]

    def table(self) -> pd.DataFrame:
        """One line per group: size, drivers (as text), score range, example rows."""
        return groups_frame(self.records())


def groups_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One line of text per group, from `AlertGrouping.records()` (or the same read back from JSON)."""
    return pd.DataFrame(
        [
            {
                "group": g["group"],
                "rows": g["size"],
                "drivers": ", ".join(f"{name} {share:.0%}" for name, share in g["drivers"].items()),
                "score range": f"{g['score_min']:.3g} - {g['score_max']:.3g}",
                "examples": ", ".join(g["examples"]),
            }
            for g in records
        ],
        columns=["group", "rows", "drivers", "score range", "examples"],
    )


def contribution_shares(contributions: pd.DataFrame) -> np.ndarray:
    """Each row's contributions divided by their sum (rows of zeros stay zero)."""
    values = contributions.to_numpy(dtype=np.float64)
    total = values.sum(axis=1, keepdims=True)
    return np.divide(values, total, out=np.zeros_like(values), where=total > 0)


def group_alerts(
    contributions: pd.DataFrame,
    scores: np.ndarray,
    min_group: int = 5,
    max_fit_rows: int = 5000,
    n_drivers: int = 3,
    n_examples: int = 3,
    seed: int = 0,
) -> AlertGrouping:
    """Group flagged rows by where their reconstruction error lies.

    Args:
        contributions: the flagged rows' per-feature contributions (`VAEDetector.feature_contributions`).
        scores: their scores, in the same order.
        min_group: the fewest rows a group may have, and HDBSCAN's `min_samples` (its density).
        max_fit_rows: HDBSCAN runs on a seeded sample of at most this many rows; the others take the group
            of their nearest sampled row, so a day of many alerts stays within seconds.
        n_drivers: features listed per group.
        n_examples: example rows per group (the highest scores).
        seed: the sample's seed.
    """
    scores = np.asarray(scores, dtype=np.float64)
    shares = contribution_shares(contributions)
    labels = cluster_rows(shares, min_group, max_fit_rows, seed)
    names = [str(c) for c in contributions.columns]
    found = sorted(set(labels.tolist()) - {UNGROUPED}, key=lambda g: -int((labels == g).sum()))
    renumbered = np.full(len(labels), UNGROUPED, dtype=np.int64)
    groups = []
    for number, found_as in enumerate(found):
        rows = np.flatnonzero(labels == found_as)
        renumbered[rows] = number
        mean_share = shares[rows].mean(axis=0)
        best = rows[np.argsort(-scores[rows])[:n_examples]]
        groups.append(
            AlertGroup(
                group=number,
                size=len(rows),
                drivers={names[j]: float(mean_share[j]) for j in np.argsort(-mean_share)[:n_drivers]},
                score_min=float(scores[rows].min()),
                score_max=float(scores[rows].max()),
                examples=tuple(contributions.index[best]),
            )
        )
    return AlertGrouping(renumbered, tuple(groups))


def cluster_rows(
    values: np.ndarray, min_group: int = 5, max_fit_rows: int = 5000, seed: int = 0
) -> np.ndarray:
    """HDBSCAN labels of rows (on a seeded sample when there are many; the rest by nearest sampled row).

    Groups hold at least `GROUP_SHARE` of the rows: a day of many alerts along one cause reads as one
    group, not dozens split by how far the cause went (measured on the demo's failing sensor).
    """
    n = len(values)
    if n < max(2, min_group):
        return np.full(n, UNGROUPED, dtype=np.int64)
    rng = np.random.default_rng(seed)
    fit = np.sort(rng.choice(n, max_fit_rows, replace=False)) if n > max_fit_rows else None
    sample = values if fit is None else values[fit]
    size = max(min_group, math.ceil(GROUP_SHARE * len(sample)))
    labels = HDBSCAN(min_cluster_size=size, min_samples=min_group, copy=True).fit_predict(sample)
    if fit is None:
        return labels.astype(np.int64)
    return KNeighborsClassifier(n_neighbors=1).fit(sample, labels).predict(values).astype(np.int64)
