"""Drift history in Evidently's own UI: each monitor run's snapshots added to a local Evidently workspace.

One project per dataset, with a dashboard of the per-feature drift (normalized Wasserstein distance, the
effect size the verdict uses), the score drift (KS p-value of the window's scores against the calibration
scores) and the alert rate, one point per monitor run at its window's day. Look at it with
``evidently ui --workspace HOME/evidently`` (http://127.0.0.1:8000).

Example:
    >>> workspace = EvidentlyWorkspace(settings.home / "evidently")
    >>> workspace.add("mammography", features.snapshot, scores_snapshot)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from filelock import FileLock

VALUE_DRIFT, MEAN_VALUE = "evidently:metric_v2:ValueDrift", "evidently:metric_v2:MeanValue"


class EvidentlyWorkspace:
    """A local Evidently workspace folder; monitor runs of several processes may add to it at once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def add(self, dataset: str, features: Any, scores: Any) -> str:
        """Add one monitor run's feature and score snapshots to the dataset's project; returns its id."""
        from evidently.ui.workspace import Workspace  # here: importing it takes seconds

        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(self.folder / ".sentinel.lock"):  # one project per dataset, even from two workers
            workspace = Workspace(str(self.folder))
            found = workspace.search_project(dataset)
            project = found[0] if found else self._create(workspace, dataset, _columns(features))
            workspace.add_run(project.id, features)
            workspace.add_run(project.id, scores)
        return str(project.id)

    @staticmethod
    def _create(workspace: Any, dataset: str, columns: list[str]) -> Any:
        """The dataset's project, with its drift dashboard."""
        from evidently.sdk.models import PanelMetric
        from evidently.sdk.panels import line_plot_panel

        project = workspace.create_project(dataset, description=f"VAE Sentinel drift monitoring of {dataset}")
        per_feature = [
            PanelMetric(legend=c, metric=VALUE_DRIFT, metric_labels={"column": c, "method": "wasserstein"})
            for c in columns
        ]
        panels = [
            line_plot_panel(
                "Feature drift (normalized Wasserstein distance, window vs training rows)", per_feature
            ),
            line_plot_panel(
                "Score drift (KS p-value, window vs calibration scores; low = moved)",
                [PanelMetric(legend="score", metric=VALUE_DRIFT, metric_labels={"column": "score"})],
                size="half",
            ),
            line_plot_panel(
                "Alert rate (share of rows above the threshold)",
                [PanelMetric(legend="alert rate", metric=MEAN_VALUE, metric_labels={"column": "alert"})],
                size="half",
            ),
        ]
        for panel in panels:
            project.dashboard.add_panel(panel)
        return project


def _columns(snapshot: Any) -> list[str]:
    """The feature columns a feature snapshot measured, in order."""
    configs = (m["config"] for m in snapshot.dict()["metrics"])
    return list(dict.fromkeys(c["column"] for c in configs if c.get("method") == "wasserstein"))
