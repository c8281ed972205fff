"""The `monitor` flow: did the newest window's data or the champion's behaviour move? Retrain if so.

Compares the newest window with the champion's reference snapshot (sampled training rows and held-out
normal scores, stored with its registered version): feature drift (Evidently), score drift and alert
volume, one verdict with reasons. The report (Evidently HTML, score histogram, JSON summary) is written
under HOME/reports/, logged to MLflow against the champion's version, published as a Prefect artifact,
and its snapshots go to the Evidently workspace HOME/evidently (one project per dataset, drift over time
on its dashboard: ``evidently ui --workspace HOME/evidently``). A drift verdict starts `retrain` (within
the cooldown and cap), which still has to pass its gates: drift never promotes anything by itself.

Example:
    >>> outcome = monitor(dataset="mammography", as_of=date(2026, 11, 30))
    >>> outcome.verdict.drifted, outcome.verdict.reasons, outcome.retrain
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.deployments import run_deployment

from flows.adapters.connect import Mapper, lake_of, mapper_of, registry_of
from flows.adapters.evidently_workspace import EvidentlyWorkspace
from flows.adapters.lake import Lake
from flows.adapters.registry import LoadedVersion, MonitorRecord, Registry
from flows.jobs.common import artifact_key, day_parameter, io_task, job_settings, pure_task, require_champion
from flows.jobs.plots import ScorePanel, score_distribution
from flows.jobs.retrain import retrain
from flows.jobs.window import SamplePlan, sample_window
from flows.settings import Settings
from vae import Prediction
from vae.errors import SentinelError
from validation.drift import DriftVerdict, assess_drift, score_snapshot
from validation.trigger import TriggerDecision, trigger_decision


@dataclass(frozen=True)
class MonitorOutcome:
    """What one monitor run found, where its report is, and what it did about it."""

    dataset: str
    as_of: date
    version: str
    verdict: DriftVerdict
    report_dir: Path
    run_id: str  # the MLflow monitor run
    trigger: TriggerDecision | None  # None when the window did not drift
    retrain: str | None  # what the triggered retrain did, when one was started


@io_task
def load_reference(registry: Registry, version: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The champion's reference snapshot: sampled training rows and held-out normal scores."""
    return registry.load_reference(version)


@io_task
def trigger_history(registry: Registry, experiment: str, since: datetime) -> list[datetime]:
    """When monitor runs started retrains since `since`: what the cooldown and the cap count."""
    return registry.trigger_times(experiment, since)


@io_task
def read_window(
    lake: Lake, dataset: str, as_of: date, days: int, plan: SamplePlan | None, mapper: Mapper
) -> pd.DataFrame:
    """The window's rows as they arrived (alerts included: they are part of what moved).

    A uniform sample of `plan.rows` of them, read file by file; every row when `plan` is None (a windowed
    champion needs consecutive rows).
    """
    if plan is None:
        return lake.read_window(dataset, as_of, days)
    return sample_window(lake, lake.window_files(dataset, as_of, days), plan, mapper)[0]


@pure_task
def score_window(champion: LoadedVersion, window: pd.DataFrame) -> tuple[pd.DataFrame, Prediction]:
    """The window's rows scored by the champion; the rows returned are those its scores belong to.

    A windowed champion's first score is at its first full window.
    """
    steps = champion.detector.config.window
    prediction = champion.detector.predict(window)  # names a missing column, NaN, a wrong type
    return window[list(champion.contract.names)].iloc[steps - 1 :], prediction


@pure_task
def check_drift(
    champion: LoadedVersion,
    reference: tuple[pd.DataFrame, np.ndarray],
    scored: tuple[pd.DataFrame, Prediction],
    settings: Settings,
    as_of: date,
) -> DriftVerdict:
    """Feature drift, score drift and alert volume of the scored sample against the reference."""
    (ref_rows, ref_scores), (rows, prediction) = reference, scored
    return assess_drift(
        ref_rows,
        ref_scores,
        rows,
        prediction.score,
        prediction.is_anomaly,
        champion.detector.threshold_fpr_,
        settings.monitor.drift,
        settings.detector.seed,
        datetime.combine(as_of, time()),
        champion.detector.calibration_drift_[1],
    )


@io_task
def add_to_workspace(
    folder: Path,
    dataset: str,
    as_of: date,
    verdict: DriftVerdict,
    scores: tuple[np.ndarray, np.ndarray],
    threshold: float,
) -> str:
    """The run's feature and score snapshots in the dataset's Evidently project (`evidently ui`)."""
    snapshot = score_snapshot(*scores, threshold, datetime.combine(as_of, time()))
    return EvidentlyWorkspace(folder).add(dataset, verdict.features.snapshot, snapshot)


@pure_task
def write_report(
    folder: Path, verdict: DriftVerdict, champion: LoadedVersion, scores: tuple[np.ndarray, np.ndarray]
) -> dict[str, Path]:
    """The Evidently feature report (HTML), the score histogram (PNG) and the JSON summary."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"report/features.html": folder / "features.html", "report/summary.json": folder / "summary.json"}
    verdict.features.snapshot.save_html(str(files["report/features.html"]))
    files["report/summary.json"].write_text(json.dumps(verdict.summary(), indent=2))
    figure = score_distribution(
        ScorePanel(
            f"Scores of version {champion.version}: reference vs window",
            {"calibration (reference)": scores[0], "window (sample)": scores[1]},
            champion.detector.threshold_,
        )
    )
    files["report/scores.png"] = folder / "scores.png"
    figure.savefig(files["report/scores.png"])
    return files


@io_task
def log_monitor(registry: Registry, version: str, experiment: str, record: MonitorRecord) -> str:
    """The monitor run in MLflow, against the champion's version."""
    return registry.log_monitor(version, experiment, record)


@io_task
def publish(dataset: str, outcome_table: str) -> None:
    """The verdict as a Prefect artifact (a markdown table with the report's path)."""
    create_markdown_artifact(
        outcome_table, key=artifact_key("drift", dataset), description=f"drift verdict for {dataset}"
    )


@flow(name="monitor", validate_parameters=False)
def monitor(
    settings: Settings | None = None,
    dataset: str | None = None,
    as_of: date | None = None,
    retrain_deployment: str | None = None,
) -> MonitorOutcome:
    """Compare the newest window with the champion's reference; on drift, start a retrain.

    Args:
        settings: the configuration (default: read from sentinel.toml and SENTINEL_* variables).
        dataset: dataset folder in the lake (default: settings.retrain.dataset).
        as_of: the window's last day (default: the newest partition).
        retrain_deployment: start triggered retrains through this deployment (e.g. "retrain/vae-sentinel",
            so they run on its work pool under its concurrency limit); default: in this process.

    Raises:
        SentinelError: no champion yet, an empty or unreadable window, or rows the champion cannot score.
    """
    settings = job_settings(settings)
    as_of = day_parameter(as_of)
    cfg = settings.monitor
    dataset = dataset or settings.retrain.dataset
    lake, registry = lake_of(settings), registry_of(settings)
    champion = require_champion(registry)
    as_of = as_of or lake.newest_day(dataset)
    run_name = f"{dataset}-{as_of.isoformat()}-{uuid.uuid4().hex[:8]}"
    plan = SamplePlan(cfg.drift.max_sample, 1, settings.detector.seed)
    steps = champion.detector.config.window
    window = read_window(
        lake, dataset, as_of, cfg.window_days, plan if steps == 1 else None, mapper_of(settings)
    )
    scored = score_window(champion, window)
    reference = load_reference(registry, champion.version)
    verdict = check_drift(champion, reference, scored, settings, as_of)
    folder = settings.home / "reports" / dataset / f"monitor-{run_name}"
    scores = (reference[1], scored[1].score)
    files = write_report(folder, verdict, champion, scores)
    if settings.review.evidently_workspace:
        workspace = settings.home / "evidently"
        add_to_workspace(workspace, dataset, as_of, verdict, scores, champion.detector.threshold_)
    decision = None
    if verdict.drifted:
        now = datetime.now(UTC)
        earlier = trigger_history(registry, cfg.experiment, now - timedelta(hours=cfg.trigger.period_hours))
        decision = trigger_decision(now, earlier, cfg.trigger)
    record = monitor_record(run_name, dataset, as_of, verdict, decision, folder, files)
    run_id = log_monitor(registry, champion.version, cfg.experiment, record)
    retrained = None
    if decision is not None and decision.allowed:
        reason = "drift: " + "; ".join(verdict.reasons)
        retrained = start_retrain(settings, dataset, as_of, reason, retrain_deployment)
    outcome = MonitorOutcome(dataset, as_of, champion.version, verdict, folder, run_id, decision, retrained)
    publish(dataset, markdown(outcome))
    return outcome


def start_retrain(settings: Settings, dataset: str, as_of: date, reason: str, deployment: str | None) -> str:
    """Run `retrain` here (a subflow) or through a deployment; returns what happened, in one line."""
    if deployment is not None:
        parameters = {"dataset": dataset, "as_of": as_of.isoformat(), "reason": reason}
        run = run_deployment(deployment, parameters=parameters, timeout=0)
        return f"flow run {run.name} ({run.id}) scheduled on deployment {deployment}"
    try:
        outcome = retrain(settings=settings, dataset=dataset, as_of=as_of, reason=reason)
    except SentinelError as exc:
        return f"retrain failed: {exc}"
    verdict = "promoted" if outcome.promoted else "refused: " + "; ".join(outcome.decision.reasons)
    return f"version {outcome.version} {verdict}"


def monitor_record(
    run_name: str,
    dataset: str,
    as_of: date,
    verdict: DriftVerdict,
    decision: TriggerDecision | None,
    folder: Path,
    files: dict[str, Path],
) -> MonitorRecord:
    """What MLflow keeps of a monitor run."""
    f, s, a = verdict.features, verdict.scores, verdict.alerts
    metrics = {
        "drifted_features": float(len(f.drifted_columns)),
        "drifted_feature_share": len(f.drifted_columns) / len(f.columns),
        "score_ks": s.statistic,
        "score_ks_p_value": s.p_value,
        "score_cdf_error_bound": s.error_bound,
        "alert_rate": a.rate,
        "alert_p_value": a.p_value,
        "rows_sampled": float(f.n_current),
    }
    trigger = "no drift" if decision is None else decision.reason
    tags = {"dataset": dataset, "as_of": as_of.isoformat(), "trigger": trigger, "report": str(folder)}
    triggered = decision is not None and decision.allowed
    return MonitorRecord(
        run_name, "drift" if verdict.drifted else "stable", verdict.reasons, triggered, tags, metrics, files
    )


def markdown(outcome: MonitorOutcome) -> str:
    """The verdict as a markdown table, for the Prefect UI."""
    v = outcome.verdict
    lines = [
        f"# {outcome.dataset} as of {outcome.as_of}, version {outcome.version}: "
        f"**{'drift' if v.drifted else 'stable'}**",
        "",
        "| check | value | moved | reason |",
        "|---|---|---|---|",
        *(
            f"| {name} | {value} | {'yes' if moved else 'no'} | {reason} |"
            for name, value, moved, reason in v.checks()
        ),
        "",
        f"Report: `{outcome.report_dir}` (MLflow run `{outcome.run_id}`)",
    ]
    if outcome.trigger is not None:
        lines.append(f"Retrain: {outcome.retrain or 'not started'} ({outcome.trigger.reason})")
    return "\n".join(lines)
