"""Prefect deployments of `retrain` and `monitor`, one pair per registered model.

`retrain/MODEL` runs on a cron (default daily) with a concurrency limit of 1, so at most one retrain per
model runs at a time (scheduled or drift-triggered runs queue behind it). `monitor/MODEL` runs on its own
cron (default hourly) and starts triggered retrains through `retrain/MODEL`, so they run where retrains
run (e.g. a GPU work pool) under the same limit. Scheduled runs read their settings where they run.

Example:
    >>> prefect.serve(*to_serve(Schedules(), "vae-sentinel", "mammography"))        # this process runs them
    >>> deploy_to_pools(Schedules(), "vae-sentinel", None, Pools("gpu", "cpu"), repo)  # workers run them
"""

from __future__ import annotations

from dataclasses import dataclass
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
