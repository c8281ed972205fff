"""Prefect deployments of `retrain` and `monitor`, one pair per registered model.

`retrain/MODEL` runs on a cron (default daily) with a concurrency limit of 1, so at most one retrain per
model runs at a time (scheduled or drift-triggered runs queue behind it). `monitor/MODEL` runs on its own
cron (default hourly) and starts triggered retrains through `retrain/MODEL`, so they run where retrains
run (e.g. a GPU work pool) under the same limit. Scheduled runs read their settings where they run.

A worker that dies (killed, its machine lost) leaves its flow runs Running for ever, and a Running retrain
holds the deployment's only slot (PrefectHQ/prefect#16746). Flow runs send heartbeats; the automation
`crash_silent_runs` creates marks a run whose heartbeats stop as Crashed, which frees the slot.

Example:
    >>> prefect.serve(*to_serve(Schedules(), "vae-sentinel", "mammography"))        # this process runs them
    >>> deploy_to_pools(Schedules(), "vae-sentinel", None, Pools("gpu", "cpu"), repo)  # workers run them
    >>> crash_silent_runs(heartbeat_seconds=60)  # timedelta(seconds=150): silent runs are marked Crashed
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.deployments.runner import RunnerDeployment

from flows.jobs.monitor import monitor
from flows.jobs.retrain import retrain

FLOWS: dict[str, Flow[..., Any]] = {"retrain": retrain, "monitor": monitor}
ENTRYPOINTS = {"retrain": "flows/jobs/retrain.py:retrain", "monitor": "flows/jobs/monitor.py:monitor"}


@dataclass(frozen=True)
class Schedules:
    """Cron expressions (UTC) of the two deployments."""

    retrain: str = "0 3 * * *"
    monitor: str = "0 * * * *"


@dataclass(frozen=True)
class Pools:
    """Work pools whose workers run each flow (e.g. retrain on GPU workers, monitor on CPU workers)."""

    retrain: str
    monitor: str


def _plan(schedules: Schedules, model: str, dataset: str | None) -> dict[str, dict[str, Any]]:
    """Per flow: the deployment's schedule, concurrency limit and parameters."""
    return {
        "retrain": {
            "cron": schedules.retrain,
            "concurrency_limit": 1,
            "parameters": {"dataset": dataset, "reason": "schedule"},
        },
        "monitor": {
            "cron": schedules.monitor,
            "concurrency_limit": 1,
            "parameters": {"dataset": dataset, "retrain_deployment": f"retrain/{model}"},
        },
    }


def to_serve(schedules: Schedules, model: str, dataset: str | None) -> list[RunnerDeployment]:
    """Both deployments, to be served from this process with `prefect.serve`."""
    return [
        FLOWS[name].to_deployment(name=model, **spec)
        for name, spec in _plan(schedules, model, dataset).items()
    ]


def deploy_to_pools(
    schedules: Schedules, model: str, dataset: str | None, pools: Pools, source: Path
) -> list[str]:
    """Register both deployments in existing work pools, code loaded from `source`; returns their names."""
    names = []
    for name, spec in _plan(schedules, model, dataset).items():
        loaded = FLOWS[name].from_source(source=str(source), entrypoint=ENTRYPOINTS[name])
        loaded.deploy(
            name=model,
            work_pool_name=getattr(pools, name),
            build=False,
            push=False,
            print_next_steps=False,
            **spec,
        )
        names.append(f"{name}/{model}")
    return names


SILENT_RUNS = "sentinel: crash silent flow runs"
ENDED = ("Completed", "Failed", "Cancelled", "Crashed")


def crash_silent_runs(heartbeat_seconds: int) -> timedelta | None:
    """Create the automation that marks Crashed a flow run silent for 2.5 heartbeats; None if it exists.

    Returns the silence after which a run is marked.

    Prefect's recipe ("detect zombie flows"): after a run's heartbeat, expect another heartbeat or its end
    within the window; when neither comes, change the run's state to Crashed. Made once per server: to
    change the window, delete the automation (`prefect automation delete`) and deploy again.
    """
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    try:
        Automation.read(name=SILENT_RUNS)
        return None
    except ValueError:  # not there yet
        pass
    silence = timedelta(seconds=2.5 * heartbeat_seconds)
    Automation(
        name=SILENT_RUNS,
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", *(f"prefect.flow-run.{state}" for state in ENDED)},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=silence,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {silence.total_seconds():.0f} s: its worker or machine died",
            )
        ],
    ).create()
    return silence
