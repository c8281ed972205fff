"""The parts of the production topology, as processes: what each runs, with what, and how it answers.

PostgreSQL holds MLflow's and Prefect's databases; an S3-compatible server (moto) holds the lake and
MLflow's artifacts; the MLflow server proxies those artifacts (clients need no S3 credentials for models);
the Prefect server schedules; one process worker per pool runs the flows; with `stack.dask_workers` > 0, a
Dask scheduler and its workers score batch chunks.

Example:
    >>> [part.name for part in parts(settings)]
    ['postgres', 's3', 'mlflow', 'prefect', 'retrain-worker', 'monitor-worker']
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from flows.errors import StackError
from flows.settings import Settings, StackSettings

S3_KEYS = {  # the local S3 server takes any key; these name it in logs
    "AWS_ACCESS_KEY_ID": "sentinel",
    "AWS_SECRET_ACCESS_KEY": "sentinel-local",
    "AWS_DEFAULT_REGION": "us-east-1",
}
DB_USER = "sentinel"


@dataclass(frozen=True)
class Part:
    """One process of the stack: its command, environment, port, health URL (or check) and start-up wave.

    Parts of one wave start together, after every part of the waves before answers.
    """

    name: str
    command: list[str]
    port: int
    wave: int
    health_url: str | None = None
    ready: Callable[[], bool] | None = None  # a check beyond answering, e.g. every Dask worker joined
    env: dict[str, str] = field(default_factory=dict)
    stop_signal: str = "SIGTERM"
    prepare: Callable[[], None] | None = None  # before the start, e.g. initdb
    after: Callable[[], None] | None = None  # once healthy, e.g. databases and buckets


def folder(settings: Settings) -> Path:
    """Where the stack keeps its data, logs and pid files: HOME/stack."""
    return (settings.home / "stack").resolve()


def exports(settings: Settings) -> dict[str, str]:
    """The environment that points sentinel (and boto3) at the stack."""
    s = settings.stack
    dask = {"SENTINEL_DASK_ADDRESS": f"tcp://{s.host}:{s.dask_ports[0]}"} if s.dask_workers else {}
    return {
        "SENTINEL_PREFECT_API_URL": f"http://{s.host}:{s.prefect_port}/api",
        "SENTINEL_REGISTRY__TRACKING_URI": f"http://{s.host}:{s.mlflow_port}",
        "SENTINEL_LAKE__ROOT": f"s3://{s.lake_bucket}",
        "SENTINEL_LAKE__ENDPOINT_URL": s3_url(s),
        **dask,
        **S3_KEYS,
    }


def s3_url(s: StackSettings) -> str:
    """The S3 server's endpoint."""
    return f"http://{s.host}:{s.s3_port}"


def postgres_url(s: StackSettings, database: str, driver: str = "postgresql") -> str:
    """A connection URL of one of the stack's databases."""
    return f"{driver}://{DB_USER}@{s.host}:{s.postgres_port}/{database}"


def parts(settings: Settings) -> list[Part]:
    """Every part of the stack, in start-up order."""
    s, home = settings.stack, folder(settings)
    bin_dir = Path(sys.executable).parent
    quiet = {"MLFLOW_DISABLE_TELEMETRY": "true", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    sentinel_env = exports(settings)
    prefect_api = sentinel_env["SENTINEL_PREFECT_API_URL"]
    return [
        _postgres(s, home / "postgres"),
        Part(
            "s3",
            [str(bin_dir / "moto_server"), "-H", s.host, "-p", str(s.s3_port)],
            s.s3_port,
            wave=0,
            health_url=f"{s3_url(s)}/moto-api/",
            after=lambda: _buckets(s),
        ),
        Part(
            "mlflow",
            [
                str(bin_dir / "mlflow"),
                "server",
                "--backend-store-uri",
                postgres_url(s, "mlflow", "postgresql+psycopg2"),
                "--artifacts-destination",
                f"s3://{s.artifact_bucket}/mlflow",
                "--host",
                s.host,
                "--port",
                str(s.mlflow_port),
                "--workers",
                "2",
            ],
            s.mlflow_port,
            wave=1,
            health_url=f"http://{s.host}:{s.mlflow_port}/health",
            # no job runner: its five processes serve MLflow's GenAI jobs, which nothing here submits
            env={
                **quiet,
                **S3_KEYS,
                "MLFLOW_S3_ENDPOINT_URL": s3_url(s),
                "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            },
        ),
        Part(
            "prefect",
            [str(bin_dir / "prefect"), "server", "start", "--host", s.host, "--port", str(s.prefect_port)],
            s.prefect_port,
            wave=1,
            health_url=f"{prefect_api}/health",
            env={
                **quiet,
                "PREFECT_HOME": str(home / "prefect"),
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres_url(s, "prefect", "postgresql+asyncpg"),
                "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": str(s.scheduler_loop_seconds),
                "PREFECT_SERVER_DEPLOYMENTS_CONCURRENCY_SLOT_WAIT_SECONDS": str(s.slot_wait_seconds),
            },
        ),
        *[
            Part(
                f"{role}-worker",
                [
                    str(bin_dir / "prefect"),
                    "worker",
                    "start",
                    "--pool",
                    pool,
                    "--type",
                    "process",
                    "--name",
                    f"{role}-worker",
                    "--with-healthcheck",
                ],
                port,
                wave=2,
                health_url=f"http://{s.host}:{port}/health",
                env={
                    **quiet,
                    **sentinel_env,
                    "PREFECT_API_URL": prefect_api,
                    "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(settings.flow_heartbeat_seconds),
                    "PREFECT_HOME": str(home / f"{role}-worker"),
                    "SENTINEL_HOME": str(settings.home.resolve()),
                    "PREFECT_WORKER_WEBSERVER_HOST": s.host,
                    "PREFECT_WORKER_WEBSERVER_PORT": str(port),
                },
            )
            for role, pool, port in (
                ("retrain", s.retrain_pool, s.worker_ports[0]),
                ("monitor", s.monitor_pool, s.worker_ports[1]),
            )
        ],
        *(_dask(s, bin_dir) if s.dask_workers else []),
    ]


def _dask(s: StackSettings, bin_dir: Path) -> list[Part]:
    """A Dask scheduler and `s.dask_workers` single-threaded workers (this environment, so our code loads)."""
    scheduler, http, first = s.dask_ports
    counts = f"http://{s.host}:{http}/json/counts.json"

    def all_joined() -> bool:
        import httpx

        return bool(httpx.get(counts, timeout=2).json()["workers"] >= s.dask_workers)

    workers = f"{first}:{first + s.dask_workers - 1}"
    dask = str(bin_dir / "dask")
    # Dask's event-loop tick (20 ms) and system monitor (0.5 s) are for interactive diagnostics; at 1 s
    # and 2 s an idle scheduler and two workers use 4.3 core-s a minute instead of 6.5 (measured here).
    calm = {
        "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
        "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "2s",
    }
    return [
        Part(
            "dask-scheduler",
            [
                dask,
                "scheduler",
                "--host",
                s.host,
                "--port",
                str(scheduler),
                "--dashboard-address",
                f"{s.host}:{http}",
            ],
            scheduler,
            wave=1,
            health_url=f"http://{s.host}:{http}/health",
            env=calm,
        ),
        Part(
            "dask-worker",
            [
                dask,
                "worker",
                f"tcp://{s.host}:{scheduler}",
                "--host",
                s.host,
                "--nworkers",
                str(s.dask_workers),
                "--nthreads",
                "1",
                "--worker-port",
                workers,
                "--no-dashboard",
                "--name",
                "sentinel",
            ],
            first,
            wave=2,
            health_url=counts,
            ready=all_joined,
            env=calm | S3_KEYS,  # workers read the lake's files themselves (a retrain's window scan)
        ),
    ]


def _postgres(s: StackSettings, data: Path) -> Part:
    """PostgreSQL from the machine's packages; as root it runs as the `postgres` user, as it must."""
    bin_dir = _postgres_bin()
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def initdb() -> None:
        if (data / "PG_VERSION").exists():
            return
        data.mkdir(parents=True, exist_ok=True)
        if as_owner:
            shutil.chown(data, "postgres", "postgres")
        init = [*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust"]
        _run(init, "postgres: initdb")

    def databases() -> None:
        import psycopg2

        conn = psycopg2.connect(postgres_url(s, "postgres"))
        conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
        try:
            with conn.cursor() as cursor:
                for name in ("mlflow", "prefect"):
                    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cursor.fetchone() is None:
                        cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()

    command = [
        *as_owner,
        str(bin_dir / "postgres"),
        "-D",
        str(data),
        "-c",
        f"listen_addresses={s.host}",
        "-p",
        str(s.postgres_port),
        "-k",
        str(data),
    ]
    return Part(
        "postgres", command, s.postgres_port, wave=0, stop_signal="SIGINT", prepare=initdb, after=databases
    )


def _postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (Debian keeps them off PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise StackError(
            "PostgreSQL is not installed: `make install` installs it (apt-get install postgresql)"
        )
    return versions[-1].parent


def _buckets(s: StackSettings) -> None:
    """The lake's and the artifacts' buckets, created when missing."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_url(s), **_boto_keys())
    held = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for bucket in {s.lake_bucket, s.artifact_bucket} - held:
        client.create_bucket(Bucket=bucket)


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_KEYS["AWS_DEFAULT_REGION"],
    }


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise StackError(f"{what} failed: {last[0]}")
