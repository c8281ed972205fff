"""The monitor flow end to end: a real shift is flagged and triggers one retrain; a clean day is not."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from mlflow import MlflowClient
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort

from flows.adapters.connect import registry_of
from flows.errors import RegistryError
from flows.jobs.monitor import monitor
from flows.settings import Settings
from vae.errors import SentinelError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


def _with_trigger(settings: Settings, **policy: object) -> Settings:
    trigger = settings.monitor.trigger.model_copy(update=policy)
    return settings.model_copy(update={"monitor": settings.monitor.model_copy(update={"trigger": trigger})})


def _runs(settings: Settings, experiment: str) -> list:
    client = MlflowClient(settings.tracking_uri())
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id])


def test_no_champion_is_a_clear_error(seeded):
    settings, _, _ = seeded
    with pytest.raises(SentinelError, match="no champion yet"):
        monitor(settings=settings)


@pytest.mark.slow
def test_a_clean_day_is_stable_and_a_failing_sensor_triggers_exactly_one_retrain(champion):
    settings, _, dates, _ = champion

    stable = monitor(settings=settings, as_of=dates[-3])
    assert not stable.verdict.drifted and stable.trigger is None and stable.retrain is None
    summary = json.loads((stable.report_dir / "summary.json").read_text())
    assert summary["verdict"] == "stable" and len(summary["reasons"]) == 3
    assert {"features.html", "summary.json", "scores.png"} <= {p.name for p in stable.report_dir.iterdir()}

    drifted = monitor(settings=settings, as_of=dates[-2])  # the day sensor s01 fails
    assert drifted.verdict.drifted and drifted.verdict.features.drifted_columns == ["s01"]
    assert drifted.trigger is not None and drifted.trigger.allowed
    assert drifted.retrain is not None and drifted.retrain.startswith("version 2")
    retrains = _runs(settings, settings.registry.experiment)
    triggered = [r for r in retrains if r.data.tags["trigger"].startswith("drift: data drift")]
    assert len(retrains) == 2 and len(triggered) == 1 and "s01" in triggered[0].data.tags["trigger"]

    again = monitor(settings=settings, as_of=dates[-2])  # same drift, within the cooldown
    assert again.verdict.drifted and again.trigger is not None and not again.trigger.allowed
    assert again.trigger.reason.startswith("cooldown") and again.retrain is None
    assert len(_runs(settings, settings.registry.experiment)) == 2  # still exactly one triggered retrain

    registry = registry_of(settings)
    last = registry.last_monitor(settings.monitor.experiment)
    assert last is not None and last["run_id"] == again.run_id and last["verdict"] == "drift"
    assert last["trigger"].startswith("cooldown")
    monitor_runs = _runs(settings, settings.monitor.experiment)
    assert [r.data.tags["retrain_triggered"] for r in monitor_runs].count("true") == 1
    client = MlflowClient(settings.tracking_uri())
    current = client.get_model_version_by_alias(settings.registry.model_name, "champion")
    tags = client.get_model_version(settings.registry.model_name, drifted.version).tags
    assert tags["monitor.run_id"] == again.run_id and tags["monitor.verdict"] == "drift"
    artifacts = {a.path for a in client.list_artifacts(again.run_id, "report")}
    assert artifacts == {"report/features.html", "report/summary.json", "report/scores.png"}
    # drift alone promotes nothing: the triggered retrain's gates decided
    assert str(current.version) == ("2" if drifted.retrain.endswith("promoted") else "1")


@pytest.mark.slow
def test_triggering_can_be_off_and_the_cap_holds(champion):
    settings, _, dates, _ = champion
    off = monitor(settings=_with_trigger(settings, enabled=False), as_of=dates[-2])
    assert off.verdict.drifted and not off.trigger.allowed and "off" in off.trigger.reason
    capped = _with_trigger(settings, cooldown_hours=0, max_per_period=1)
    first = monitor(settings=capped, as_of=dates[-2])
    second = monitor(settings=capped, as_of=dates[-2])
    assert first.trigger.allowed and not second.trigger.allowed and second.trigger.reason.startswith("cap")


def test_the_verdict_is_published_as_a_prefect_artifact(champion):
    settings, _, dates, _ = champion
    outcome = monitor(settings=settings, as_of=dates[-3])
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["drift-mammography"])),
            sort=ArtifactSort.CREATED_DESC,
            limit=1,
        )
    assert found and found[0].type == "markdown"
    assert "**stable**" in found[0].data and str(outcome.report_dir) in found[0].data


def test_a_window_the_champion_cannot_score_is_a_clear_error_and_logs_nothing(champion):
    settings, lake, dates, _ = champion
    day = lake.read_window("mammography", dates[-1], 1).filter(like="s0").drop(columns=["s03"])
    lake.write_day("mammography", dates[-1] + timedelta(days=1), day)
    with pytest.raises(SentinelError, match="s03"):
        monitor(settings=settings)
    assert _runs(settings, settings.monitor.experiment) == []


def test_a_version_without_a_reference_is_a_clear_error(champion):
    settings, _, dates, outcome = champion
    client = MlflowClient(settings.tracking_uri())
    reference = Path(client.get_run(outcome.run_id).info.artifact_uri.removeprefix("file://")) / "reference"
    shutil.rmtree(reference)
    with pytest.raises(RegistryError, match="version 1 of vae-sentinel has no drift reference"):
        monitor(settings=settings, as_of=dates[-3])
