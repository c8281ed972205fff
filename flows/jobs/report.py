"""The `report` flow: one self-contained review page per dataset and day, for the person who reads alerts.

Gathers what the other jobs left (the monitor's verdict in MLflow, `score`'s scores, alerts and groups in
the lake, the registry's versions and ledger), adds what only the model can show (the latent map, each
example row beside its reconstruction, champion and candidate scores on the same rows), and writes
HOME/reports/DATASET/review-DAY-TIME.html (`flows/jobs/review/page.py` lays it out). The page is logged to
MLflow (experiment NAME-review) and linked from a Prefect artifact.

Example:
    >>> outcome = report(dataset="mammography", day=date(2026, 12, 1))
    >>> outcome.page  # open it in a browser
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import flow
from prefect.artifacts import create_link_artifact

from flows.adapters.connect import lake_of, registry_of
from flows.adapters.lake import Lake
from flows.adapters.registry import LedgerEntry, LoadedVersion, Registry
from flows.errors import NoReferenceError
from flows.jobs.common import artifact_key, day_parameter, io_task, job_settings, load_champion
from flows.jobs.review import sections
from flows.jobs.review.page import Link, ReviewPage, render
from flows.jobs.review.sections import DayAlerts
from flows.settings import Settings
from vae.alert_groups import groups_frame


@dataclass(frozen=True)
class ReportOutcome:
    """Where the page is, and the MLflow run it was logged with."""

    dataset: str
    day: date
    page: Path
    run_id: str


@dataclass(frozen=True)
class RegistryView:
    """What the registry says about the day: its monitor run, every version with its gates, the ledger."""

    monitor: dict[str, Any] | None
    status: dict[str, Any]
    moves: list[LedgerEntry]


@io_task
def read_history(lake: Lake, dataset: str, span: tuple[date, date]) -> pd.DataFrame:
    """Per scored day of the span (first, last day): version, rows, alert rate and score quantiles."""
    rows = []
    for offset in range((span[1] - span[0]).days + 1):
        current = span[0] + timedelta(days=offset)
        scored = lake.results(dataset, "_scores", current)
        if scored:
            version = max(scored)
            scores = lake.read_table(scored[version])
            q50, q90, q99 = np.quantile(scores["score"], [0.5, 0.9, 0.99])
            rate = float(scores["is_anomaly"].mean())
            rows.append(
                {"day": current, "version": version, "rows": len(scores), "alert_rate": rate}
                | {"q50": q50, "q90": q90, "q99": q99}
            )
    return pd.DataFrame(rows, columns=["day", "version", "rows", "alert_rate", "q50", "q90", "q99"])


@io_task
def read_alerts(lake: Lake, dataset: str, day: date) -> DayAlerts:
    """The newest scoring of the day: its alerts (with groups and contributions) and its groups."""
    written = lake.results(dataset, "_alerts", day)
    if not written:
        return DayAlerts(None, pd.DataFrame(), [], None)
    version = max(written)
    groups = lake.results(dataset, "_groups", day).get(version)
    alerts = lake.read_table(written[version])
    return DayAlerts(str(version), alerts, lake.read_json(groups) if groups else [], written[version])


@io_task
def read_day(lake: Lake, dataset: str, day: date) -> pd.DataFrame:
    """The day's raw rows, with their identity columns."""
    return lake.read_window(dataset, day, 1)


@io_task
def read_registry(registry: Registry, experiment: str, dataset: str, day: date) -> RegistryView:
    """The day's monitor run (with its summary), every version with its gates, and the ledger."""
    return RegistryView(
        registry.monitor_of(experiment, dataset, day), registry.status(), registry.promotions()
    )


@io_task
def load_version(registry: Registry, version: str) -> LoadedVersion:
    """A registered version with its detector."""
    return registry.load_version(version)


@io_task
def load_reference_rows(registry: Registry, version: str) -> pd.DataFrame | None:
    """The version's sampled training rows (its drift reference), or None when it has none."""
    try:
        return registry.load_reference(version)[0]
    except NoReferenceError:
        return None


@io_task
def log_page(registry: Registry, dataset: str, day: date, page: Path) -> str:
    """The page as an MLflow artifact."""
    return registry.log_review(dataset, day, page)


@io_task
def publish_link(dataset: str, day: date, page: Path) -> None:
    """A Prefect artifact linking the page."""
    create_link_artifact(
        page.resolve().as_uri(),
        link_text=f"review of {dataset} on {day}",
        key=artifact_key("review", dataset),
        description=f"the review page of {dataset} on {day}",
    )


@flow(name="report", validate_parameters=False)
def report(
    settings: Settings | None = None, dataset: str | None = None, day: date | None = None
) -> ReportOutcome:
    """Write the review page of one dataset and day; log it to MLflow and link it from Prefect.

    Args:
        settings: the configuration (default: read from sentinel.toml and SENTINEL_* variables).
        dataset: dataset folder in the lake (default: settings.retrain.dataset).
        day: the day to review (default: the newest partition).

    Raises:
        SentinelError: no such dataset or day, an unreachable lake or registry.
    """
    settings = job_settings(settings)
    day = day_parameter(day)
    dataset = dataset or settings.retrain.dataset
    lake, registry, review = lake_of(settings), registry_of(settings), settings.review
    day = day or lake.newest_day(dataset)
    rows = read_day(lake, dataset, day)
    seen = read_registry(registry, settings.monitor.experiment, dataset, day)
    champion, alerts = load_champion(registry), read_alerts(lake, dataset, day)
    scorer = None if alerts.version is None else load_version(registry, alerts.version)
    reference = None if scorer is None else load_reference_rows(registry, scorer.version)
    newest = _newest_other(seen.status, champion)
    compared = [m for m in (champion, newest and load_version(registry, newest)) if m]
    span = (day - timedelta(days=review.history_days - 1), day)
    history = read_history(lake, dataset, span)
    interval = (seen.status.get("champion") or {}).get("fpr_interval_95")
    page = ReviewPage(
        dataset=dataset,
        day=day,
        model=registry.model_name,
        champion=None if champion is None else champion.version,
        verdict=sections.verdict(seen.monitor, interval),
        history=sections.history_figure(history, span, seen.moves, settings.detector.target_fpr),
        history_table=sections.history_table(history),
        alerts=sections.alerts_line(alerts, len(rows)),
        groups=groups_frame(alerts.groups),
        latent_map=sections.latent_figure(scorer, reference, rows, alerts, review, settings.detector.seed),
        examples=sections.examples(scorer, rows, alerts, review.examples),
        models=sections.models_table(seen.status, champion, review.candidates),
        model_scores=sections.scores_figure(compared, rows),
        links=_links(lake, registry, dataset, seen.monitor, compared, alerts, settings),
    )
    folder = settings.home / "reports" / dataset
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"review-{day.isoformat()}-{datetime.now():%Y%m%dT%H%M%S}.html"
    path.write_text(render(page))
    run_id = log_page(registry, dataset, day, path)
    publish_link(dataset, day, path)
    return ReportOutcome(dataset, day, path, run_id)


def _newest_other(status: dict[str, Any], champion: LoadedVersion | None) -> str | None:
    """The newest registered version that is not the champion (the last candidate), or None."""
    others = [
        v["version"] for v in status["versions"] if champion is None or v["version"] != champion.version
    ]
    return others[-1] if others else None


def _links(
    lake: Lake,
    registry: Registry,
    dataset: str,
    monitor: dict[str, Any] | None,
    models: list[LoadedVersion],
    alerts: DayAlerts,
    settings: Settings,
) -> tuple[Link, ...]:
    """The Evidently reports, the MLflow runs, and the lake files behind the page."""
    links = []
    if monitor is not None:
        features = Path(str(monitor["report"])) / "features.html"
        where = features.resolve().as_uri() if features.is_file() else None
        note = "" if where else f"(written on the machine that ran the monitor: {features})"
        links.append(Link("Evidently feature report of the day", where, note))
        links.append(_run_link("MLflow monitor run", registry.run_link(str(monitor["run_id"]))))
    workspace = settings.home / "evidently"
    links.append(Link("Drift over time in Evidently's UI", None, f"evidently ui --workspace {workspace}"))
    for model in models:
        links.append(_run_link(f"MLflow run of version {model.version}", registry.run_link(model.run_id)))
    if alerts.key is not None:
        links.append(Link("Alerts file of the day", lake.location(alerts.key)))
    quarantined = sorted(lake.store.keys(f"{dataset}/_quarantine"))
    if quarantined:
        links.append(
            Link("Newest quarantine file (rows retraining held back)", lake.location(quarantined[-1]))
        )
    return tuple(links)


def _run_link(label: str, where: str) -> Link:
    """A link to a run's page on a tracking server, or how to find it in a local store."""
    return Link(label, where, "") if where.startswith("http") else Link(label, None, where)
