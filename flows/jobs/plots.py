"""Figures people would rather look at than read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure


@dataclass(frozen=True)
class ScorePanel:
    """One model's score pools (e.g. holdout normal rows, known anomalies) and its threshold."""

    title: str
    pools: dict[str, np.ndarray]
    threshold: float


def score_distribution(*panels: ScorePanel) -> Figure:
    """Overlaid histograms of each panel's pools, threshold marked; panels side by side (e.g. two models)."""
    fig = Figure(figsize=(7 * len(panels), 4), layout="constrained")
    for ax, panel in zip(fig.subplots(1, len(panels), squeeze=False)[0], panels, strict=True):
        shown = {label: scores for label, scores in panel.pools.items() if len(scores)}
        bins = np.histogram_bin_edges(np.concatenate(list(shown.values())), bins=60)
        for label, scores in shown.items():
            ax.hist(scores, bins=bins, alpha=0.6, label=f"{label} (n={len(scores):,})", density=True)
        ax.axvline(panel.threshold, color="black", linestyle="--", label=f"threshold {panel.threshold:.3g}")
        ax.set(yscale="log", xlabel="score (higher = more anomalous)", ylabel="density", title=panel.title)
        ax.legend()
    return fig
