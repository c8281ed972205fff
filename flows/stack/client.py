"""Driving a stack from another process (its tests, its benchmark): free ports, environments, waits."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx

from flows.settings import Settings

OWN_PREFIXES = ("SENTINEL_", "PREFECT_", "MLFLOW_")


def free_ports(n: int) -> list[int]:
    """`n` distinct loopback ports nothing listens on right now."""
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def free_run(n: int) -> int:
    """The first of `n` consecutive loopback ports nothing listens on right now (Dask's workers' ports)."""
    while True:
        (first,) = free_ports(1)
        with ExitStack() as held:
            try:
                for port in range(first, first + n):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
        return first


def clean_env() -> dict[str, str]:
    """This process's environment without any sentinel, Prefect or MLflow setting (the embedded default)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}


def on_free_ports(home: Path, dask_workers: int = 0) -> dict[str, str]:
    """The clean environment of a stack in `home` whose every part listens on a free port."""
    pg, s3, mlflow, prefect, w1, w2, d1, d2 = free_ports(8)
    d3 = free_run(max(dask_workers, 1))
    return clean_env() | {
        "SENTINEL_HOME": str(home),
        "SENTINEL_STACK__POSTGRES_PORT": str(pg),
        "SENTINEL_STACK__S3_PORT": str(s3),
        "SENTINEL_STACK__MLFLOW_PORT": str(mlflow),
        "SENTINEL_STACK__PREFECT_PORT": str(prefect),
        "SENTINEL_STACK__WORKER_PORTS": json.dumps([w1, w2]),
        "SENTINEL_STACK__DASK_WORKERS": str(dask_workers),
        "SENTINEL_STACK__DASK_PORTS": json.dumps([d1, d2, d3]),
    }


@contextmanager
def pointed_at(env: dict[str, str]) -> Iterator[Settings]:
    """The settings `env` gives sentinel; its SENTINEL_ and AWS_ variables hold in this process meanwhile."""
    saved = dict(os.environ)
    try:
        for name in [k for k in os.environ if k.startswith("SENTINEL_")]:
            del os.environ[name]
        os.environ.update({k: v for k, v in env.items() if k.startswith(("SENTINEL_", "AWS_"))})
        yield Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def set_paused(api: str, deployment_id: str, paused: bool) -> None:
    """Pause or resume a deployment's schedule through the Prefect API at `api`."""
    reply = httpx.patch(f"{api}/deployments/{deployment_id}", json={"paused": paused}, timeout=10)
    reply.raise_for_status()


def pause_schedule(api: str, deployment_id: str, scheduler_loop_seconds: float | None = None) -> None:
    """Pause the deployment's schedule and drop the runs its schedule had created but not started.

    That includes scheduled runs queued for the concurrency slot (AwaitingConcurrencySlot), which would
    otherwise run, and promote, later; runs started by hand or by a trigger are kept. Prefect's scheduler
    may be mid-pass when the pause lands and insert runs after the sweep: given the scheduler's loop, a
    second sweep follows once such a pass is surely over (a loop and a second later).
    """
    set_paused(api, deployment_id, True)
    body = {
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
    }

    def sweep() -> None:
        for run in httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json():
            if run["auto_scheduled"]:
                httpx.delete(f"{api}/flow_runs/{run['id']}", timeout=10)

    sweep()
    if scheduler_loop_seconds is not None:
        time.sleep(scheduler_loop_seconds + 1)
        sweep()


def wait_until(check: Callable[[], bool], seconds: float, what: str, interval: float = 0.2) -> None:
    """Poll `check` until it holds (an HTTP error counts as not yet); TimeoutError naming `what` if not."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with suppress(httpx.HTTPError):
            if check():
                return
        time.sleep(interval)
    raise TimeoutError(f"{what}: not within {seconds:g} s")
