"""Figures people would rather look at than read."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vae.latent_map import LatentMap


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


def latent_scatter(points: LatentMap, title: str, flagged_label: str = "flagged") -> Figure:
    """The latent map: reference rows in grey, flagged rows coloured by group (ungrouped as black x)."""
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    ref = points.reference
    ax.scatter(ref[:, 0], ref[:, 1], s=6, c="#b0b0b0", alpha=0.6, label=f"normal (n={len(ref):,})")
    for group in sorted(set(points.labels.tolist())):
        mine = points.flagged[points.labels == group]
        name = f"{flagged_label}, group {group}" if group >= 0 else f"{flagged_label}, ungrouped"
        colour = "black" if group < 0 else None
        marker = "x" if group < 0 else "o"
        ax.scatter(mine[:, 0], mine[:, 1], s=14, marker=marker, c=colour, label=f"{name} (n={len(mine):,})")
    ax.set(title=f"{title} ({points.method.upper()} of the posterior means)", xticks=[], yticks=[])
    ax.legend(fontsize="small", loc="best")
    return fig


def alert_history(
    days: pd.DataFrame, span: tuple[date, date], target_rate: float, changes: list[tuple[date, str]]
) -> Figure:
    """Alert rate and score quantiles by day over the `span` (first, last day); champion moves marked.

    `days` has the columns day, alert_rate, q50, q90 and q99.
    """
    fig = Figure(figsize=(10, 5), layout="constrained")
    rate, quantiles = fig.subplots(2, 1, sharex=True)
    rate.plot(days["day"], 100 * days["alert_rate"], marker="o", label="alert rate")
    rate.axhline(100 * target_rate, color="black", linestyle="--", label=f"target {target_rate:.1%}")
    rate.set(ylabel="alerts, % of rows", title="Alert volume and scores per day")
    for column in ("q50", "q90", "q99"):
        quantiles.plot(days["day"], days[column], marker=".", label=f"score {column}")
    quantiles.set(
        ylabel="score", yscale="symlog", xlim=(span[0] - timedelta(days=1), span[1] + timedelta(days=1))
    )
    for ax in (rate, quantiles):
        for day, text in changes:
            ax.axvline(day, color="tab:red", alpha=0.5)
            if ax is rate:
                ax.annotate(text, (day, 1), xycoords=("data", "axes fraction"), rotation=90, va="top")
        ax.legend(fontsize="small", loc="upper left")
    return fig


def reconstruction_bars(row: pd.Series, rebuilt: pd.Series, shares: pd.Series) -> Figure:
    """One flagged row: its value beside the reconstruction per feature (standardized), and each share."""
    fig = Figure(figsize=(10, 3.2), layout="constrained")
    values, error = fig.subplots(1, 2, width_ratios=(3, 2))
    x = np.arange(len(row))
    values.bar(x - 0.2, row.to_numpy(), 0.4, label="input")
    values.bar(x + 0.2, rebuilt.to_numpy(), 0.4, label="reconstruction")
    values.set_xticks(x, [str(c) for c in row.index], rotation=60, fontsize="small")
    values.set(title="input beside its reconstruction", ylabel="standardized value")
    values.legend(fontsize="small")
    error.barh(x, 100 * shares.to_numpy(), color="tab:red")
    error.set_yticks(x, [str(c) for c in shares.index], fontsize="small")
    error.invert_yaxis()
    error.set(xlabel="% of the reconstruction error", title="where the error is")
    return fig
