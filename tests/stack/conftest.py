"""The stack for the tests here: brought up once per test process by `sentinel stack up`, torn down
whatever happens.

`stack` is the environment that points sentinel at it; `scheduled` is the lake seeded in S3, both
deployments on the workers' pools (every minute; the monitor's paused at once, the retrain's after its
first run), and the first scheduled retrain's flow run. Helpers read the Prefect and MLflow servers' own
APIs.

Under `make test` (`-n 3 --dist loadgroup`) the two xdist groups, `stack` (the parts and the story,
test_stack.py and test_story.py) and `stack-faults` (test_faults.py), run on two of the workers, each on
a stack of its own; in one process they share one stack, the story first (tests/conftest.py orders it).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest

from flows.adapters.connect import lake_of
from flows.adapters.lake import Lake
from flows.console.demo import demo_data, seed_lake
from flows.stack.client import on_free_ports, pause_schedule, pointed_at, wait_until
from flows.stack.parts import exports

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
MODEL = "vae-sentinel"
DATASET = "mammography"
LENIENT = {"LOSS_TOLERANCE": 10, "RECALL_TOLERANCE": 1, "ALERT_RATE_LOWER": 0, "ALERT_RATE_UPPER": 1000}
SCHEDULER_LOOP_SECONDS = 5  # the test stacks' Prefect scheduler looks for runs to create this often
LENIENT_GATES = {f"SENTINEL_RETRAIN__GATES__{k}": str(v) for k, v in LENIENT.items()}  # gates that pass
DASK_WORKERS = 2  # a test stack's Dask workers, unless its tests' `dask_workers` fixture says otherwise


def stack_env(home: Path, dask_workers: int = DASK_WORKERS) -> dict[str, str]:
    """A home PostgreSQL (running as its own user) can reach, free ports, a quick scheduler, Dask."""
    return on_free_ports(home, dask_workers) | {
        "SENTINEL_STACK__SCHEDULER_LOOP_SECONDS": str(SCHEDULER_LOOP_SECONDS),
        "SENTINEL_MONITOR__WINDOW_DAYS": "2",  # the workers' monitor compares the newest two days
        "SENTINEL_FLOW_HEARTBEAT_SECONDS": "30",  # Prefect's shortest: a dead run is marked after 75 s
        "SENTINEL_STACK__SLOT_WAIT_SECONDS": "5",  # a run queued for the retrain's slot tries every 5 s
    }


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


def logs(home: Path) -> str:
    """The end of each part's log (a failed `stack up` names the log; the home goes with the fixture)."""
    return "".join(f"\n{log.name}:\n{log.read_text()[-1500:]}" for log in (home / "stack").glob("*.log"))


@pytest.fixture(scope="session")
def dask_workers() -> int:
    """The stack's Dask workers (test_faults.py, whose retrains scan their windows in process, has none)."""
    return DASK_WORKERS


@pytest.fixture(scope="session")
def stack(dask_workers: int) -> Iterator[dict[str, str]]:
    """The stack up, and the environment that points sentinel at it; down again whatever happens."""
    with scratch_home() as home:
        env = stack_env(home, dask_workers)
        try:
            started = sentinel("stack", "up", env=env)
            assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:] + logs(home)
            with pointed_at(env) as settings:
                exported = exports(settings)
            yield env | exported
        finally:
            stopped = sentinel("stack", "down", env=env)
            assert stopped.returncode == 0, stopped.stderr[-2000:]
        assert not list((home / "stack").glob("*.pid")), "pid files left behind"
        ports = [int(env[f"SENTINEL_STACK__{p}_PORT"]) for p in ("POSTGRES", "S3", "MLFLOW", "PREFECT")]
        assert not [p for p in ports if answers(p)], "a part still answers after stack down"


@pytest.fixture(scope="session")
def seeded_day() -> date:
    """The newest day seeded in the lake: the session's first date (UTC), for every test that needs
    "today" (a run crossing midnight UTC looked for a day nobody had written, and 10 tests failed)."""
    return datetime.now(UTC).date()


@pytest.fixture(scope="session")
def scheduled(stack: dict[str, str], seeded_day: date) -> dict[str, Any]:
    """A lake seeded in S3, the deployments on the workers' pools, and the first scheduled retrain's run.

    Both schedules fire every minute; the retrain's is paused once its first run is over (the story
    resumes it: later runs are part of the story, and promotions meanwhile would leave it a champion the
    warm-started runs no longer beat), the monitor's until the story injects a failing sensor.
    """
    with pointed_at(stack) as settings:  # normal days only: the story injects its failing sensor later
        seed_lake(lake_of(settings), demo_data(settings), DATASET, 10, seeded_day, seed=0, failing=False)
    deployed = sentinel(
        "deploy", "--work-pool", "sentinel-retrain", "--monitor-work-pool", "sentinel-process",
        "--retrain-cron", "* * * * *", "--monitor-cron", "* * * * *", env=stack,
    )  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout[-2000:] + deployed.stderr[-2000:]
    api = stack["SENTINEL_PREFECT_API_URL"]
    pause_schedule(api, deployment(api, "monitor")["id"], SCHEDULER_LOOP_SECONDS)
    first = wait_for_run(api, "retrain", lambda r: r["state_type"] in FINAL, seconds=360)
    pause_schedule(api, deployment(api, "retrain")["id"], SCHEDULER_LOOP_SECONDS)
    quiet(api)  # a run the schedule had started meanwhile ends before any test reads the champion
    return first


PREFECT = httpx.Client(timeout=10)  # the tests poll each second: a new client per call cost ~20 ms of CPU


def deployment(api: str, flow: str) -> dict[str, Any]:
    reply = PREFECT.get(f"{api}/deployments/name/{flow}/{MODEL}")
    reply.raise_for_status()
    return dict(reply.json())


def create_run(api: str, deployment_id: str, **parameters: Any) -> dict[str, Any]:
    """A run of the deployment created now through the Prefect API (not by its schedule)."""
    reply = PREFECT.post(
        f"{api}/deployments/{deployment_id}/create_flow_run", json={"parameters": parameters}
    )
    reply.raise_for_status()
    return dict(reply.json())


def runs_of(api: str, flow: str) -> list[dict[str, Any]]:
    """Every flow run of `flow` due by now, oldest expected start first (not the hour of runs an active
    schedule keeps ahead: polled each second, they cost the server and the test 3.4 core-s a minute)."""
    body = {
        "flows": {"name": {"any_": [flow]}},
        "flow_runs": {"expected_start_time": {"before_": datetime.now(UTC).isoformat()}},
        "sort": "EXPECTED_START_TIME_ASC",
        "limit": 200,
    }
    return list(PREFECT.post(f"{api}/flow_runs/filter", json=body).json())


def quiet(api: str) -> None:
    """Wait until no retrain is pending or running."""
    busy = ("PENDING", "RUNNING")
    wait_until(lambda: not [r for r in runs_of(api, "retrain") if r["state_type"] in busy], 300,
               "retrains finishing", interval=1)  # fmt: skip


def timestamp(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def raw_partitions(lake: Lake) -> dict[str, bytes]:
    """The dataset's raw partition files, as they are now."""
    keys = [key for key in lake.store.keys(DATASET) if key.startswith(f"{DATASET}/date=")]
    return {key: lake.store.read(key) for key in keys}


def wait_for_run(
    api: str, flow: str, wanted: Callable[[dict[str, Any]], bool], seconds: float
) -> dict[str, Any]:
    """The first run of `flow` (by expected start) that satisfies `wanted`, polling the Prefect API."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [r for r in runs_of(api, flow) if wanted(r)]
        return bool(found)

    try:
        wait_until(seen, seconds, f"a {flow} run as wanted", interval=1)
    except TimeoutError as exc:
        pytest.fail(f"{exc}; runs seen: {[r['state_name'] for r in runs_of(api, flow)]}")
    return found[0]


@contextlib.contextmanager
def retrain_process(
    env: dict[str, str], folder: Path
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """`sentinel retrain` as its own process, with its flow run once the Prefect server says it runs.

    Its output goes to FOLDER/stdout and FOLDER/stderr (`output` reads them); leaving the block waits
    for the process.
    """
    api = env["SENTINEL_PREFECT_API_URL"]
    before = {r["id"] for r in runs_of(api, "retrain")}
    folder.mkdir(parents=True, exist_ok=True)
    with (
        (folder / "stdout").open("w") as stdout,
        (folder / "stderr").open("w") as stderr,
        subprocess.Popen(
            [sys.executable, "-m", "flows", "retrain"],
            cwd=ROOT,
            env=env | {"COLUMNS": "300"},
            stdout=stdout,
            stderr=stderr,
            text=True,
        ) as run,
    ):
        started = ("RUNNING", *FINAL)  # running, or over already (a run that stops at once)
        yield (
            run,
            wait_for_run(api, "retrain", lambda r: r["id"] not in before and r["state_type"] in started, 120),
        )


def output(folder: Path) -> str:
    """What a `retrain_process` in FOLDER printed, stdout then stderr."""
    return (folder / "stdout").read_text() + (folder / "stderr").read_text()


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
    registered = client.search_model_versions(f"name='{MODEL}' and run_id='{runs[0].info.run_id}'")
    if not registered:  # the run stopped before its model was registered
        return None
    (version,) = registered
    gates = json.loads(version.tags["gate_report"])
    return {
        "version": version.version,
        "promoted": version.tags.get("promoted") == "true",
        "reasons": [g["reason"] for g in gates if not g["passed"]],
        "metrics": runs[0].data.metrics,
        "trigger": runs[0].data.tags.get("trigger"),
    }
