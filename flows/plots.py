"""Figures people would rather look at than read."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def score_distribution(
    normal: np.ndarray, threshold: float, anomalies: np.ndarray | None = None, title: str = "Anomaly scores"
) -> Figure:
    """Histogram of scores of holdout normal rows (and known anomalies), with the threshold marked."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    pools = [normal] + ([anomalies] if anomalies is not None and len(anomalies) else [])
    bins = np.histogram_bin_edges(np.concatenate(pools), bins=60)
    ax.hist(normal, bins=bins, alpha=0.6, label=f"holdout normal (n={len(normal)})", color="tab:blue")
    if len(pools) > 1:
        ax.hist(pools[1], bins=bins, alpha=0.6, label=f"known anomalies (n={len(pools[1])})", color="tab:red")
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set(yscale="log", xlabel="score (higher = more anomalous)", ylabel="rows", title=title)
    ax.legend()
    return fig
