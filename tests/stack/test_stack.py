"""`sentinel stack` for real: PostgreSQL, an S3 server, MLflow and Prefect servers on them, and workers.

Everything runs as processes on loopback, started and stopped by the project's own command; a retrain is
fired by the Prefect scheduler, run by the worker, registered in MLflow on PostgreSQL, with its artifacts
as objects in the S3 bucket; a consumer with nothing but the model's requirements loads it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import boto3
import mlflow
import numpy as np
import psycopg2
import pytest

from flows.adapters.connect import registry_of
from flows.console.demo import feature_frame
from flows.settings import Settings
from tests.stack.conftest import ROOT, answers, scratch_home, sentinel, stack_env
from vae.datasets import find_shipped, load_npz

# the story's stack (test_faults.py has one of its own under xdist)
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.xdist_group("stack")]
PARTS = ["postgres", "s3", "mlflow", "prefect", "retrain-worker", "monitor-worker"]
PARTS += ["dask-scheduler", "dask-worker"]


def test_a_taken_port_is_one_line_and_nothing_starts():
    with scratch_home() as home:
        env = stack_env(home)
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", int(env["SENTINEL_STACK__S3_PORT"])))
            squatter.listen()
            out = sentinel("stack", "up", env=env, timeout=60)
        assert out.returncode == 1
        assert out.stdout.strip().splitlines() == [
            f"error: s3: port {env['SENTINEL_STACK__S3_PORT']} is already taken (set stack.s3_port)"
        ]
        assert not list((Path(env["SENTINEL_HOME"]) / "stack").glob("*.pid"))
        assert not answers(int(env["SENTINEL_STACK__POSTGRES_PORT"]))


def test_every_part_answers(stack):
    out = sentinel("stack", "status", env=stack, timeout=60)
    assert out.returncode == 0, out.stdout
    assert out.stdout.split() == [w for part in PARTS for w in (f"{part}:", "up")]


def test_a_scheduled_retrain_runs_on_the_worker_into_postgres_and_s3(stack, scheduled):
    worker_log = (Path(stack["SENTINEL_HOME"]) / "stack" / "retrain-worker.log").read_text()
    assert scheduled["state_type"] == "COMPLETED", worker_log[-3000:]
    assert scheduled["parameters"]["reason"] == "schedule"

    status = sentinel("status", "--json", env=stack, timeout=120)
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
    pip += ["--no-compile"]  # no bytecode for all of torch and mlflow: Python compiles what it imports
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
