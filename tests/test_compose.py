"""The compose file and `sentinel stack` are one topology: the same servers with the same commands and
variables, workers on the same pools, with the same sentinel environment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from flows.settings import Settings
from flows.stack.parts import Part, exports, parts

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "infra" / "docker-compose.yml"
# each part of the process stack -> the compose services that play it
SERVICES = {
    "postgres": ["postgres-mlflow", "postgres-prefect"],
    "s3": ["minio"],
    "mlflow": ["mlflow"],
    "prefect": ["prefect-server"],
    "retrain-worker": ["worker-retrain"],
    "monitor-worker": ["worker-monitor"],
    "dask-scheduler": ["dask-scheduler"],
    "dask-worker": ["dask-worker"],
}


@pytest.fixture(scope="module")
def compose() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> dict[str, Part]:
    with_dask = Settings(home=tmp_path_factory.mktemp("stack"), stack={"dask_workers": 2})
    return {p.name: p for p in parts(with_dask)}


def _command(service: dict) -> str:
    command = service.get("command", "")
    return " ".join(command) if isinstance(command, list) else command


def test_every_part_of_the_process_stack_is_a_compose_service(compose, stack):
    assert set(stack) == set(SERVICES)
    assert {s for names in SERVICES.values() for s in names} <= set(compose)


@pytest.mark.parametrize("name", ["mlflow", "prefect"])
def test_the_servers_run_the_same_command_with_the_same_options(compose, stack, name):
    ours = stack[name].command
    theirs = _command(compose[SERVICES[name][0]])
    program = " ".join(ours[1:3]) if name == "prefect" else ours[1]  # "server start" / "server"
    assert f"{Path(ours[0]).name} {program}" in theirs
    options = {word for word in ours if word.startswith("--")} - {"--workers"}
    assert options == {word for word in theirs.split() if word.startswith("--")} - {"--allowed-hosts"}


def test_the_servers_read_the_same_variables(compose, stack):
    prefect = compose["prefect-server"]["environment"]
    url = "PREFECT_SERVER_DATABASE_CONNECTION_URL"
    assert stack["prefect"].env[url].split("://")[0] == prefect[url].split("://")[0] == "postgresql+asyncpg"
    mlflow = compose["mlflow"]["environment"]
    s3_names = {"MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"}
    assert s3_names <= set(stack["mlflow"].env) and s3_names <= set(mlflow)
    assert "--artifacts-destination" in stack["mlflow"].command
    assert "s3://" in _command(compose["mlflow"]) and any(
        w.startswith("s3://") for w in stack["mlflow"].command
    )


def test_dask_runs_the_same_programs_on_the_same_ports(compose, stack):
    for name in ("dask-scheduler", "dask-worker"):
        ours, theirs = stack[name].command, _command(compose[name]).split()
        assert [Path(ours[0]).name, ours[1]] == theirs[:2]
        assert {w for w in ours if w.startswith("--")} - {"--host", "--worker-port", "--name"} == {
            w for w in theirs if w.startswith("--")
        } - {"--host"}
    assert stack["dask-scheduler"].port == 8786
    assert "tcp://dask-scheduler:8786" in _command(compose["dask-worker"])


@pytest.mark.parametrize("role", ["retrain", "monitor"])
def test_the_workers_poll_the_same_pools_with_the_same_environment(compose, stack, role, tmp_path):
    ours = stack[f"{role}-worker"]
    service = compose[SERVICES[f"{role}-worker"][0]]
    pool = ours.command[ours.command.index("--pool") + 1]
    assert f"prefect worker start --pool {pool} --type process" == _command(service)
    assert set(exports(Settings(home=tmp_path))) <= set(service["environment"])
    assert {"PREFECT_API_URL", "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"} <= set(ours.env) & set(
        service["environment"]
    )


def test_compose_config_is_valid_where_docker_compose_runs():
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode:
        pytest.skip("docker compose is not available here")
    done = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def test_the_kubernetes_gpu_job_template_renders_with_prefects_renderer():
    """What a Kubernetes worker of the GPU pool does with the template and its defaults."""
    from prefect.utilities.templating import apply_values

    template = json.loads((ROOT / "infra" / "k8s" / "gpu-base-job-template.json").read_text())
    defaults = {k: v["default"] for k, v in template["variables"]["properties"].items() if "default" in v}
    job = apply_values(template["job_configuration"], defaults)["job_manifest"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == defaults["gpu_count"] >= 1
    assert container["env"]["SENTINEL_DETECTOR__DEVICE"] == "cuda"
    assert "{{" not in json.dumps(job)  # every placeholder has a value
