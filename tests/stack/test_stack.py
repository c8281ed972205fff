"""`sentinel stack` for real: PostgreSQL, an S3 server, MLflow and Prefect servers on them, and workers.

Everything runs as processes on loopback, started and stopped by the project's own command; a retrain is
fired by the Prefect scheduler, run by the worker, registered in MLflow on PostgreSQL, with its artifacts
as objects in the S3 bucket.
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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import boto3
import httpx
import mlflow
import numpy as np
import psycopg2
import pytest

from flows.adapters.connect import lake_of, registry_of
from flows.console.demo import demo_data, feature_frame, seed_lake
from flows.settings import Settings
from flows.stack.parts import S3_KEYS, exports
from vae.datasets import find_shipped, load_npz

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
PARTS = ["postgres", "s3", "mlflow", "prefect", "retrain-worker", "monitor-worker"]


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _stack_env(home: Path) -> dict[str, str]:
    """A home PostgreSQL (running as its own user) can reach, free ports, a quick scheduler."""
    pg, s3, mlflow, prefect, w1, w2 = _free_ports(6)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTINEL_", "PREFECT_", "MLFLOW_"))}
    return env | {
        "SENTINEL_HOME": str(home),
        "SENTINEL_STACK__POSTGRES_PORT": str(pg),
        "SENTINEL_STACK__S3_PORT": str(s3),
        "SENTINEL_STACK__MLFLOW_PORT": str(mlflow),
        "SENTINEL_STACK__PREFECT_PORT": str(prefect),
        "SENTINEL_STACK__WORKER_PORTS": json.dumps([w1, w2]),
        "SENTINEL_STACK__SCHEDULER_LOOP_SECONDS": "5",
    }


def _sentinel(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextlib.contextmanager
def _home() -> Iterator[Path]:
    """A folder outside pytest's (0700) tmp tree, as PostgreSQL runs as the postgres user; removed after."""
    top = Path(tempfile.mkdtemp(prefix="sentinel-stack-"))
    top.chmod(0o755)
    try:
        yield top / "home"
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    """The stack up, and the environment that points sentinel at it; down again whatever happens."""
    with _home() as home:
        yield from _up_and_down(_stack_env(home))


def _up_and_down(env: dict[str, str]) -> Iterator[dict[str, str]]:
    try:
        started = _sentinel("stack", "up", env=env)
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        yield env | exports(Settings(**_settings_of(env)))
    finally:
        stopped = _sentinel("stack", "down", env=env)
        assert stopped.returncode == 0, stopped.stderr[-2000:]
    assert not list((Path(env["SENTINEL_HOME"]) / "stack").glob("*.pid")), "pid files left behind"
    ports = [int(env[f"SENTINEL_STACK__{p}_PORT"]) for p in ("POSTGRES", "S3", "MLFLOW", "PREFECT")]
    assert not [p for p in ports if _answers(p)], "a part still answers after stack down"


def _settings_of(env: dict[str, str]) -> dict[str, object]:
    return {
        "home": Path(env["SENTINEL_HOME"]),
        "stack": {
            "postgres_port": int(env["SENTINEL_STACK__POSTGRES_PORT"]),
            "s3_port": int(env["SENTINEL_STACK__S3_PORT"]),
            "mlflow_port": int(env["SENTINEL_STACK__MLFLOW_PORT"]),
            "prefect_port": int(env["SENTINEL_STACK__PREFECT_PORT"]),
            "worker_ports": json.loads(env["SENTINEL_STACK__WORKER_PORTS"]),
        },
    }


def _answers(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_taken_port_is_one_line_and_nothing_starts():
    with _home() as home:
        _refuses_a_taken_port(_stack_env(home))


def _refuses_a_taken_port(env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(env["SENTINEL_STACK__S3_PORT"])))
        squatter.listen()
        out = _sentinel("stack", "up", env=env, timeout=60)
    assert out.returncode == 1
    assert out.stdout.strip().splitlines() == [
        f"error: s3: port {env['SENTINEL_STACK__S3_PORT']} is already taken (set stack.s3_port)"
    ]
    assert not list((Path(env["SENTINEL_HOME"]) / "stack").glob("*.pid"))
    assert not _answers(int(env["SENTINEL_STACK__POSTGRES_PORT"]))


def test_every_part_answers(stack):
    out = _sentinel("stack", "status", env=stack, timeout=60)
    assert out.returncode == 0, out.stdout
    assert out.stdout.split() == [w for part in PARTS for w in (f"{part}:", "up")]


@pytest.fixture(scope="module")
def scheduled(stack: dict[str, str]) -> dict[str, object]:
    """A lake seeded in S3, the deployments on the workers' pools, and the first scheduled retrain's run."""
    settings = Settings(
        **_settings_of(stack),
        lake={"root": stack["SENTINEL_LAKE__ROOT"], "endpoint_url": stack["SENTINEL_LAKE__ENDPOINT_URL"]},
    )
    today = datetime.now(UTC).date()
    with pytest.MonkeyPatch.context() as env:
        for name, value in S3_KEYS.items():
            env.setenv(name, value)
        # the seeded failing sensor lands on the day after tomorrow, outside today's window
        seed_lake(
            lake_of(settings), demo_data(settings), "mammography", 10, today + timedelta(days=2), seed=0
        )
    deployed = _sentinel(
        "deploy", "--work-pool", "sentinel-retrain", "--monitor-work-pool", "sentinel-process",
        "--retrain-cron", "* * * * *", "--monitor-cron", "0 0 1 1 *", env=stack,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    first = _first_finished_run(stack["SENTINEL_PREFECT_API_URL"], "retrain", seconds=240)
    _pause(stack["SENTINEL_PREFECT_API_URL"], first["deployment_id"])  # one scheduled run is the story
    return first


def _pause(api: str, deployment: str) -> None:
    """Pause the deployment's schedule and drop the runs it had already scheduled."""
    httpx.patch(f"{api}/deployments/{deployment}", json={"paused": True}, timeout=10).raise_for_status()
    body = {
        "deployments": {"id": {"any_": [deployment]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
    }
    for run in httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json():
        httpx.delete(f"{api}/flow_runs/{run['id']}", timeout=10)


def test_a_scheduled_retrain_runs_on_the_worker_into_postgres_and_s3(stack, scheduled):
    worker_log = (Path(stack["SENTINEL_HOME"]) / "stack" / "retrain-worker.log").read_text()
    assert scheduled["state_type"] == "COMPLETED", worker_log[-3000:]
    assert scheduled["parameters"]["reason"] == "schedule"

    status = _sentinel("status", "--json", env=stack, timeout=120)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["champion"]["version"] is not None

    # the registry is PostgreSQL's, and the model's files are objects in the S3 bucket, nowhere local
    pg = psycopg2.connect(
        host="127.0.0.1", port=stack["SENTINEL_STACK__POSTGRES_PORT"], user="sentinel", dbname="mlflow"
    )
    with pg, pg.cursor() as cursor:
        cursor.execute("SELECT name, version FROM model_versions")
        assert ("vae-sentinel", 1) in cursor.fetchall()
    pg.close()
    s3 = boto3.client("s3", endpoint_url=stack["SENTINEL_LAKE__ENDPOINT_URL"])
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="sentinel-artifacts").get("Contents", [])]
    assert any(k.endswith("detector/weights.safetensors") for k in keys), keys
    assert not list(Path(stack["SENTINEL_HOME"]).rglob("mlartifacts")), "artifacts were written locally"


CONSUMER = """
import importlib.util, sys
import mlflow, pandas as pd
assert importlib.util.find_spec("flows") is None and importlib.util.find_spec("vae") is None, "ours is here"
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(f"models:/vae-sentinel/{sys.argv[2]}")  # the champion's version, as resolved
print(model.predict(pd.read_json(sys.argv[3], orient="split"))["score"].to_json(orient="values"))
"""


def test_a_consumer_with_only_the_models_requirements_gets_the_same_scores(stack, scheduled, tmp_path):
    """A fresh virtual environment from the model's own requirements.txt (torch from the local wheel, as in
    the Makefile) loads the champion from the MLflow server, with no S3 keys and nothing of this project.
    """
    assert scheduled["state_type"] == "COMPLETED"
    server = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    mlflow.set_tracking_uri(server)  # models:/ URIs resolve through the registry URI, which the adapter sets
    mlflow.set_registry_uri(server)
    champion = mlflow.MlflowClient().get_model_version_by_alias("vae-sentinel", "champion").version
    model = mlflow.artifacts.download_artifacts("models:/vae-sentinel@champion", dst_path=str(tmp_path / "m"))
    requirements = str(Path(model) / "requirements.txt")
    assert "vae-sentinel" not in Path(requirements).read_text()
    venv = tmp_path / "consumer"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"torch=={version('torch').split('+')[0]}"], check=True, timeout=600)
    subprocess.run([*pip, "-r", requirements], check=True, timeout=600)

    rows = feature_frame(load_npz(find_shipped(ROOT / "data", "mammography")).X[:200])
    rows.to_json(tmp_path / "rows.json", orient="split")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SENTINEL_", "MLFLOW_"))}
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CONSUMER, server, champion, str(tmp_path / "rows.json")],
        cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = registry_of(Settings(registry={"tracking_uri": server})).load_version(champion)
    np.testing.assert_allclose(json.loads(out.stdout), loaded.detector.score(rows), rtol=1e-6)


def _first_finished_run(api: str, flow: str, seconds: float) -> dict[str, object]:
    """The first run of `flow`'s deployment to reach a final state, polling the Prefect API."""
    deadline = time.monotonic() + seconds
    body = {"flows": {"name": {"any_": [flow]}}, "sort": "EXPECTED_START_TIME_ASC"}
    while time.monotonic() < deadline:
        runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
        done = [r for r in runs if r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")]
        if done:
            return done[0]
        time.sleep(2)
    pytest.fail(f"no {flow} run finished within {seconds:g} s; runs seen: {[r['state_type'] for r in runs]}")
