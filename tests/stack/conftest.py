"""The stack for every test here: brought up once by `sentinel stack up`, torn down whatever happens.

`stack` is the environment that points sentinel at it; `scheduled` is the lake seeded in S3, both
deployments on the workers' pools (retrain every minute, monitor paused), and the first scheduled
retrain's flow run. Helpers read the Prefect and MLflow servers' own APIs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest

from flows.adapters.connect import lake_of
from flows.console.demo import demo_data, seed_lake
from flows.settings import Settings
from flows.stack.parts import S3_KEYS, exports

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
MODEL = "vae-sentinel"


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def stack_env(home: Path) -> dict[str, str]:
    """A home PostgreSQL (running as its own user) can reach, free ports, a quick scheduler, Dask."""
    pg, s3, mlflow_port, prefect, w1, w2, d1, d2, d3 = free_ports(9)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "PREFECT_", "MLFLOW_"))}
    return env | {
        "SENTINEL_HOME": str(home),
        "SENTINEL_STACK__POSTGRES_PORT": str(pg),
        "SENTINEL_STACK__S3_PORT": str(s3),
        "SENTINEL_STACK__MLFLOW_PORT": str(mlflow_port),
        "SENTINEL_STACK__PREFECT_PORT": str(prefect),
        "SENTINEL_STACK__WORKER_PORTS": json.dumps([w1, w2]),
        "SENTINEL_STACK__DASK_WORKERS": "2",
        "SENTINEL_STACK__DASK_PORTS": json.dumps([d1, d2, d3]),
        "SENTINEL_STACK__SCHEDULER_LOOP_SECONDS": "5",
        "SENTINEL_MONITOR__WINDOW_DAYS": "2",  # the workers' monitor compares the newest two days
    }


def settings_of(env: dict[str, str]) -> Settings:
    """The settings sentinel reads from `env` (the stack's and its exports)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [k for k in os.environ if k.startswith("SENTINEL_")]:
            patch.delenv(name)
        for name, value in env.items():
            if name.startswith("SENTINEL_"):
                patch.setenv(name, value)
        return Settings()


def sentinel(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def scratch_home() -> Iterator[Path]:
    """A folder outside pytest's (0700) tmp tree, as PostgreSQL runs as the postgres user; removed after."""
    top = Path(tempfile.mkdtemp(prefix="sentinel-stack-"))
    top.chmod(0o755)
    try:
        yield top / "home"
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[dict[str, str]]:
    """The stack up, and the environment that points sentinel at it; down again whatever happens."""
    with scratch_home() as home:
        env = stack_env(home)
        try:
            started = sentinel("stack", "up", env=env)
            assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
            yield env | exports(settings_of(env))
        finally:
            stopped = sentinel("stack", "down", env=env)
            assert stopped.returncode == 0, stopped.stderr[-2000:]
        assert not list((home / "stack").glob("*.pid")), "pid files left behind"
        ports = [int(env[f"SENTINEL_STACK__{p}_PORT"]) for p in ("POSTGRES", "S3", "MLFLOW", "PREFECT")]
        assert not [p for p in ports if answers(p)], "a part still answers after stack down"


@pytest.fixture(scope="session")
def scheduled(stack: dict[str, str]) -> dict[str, Any]:
    """A lake seeded in S3, the deployments on the workers' pools, and the first scheduled retrain's run.

    The retrain schedule keeps firing every minute (later runs are part of the story); the monitor's is
    paused until the story injects a failing sensor.
    """
    today = datetime.now(UTC).date()
    settings = settings_of(stack)
    with s3_keys():  # normal days only: the story injects its failing sensor later
        seed_lake(lake_of(settings), demo_data(settings), "mammography", 10, today, seed=0, failing=False)
    deployed = sentinel(
        "deploy", "--work-pool", "sentinel-retrain", "--monitor-work-pool", "sentinel-process",
        "--retrain-cron", "* * * * *", "--monitor-cron", "* * * * *", env=stack,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    api = stack["SENTINEL_PREFECT_API_URL"]
    pause(api, deployment(api, "monitor")["id"])
    return wait_for_run(api, "retrain", lambda r: r["state_type"] in FINAL, seconds=240)


@contextlib.contextmanager
def s3_keys() -> Iterator[None]:
    """The local S3 server's keys in this process's environment (boto3 reads them there)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in S3_KEYS.items():
            env.setenv(name, value)
        yield


def deployment(api: str, flow: str) -> dict[str, Any]:
    reply = httpx.get(f"{api}/deployments/name/{flow}/{MODEL}", timeout=10)
    reply.raise_for_status()
    return dict(reply.json())


def set_paused(api: str, deployment_id: str, paused: bool) -> None:
    reply = httpx.patch(f"{api}/deployments/{deployment_id}", json={"paused": paused}, timeout=10)
    reply.raise_for_status()


def pause(api: str, deployment_id: str) -> None:
    """Pause the deployment's schedule and drop the runs its schedule had created but not started.

    That includes scheduled runs queued for the concurrency slot (AwaitingConcurrencySlot), which would
    otherwise run, and promote, later; runs started by hand or by a trigger are kept.
    """
    set_paused(api, deployment_id, True)
    body = {
        "deployments": {"id": {"any_": [deployment_id]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
    }
    for run in httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json():
        if run["auto_scheduled"]:
            httpx.delete(f"{api}/flow_runs/{run['id']}", timeout=10)


def runs_of(api: str, flow: str) -> list[dict[str, Any]]:
    """Every flow run of `flow`, oldest expected start first."""
    body = {"flows": {"name": {"any_": [flow]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}
    return list(httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json())


def wait_for_run(
    api: str, flow: str, wanted: Callable[[dict[str, Any]], bool], seconds: float
) -> dict[str, Any]:
    """The first run of `flow` (by expected start) that satisfies `wanted`, polling the Prefect API."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runs = runs_of(api, flow)
        found = [r for r in runs if wanted(r)]
        if found:
            return found[0]
        time.sleep(1)
    pytest.fail(f"no such {flow} run within {seconds:g} s; runs seen: {[r['state_name'] for r in runs]}")


def candidate_of(tracking_uri: str, flow_run_id: str) -> dict[str, Any] | None:
    """What the retrain flow run registered: version, promoted, failed gate reasons, its run's metrics.

    None when it registered nothing (e.g. it stopped before training).
    """
    client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.prefect_flow_run = '{flow_run_id}'")
    assert len(runs) <= 1, f"flow run {flow_run_id} logged {len(runs)} MLflow runs"
    if not runs:
        return None
    (version,) = client.search_model_versions(f"name='{MODEL}' and run_id='{runs[0].info.run_id}'")
    gates = json.loads(version.tags["gate_report"])
    return {
        "version": version.version,
        "promoted": version.tags.get("promoted") == "true",
        "reasons": [g["reason"] for g in gates if not g["passed"]],
        "metrics": runs[0].data.metrics,
        "trigger": runs[0].data.tags.get("trigger"),
    }
