"""Figures people would rather look at than read."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def score_distribution(
    pools: dict[str, np.ndarray], threshold: float, title: str = "Anomaly scores"
) -> Figure:
    """Overlaid histograms of score pools (e.g. holdout normal rows, known anomalies), threshold marked."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    shown = {label: scores for label, scores in pools.items() if len(scores)}
    bins = np.histogram_bin_edges(np.concatenate(list(shown.values())), bins=60)
    for label, scores in shown.items():
        ax.hist(scores, bins=bins, alpha=0.6, label=f"{label} (n={len(scores):,})", density=True)
    ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:.3g}")
    ax.set(yscale="log", xlabel="score (higher = more anomalous)", ylabel="density", title=title)
    ax.legend()
    return fig
