"""`sentinel deploy` against a real Prefect server that this module starts on 127.0.0.1 and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flows.stack.client import free_ports

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def _wait(check, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.TransportError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """`prefect server start` on a free loopback port with its own database; stopped after the module."""
    home = tmp_path_factory.mktemp("prefect-server")
    (port,) = free_ports(1)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [*command, "--no-ui", "--no-services"], env=env, stdout=log, stderr=log, text=True
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/api", timeout=10)
    try:
        _wait(lambda: client.get("/health").status_code == 200, 120, "the Prefect server")
        yield client
    finally:
        _stop(server)
        log.close()


def _sentinel_env(api: httpx.Client, home: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "SENTINEL_HOME": str(home),
        "SENTINEL_PREFECT_API_URL": str(api.base_url).rstrip("/"),
        "COLUMNS": "200",
        **extra,
    }


def _deployments(api: httpx.Client, name: str) -> dict[str, dict]:
    """Deployments called `name`, keyed by flow name."""
    found = api.post("/deployments/filter", json={"deployments": {"name": {"any_": [name]}}}).json()
    return {api.get(f"/flows/{d['flow_id']}").json()["name"]: d for d in found}


def _limit(deployment: dict) -> int | None:
    limit = deployment.get("global_concurrency_limit") or {}
    return limit.get("limit", deployment.get("concurrency_limit"))


def test_served_deployments_appear_with_their_schedules_and_limit(prefect_api, tmp_path):
    env = _sentinel_env(prefect_api, tmp_path, SENTINEL_REGISTRY__MODEL_NAME="served-model")
    serving = subprocess.Popen(
        [sys.executable, "-m", "flows", "deploy", "--retrain-cron", "0 4 * * *", "--dataset", "cardio"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        found = _wait(lambda: len(_deployments(prefect_api, "served-model")) == 2, 180, "both deployments")
        assert found
        deployments = _deployments(prefect_api, "served-model")
    finally:
        _stop(serving)
    retrain, monitor = deployments["retrain"], deployments["monitor"]
    assert [s["schedule"]["cron"] for s in retrain["schedules"]] == ["0 4 * * *"]
    assert [s["schedule"]["cron"] for s in monitor["schedules"]] == ["0 * * * *"]
    assert _limit(retrain) == 1
    assert retrain["parameters"] == {"dataset": "cardio", "reason": "schedule"}
    assert monitor["parameters"]["retrain_deployment"] == "retrain/served-model"


def test_deployments_go_to_existing_work_pools(prefect_api, tmp_path):
    for pool in ("gpu-pool", "cpu-pool"):
        response = prefect_api.post("/work_pools/", json={"name": pool, "type": "process"})
        assert response.status_code in (200, 201), response.text
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows",
            "deploy",
            "--work-pool",
            "gpu-pool",
            "--monitor-work-pool",
            "cpu-pool",
        ],
        cwd=ROOT,
        env=_sentinel_env(prefect_api, tmp_path, SENTINEL_REGISTRY__MODEL_NAME="pooled-model"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    deployments = _deployments(prefect_api, "pooled-model")
    assert deployments["retrain"]["work_pool_name"] == "gpu-pool"
    assert deployments["monitor"]["work_pool_name"] == "cpu-pool"
    assert [s["schedule"]["cron"] for s in deployments["retrain"]["schedules"]] == ["0 3 * * *"]
    assert _limit(deployments["retrain"]) == 1
    assert "deployment retrain/pooled-model on work pool gpu-pool" in out.stdout


def test_deploy_without_a_server_says_so(tmp_path):
    env = {**os.environ, "SENTINEL_HOME": str(tmp_path)}
    env.pop("SENTINEL_PREFECT_API_URL", None)
    out = subprocess.run(
        [sys.executable, "-m", "flows", "deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1 and "needs a Prefect server" in out.stdout


def test_a_triggered_retrain_is_started_through_the_retrain_deployment(prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.jobs.deployments import Schedules, to_serve
    from flows.jobs.monitor import start_retrain
    from tests.flows.conftest import TODAY, fast_settings

    with temporary_settings({PREFECT_API_URL: str(prefect_api.base_url).rstrip("/")}):
        for deployment in to_serve(Schedules(), "triggered-model", "mammography"):
            deployment.apply()
        note = start_retrain(
            fast_settings(tmp_path), "mammography", TODAY, "drift: s01", "retrain/triggered-model"
        )
    runs = prefect_api.post(
        "/flow_runs/filter", json={"deployments": {"name": {"any_": ["triggered-model"]}}}
    ).json()
    assert len(runs) == 1 and note.startswith(f"flow run {runs[0]['name']}")
    assert runs[0]["parameters"] == {
        "dataset": "mammography",
        "as_of": TODAY.isoformat(),
        "reason": "drift: s01",
    }
    assert runs[0]["state_type"] == "SCHEDULED"  # no worker here: it waits for the retrain pool's workers


def test_a_deployment_runs_day_parameter_becomes_a_date():
    """Deployment runs pass JSON: the flows turn `as_of="2026-12-01"` into a date, and name a bad one."""
    from datetime import date

    from flows.jobs.common import day_parameter
    from vae import InputError

    assert day_parameter("2026-12-01") == date(2026, 12, 1) == day_parameter(date(2026, 12, 1))
    assert day_parameter(None) is None
    with pytest.raises(InputError, match="a day must be YYYY-MM-DD, got '12/01/2026'"):
        day_parameter("12/01/2026")
