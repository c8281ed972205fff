"""The whole story on the stack, asserted against the servers, not a harness.

After the first scheduled retrain (conftest's `scheduled`): `sentinel serve` runs as its own process
under steady requests while a later scheduled retrain (warm-started from the champion, on the same
days) promotes a new version and the service follows it; `sentinel score`
runs its chunks on the stack's Dask workers and writes scores and alerts to S3; a failing sensor lands
in a new day, the monitor's schedule fires on it, and its drift-triggered retrain runs through the
retrain deployment on the worker, excluding the alerted rows, while a second trigger waits for the
concurrency slot; the gates refuse both with reasons; `sentinel status`, `history` and `backtest` read
all of it from the servers. Then faults of issue 17 on the same stack: eight operators promoting at once
through the Prefect-held move lock, a retrain killed inside its champion move, and S3 faults through a
proxy in front of the stack's S3 server. (The other faults run on a stack of their own: test_faults.py.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import mlflow
import pandas as pd
import psutil
import pytest
from distributed import Client

from flows.adapters.connect import lake_of, registry_of
from flows.console.demo import corrupt_sensor
from flows.stack.client import free_ports, pause_schedule, pointed_at, set_paused, wait_until
from tests.faultproxy import FaultProxy
from tests.races import RACERS, extra_versions, race
from tests.stack.conftest import (
    DATASET,
    FINAL,
    LENIENT_GATES,
    MODEL,
    ROOT,
    SCHEDULER_LOOP_SECONDS,
    candidate_of,
    create_run,
    deployment,
    output,
    quiet,
    raw_partitions,
    retrain_process,
    runs_of,
    sentinel,
    timestamp,
    wait_for_run,
)

# the story's stack (test_faults.py has one of its own under xdist)
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.xdist_group("stack")]


@dataclass
class Traffic:
    """Requests sent to the service while the story runs: the versions that answered, and any failure."""

    versions: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def send(self, url: str, body: dict[str, Any]) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                try:
                    reply = client.post(f"{url}/score", json=body)
                    if reply.status_code == 200:
                        self.versions.append(reply.json()["version"])
                    else:
                        self.failures.append(f"{reply.status_code}: {reply.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                time.sleep(0.05)


@contextlib.contextmanager
def serving(env: dict[str, str], rows: pd.DataFrame) -> Iterator[tuple[str, Traffic]]:
    """`sentinel serve` as its own process (alias polled every second), with requests sent all along."""
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "flows", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env | {"SENTINEL_SERVE__POLL_SECONDS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    traffic = Traffic()
    sender = threading.Thread(target=traffic.send, args=(url, {"records": rows.to_dict("records")}))
    try:
        _wait_ready(url, server)
        sender.start()
        yield url, traffic
    finally:
        traffic.stop.set()
        if sender.is_alive():
            sender.join()
        server.terminate()
        server.wait(30)


def _wait_ready(url: str, server: subprocess.Popen[str]) -> None:
    def ready() -> bool:
        if server.poll() is not None:
            pytest.fail(f"sentinel serve exited: {server.stderr.read()[-2000:] if server.stderr else ''}")
        return httpx.get(f"{url}/ready", timeout=2).status_code == 200

    wait_until(ready, 90, "sentinel serve ready")


def _serving_version(url: str, version: str) -> None:
    """Wait until the service answers with `version`."""
    wait_until(lambda: httpx.get(f"{url}/ready", timeout=5).json()["version"] == version, 30,
               f"the service switching to version {version}")  # fmt: skip


def _scheduled_promotion(api: str, tracking: str, after: str) -> dict[str, Any]:
    """The first scheduled retrain that promotes a version newer than `after`: its run and candidate."""
    checked: dict[str, dict[str, Any] | None] = {}  # finished runs' candidates, read once each
    found: list[dict[str, Any]] = []

    def promoted() -> bool:
        for run in runs_of(api, "retrain"):
            if run["auto_scheduled"] and run["state_type"] == "COMPLETED" and run["id"] not in checked:
                checked[run["id"]] = candidate_of(tracking, run["id"])
            made = checked.get(run["id"])
            if made and made["promoted"] and int(made["version"]) > int(after):
                found.append(run | {"candidate": made})
                return True
        return False

    wait_until(promoted, 360, f"a scheduled retrain promoting a version after {after}", interval=2)
    return found[0]


def _states(api: str, run_id: str) -> list[str]:
    reply = httpx.get(f"{api}/flow_run_states/", params={"flow_run_id": run_id}, timeout=10)
    return [s["name"] for s in sorted(reply.json(), key=lambda s: s["timestamp"])]


def _task_prefixes(address: str) -> list[str]:
    """Names of the tasks the Dask scheduler has seen."""
    with Client(address, timeout=30) as client:
        return list(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes)))


def _drift_triggered(run: dict[str, Any]) -> bool:
    return str(run["parameters"].get("reason", "")).startswith("drift:")


def _aliases(client: mlflow.MlflowClient) -> tuple[str | None, str | None]:
    """Where champion and previous point now."""
    aliases = client.get_registered_model(MODEL).aliases
    return aliases.get("champion"), aliases.get("previous")


@pytest.fixture(scope="module")
def story(stack: dict[str, str], scheduled: dict[str, Any], seeded_day: date) -> dict[str, Any]:
    """Run the story once; return what the tests check."""
    api, tracking = stack["SENTINEL_PREFECT_API_URL"], stack["SENTINEL_REGISTRY__TRACKING_URI"]
    today = seeded_day
    with pointed_at(stack) as settings:
        lake = lake_of(settings)
        features, older, oldest = (
            lake.read_window(DATASET, today - timedelta(days=d), 1).filter(regex=r"^s\d+$") for d in (0, 8, 9)
        )
    seen: dict[str, Any] = {"first": candidate_of(tracking, scheduled["id"])}
    retrain = deployment(api, "retrain")

    with serving(stack, features.head(20)) as (url, traffic):
        # 1. the schedule, resumed, fires retrains (warm-started from the champion, on the same days); one
        # promotes a new version in the registry on PostgreSQL; the service follows with no failed request
        client = mlflow.MlflowClient(tracking, registry_uri=tracking)
        seen["served_first"] = client.get_model_version_by_alias(MODEL, "champion").version
        _serving_version(url, seen["served_first"])
        set_paused(api, retrain["id"], False)
        seen["promoted_by_schedule"] = _scheduled_promotion(api, tracking, after=seen["served_first"])
        pause_schedule(api, retrain["id"], SCHEDULER_LOOP_SECONDS)
        quiet(api)  # a scheduled run that had started before the pause finishes first
        seen["scheduled_runs"] = [r for r in runs_of(api, "retrain") if r["auto_scheduled"]]
        seen["champion"] = client.get_model_version_by_alias(MODEL, "champion").version
        _serving_version(url, seen["champion"])

        # 2. batch scoring of today on the stack's Dask workers, results in S3
        scored = sentinel("score", "--date", today.isoformat(), env=stack)
        assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr[-2000:]
        seen["dask_tasks"] = _task_prefixes(stack["SENTINEL_DASK_ADDRESS"])
        seen["score"] = scored.stdout
        with pointed_at(stack):
            seen["scores_keys"] = lake.store.keys(f"{DATASET}/_scores/date={today}")
            alerts = lake.store.keys(f"{DATASET}/_alerts/date={today}")
            seen["alerts"] = sum(len(lake.read_table(k)) for k in alerts)

        # 3. two new days land, the first with a failing sensor (rows of days outside the retrain window,
        # so they are no duplicates there); the monitor (newest 2 days) fires on them and triggers a retrain
        failing_day, newest = today + timedelta(days=1), today + timedelta(days=2)
        with pointed_at(stack):
            lake.write_day(DATASET, failing_day, corrupt_sensor(older, "s01", seed=1))
            lake.write_day(DATASET, newest, oldest)
        landed = datetime.now(UTC)
        monitor = deployment(api, "monitor")
        set_paused(api, monitor["id"], False)
        fired = wait_for_run(  # a run that read the new days (not one a pause had raced)
            api,
            "monitor",
            lambda r: (
                r["state_type"] in FINAL and timestamp(r["start_time"] or r["expected_start_time"]) > landed
            ),
            seconds=150,
        )
        pause_schedule(api, monitor["id"], SCHEDULER_LOOP_SECONDS)
        seen["monitor"] = fired
        triggered = wait_for_run(
            api,
            "retrain",
            lambda r: _drift_triggered(r) and r["state_type"] != "SCHEDULED",
            seconds=120,
        )
        # 4. a second trigger while the first holds the deployment's only slot
        second = create_run(
            api, retrain["id"], **triggered["parameters"] | {"reason": "drift: a second trigger"}
        )
        quiet(api)
        wait_for_run(api, "retrain", lambda r: r["id"] == second["id"] and r["state_type"] in FINAL, 180)
        seen["triggered"] = [
            r | {"states": _states(api, r["id"]), "candidate": candidate_of(tracking, r["id"])}
            for r in runs_of(api, "retrain")
            if r["id"] in (triggered["id"], second["id"])
        ]
        seen["retrains"] = runs_of(api, "retrain")
        seen["traffic"] = traffic
        seen["newest"] = newest

    for command in (["status", "--json"], ["history", "--json"]):
        out = sentinel(*command, env=stack, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        seen[command[0]] = json.loads(out.stdout)
    day = newest.isoformat()
    replay = sentinel("backtest", "--from", day, "--to", day, "--champion", "auto", env=stack, timeout=300)
    assert replay.returncode == 0, replay.stdout[-2000:] + replay.stderr[-2000:]
    seen["backtest"] = replay.stdout
    return seen


def test_a_scheduled_retrain_promotes_and_the_service_switches_with_no_failed_request(story):
    scheduled = [r for r in story["scheduled_runs"] if r["state_type"] == "COMPLETED"]
    assert len(scheduled) >= 2 and {r["parameters"]["reason"] for r in scheduled} == {"schedule"}
    promoter = story["promoted_by_schedule"]
    assert promoter["auto_scheduled"] and promoter["candidate"]["promoted"]
    assert int(story["champion"]) >= int(promoter["candidate"]["version"]) > int(story["served_first"])
    traffic = story["traffic"]
    assert traffic.failures == []
    assert story["served_first"] in traffic.versions and promoter["candidate"]["version"] in traffic.versions
    assert traffic.versions[-1] == story["champion"]


def test_batch_scoring_runs_on_dask_and_writes_to_s3(story):
    assert any(name.startswith("score_file") for name in story["dask_tasks"]), story["dask_tasks"]
    assert story["scores_keys"] and story["alerts"] > 0, story["score"]


def test_the_monitor_schedule_fires_on_the_failing_sensor_and_retrains_through_the_deployment(story):
    assert story["monitor"]["state_type"] == "COMPLETED" and story["monitor"]["auto_scheduled"]
    first, second = story["triggered"]
    assert first["state_type"] == "COMPLETED", (first["state_name"], first["state"]["message"])
    assert first["parameters"]["as_of"] == story["newest"].isoformat()
    assert first["candidate"]["trigger"].startswith("drift: ") and "s01" in first["candidate"]["trigger"]
    # ran on the retrain pool's worker, leaving out the rows today's scoring flagged
    assert first["work_queue_name"] and first["deployment_id"] == second["deployment_id"]
    assert first["candidate"]["metrics"]["rows_alerted_dropped"] == story["alerts"]


def test_the_concurrency_limit_holds_and_the_gates_refuse_with_reasons(story):
    first, second = story["triggered"]
    assert "AwaitingConcurrencySlot" in second["states"], second["states"]
    finished = [r for r in story["retrains"] if r["start_time"] and r["end_time"]]
    spans = sorted((timestamp(r["start_time"]), timestamp(r["end_time"])) for r in finished)
    assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans)), spans
    for run in (first, second):
        assert run["state_type"] == "COMPLETED", (run["state_name"], run["state"]["message"])
        assert not run["candidate"]["promoted"]
        assert run["candidate"]["reasons"], "refused without a reason"


def test_status_history_and_backtest_read_it_from_the_servers(story):
    status = story["status"]
    assert status["champion"]["version"] == story["champion"]
    refused = {v["version"] for v in status["versions"] if not v["promoted"]}
    assert {r["candidate"]["version"] for r in story["triggered"]} <= refused
    moves = [(e["action"], e["champion"]) for e in story["history"]]
    assert moves[0] == ("promote", story["first"]["version"])  # the first scheduled run's gates passed
    assert ("promote", story["promoted_by_schedule"]["candidate"]["version"]) in moves
    assert moves[-1] == ("promote", story["champion"])  # the refused drift retrains moved nothing
    assert "refused" in story["backtest"] and story["newest"].isoformat() in story["backtest"]


@pytest.mark.reliability
def test_eight_operators_promoting_at_once_leave_one_winner_through_the_prefect_lock(stack, story):
    tracking = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    versions = extra_versions(client, MODEL, champion, RACERS)

    outcome = race(stack, versions, replaced=champion)

    (winner,) = outcome.winners
    losers = [run.stdout for version, run in outcome.runs.items() if version != winner]
    assert all(f"changed from {champion} to {winner} before this override" in out for out in losers), losers
    assert client.get_model_version_by_alias(MODEL, "champion").version == winner
    history = sentinel("history", "--json", env=stack, timeout=120)
    moves = [(e["action"], e["champion"], e["replaced"]) for e in json.loads(history.stdout)]
    assert moves[-1] == ("override", winner, champion) and moves[-2][1] == champion
    api = stack["SENTINEL_PREFECT_API_URL"]
    limits = httpx.post(f"{api}/v2/concurrency_limits/filter", timeout=10).json()
    assert f"sentinel-champion-{MODEL}" in {limit["name"] for limit in limits}  # the lock they shared


@pytest.mark.reliability
def test_a_retrain_killed_inside_its_champion_move_is_settled_by_the_next_run(stack, story, tmp_path):
    """The retrain process is killed (SIGKILL) in its promotion, after `previous` moved and while the
    champion alias write is held at a proxy in front of the MLflow server. The ledger shows the move
    unconfirmed and the champion has not moved. The next retrain waits out the dead holder's lease on the
    move lock, settles the move (failed, `previous` put back) and goes on."""
    tracking = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    before = _aliases(client)
    with FaultProxy(tracking, stall_seconds=60) as proxy:
        proxy.inject_on("POST", "/registered-models/alias", "pass", "stall")  # previous, then champion
        env = stack | LENIENT_GATES | {"SENTINEL_REGISTRY__TRACKING_URI": proxy.url}
        with retrain_process(env, tmp_path / "killed") as (run, killed):
            wait_until(lambda: ("POST", "stall") in proxy.seen or run.poll() is not None, 300, "the alias")
            process = psutil.Process(run.pid)
            for each in [*process.children(recursive=True), process]:
                each.kill()
    assert run.returncode == -signal.SIGKILL, output(tmp_path / "killed")[-3000:]
    history = json.loads(sentinel("history", "--json", env=stack, timeout=120).stdout)
    candidate = candidate_of(tracking, killed["id"])
    assert candidate is not None and not candidate["promoted"]
    assert (history[-1]["champion"], history[-1]["state"]) == (candidate["version"], "unconfirmed")
    assert _aliases(client) == (before[0], before[0])  # previous moved, the champion did not

    with retrain_process(stack, tmp_path / "next") as (run, following):
        run.wait(timeout=400)
    printed = output(tmp_path / "next")
    assert run.returncode in (0, 1) and "Traceback" not in printed, printed[-3000:]
    moves = json.loads(sentinel("history", "--json", env=stack, timeout=120).stdout)
    settled = next(m for m in moves if m["at"] == history[-1]["at"] and m["champion"] == candidate["version"])
    assert settled["state"] == "failed" and "[reconciled:" in settled["note"], settled
    assert all(m["state"] != "unconfirmed" for m in moves)
    after = candidate_of(tracking, following["id"])
    assert after is not None
    assert _aliases(client) == ((after["version"], before[0]) if after["promoted"] else before)
    with pointed_at(stack) as settings:
        loaded = registry_of(settings).champion()  # as the service loads it: artifacts and all
    assert loaded is not None and loaded.version == _aliases(client)[0]


@pytest.mark.reliability
def test_s3_faults_between_the_clients_and_the_stacks_s3_server_are_retried_and_leave_whole_objects(
    stack, story, seeded_day, tmp_path
):
    """A fault proxy on loopback between sentinel (and the Dask workers it hands files to) and the stack's
    S3 server. A retrain reads its window through 503 SlowDown, a 500, a reset connection and an answer
    that stalls past the timeout; `sentinel score` writes its scores through an upload cut mid-way. Both
    complete; the raw partitions are unchanged and the scores object is whole."""
    tracking, day = stack["SENTINEL_REGISTRY__TRACKING_URI"], seeded_day - timedelta(days=1)
    with pointed_at(stack) as settings:
        lake = lake_of(settings)
        raw = raw_partitions(lake)
        day_rows = sum(len(lake.read_table(key)) for key in lake.store.keys(f"{DATASET}/date={day}"))
    with FaultProxy(stack["SENTINEL_LAKE__ENDPOINT_URL"], stall_seconds=5) as proxy:
        proxy.inject_on("GET", f"/{DATASET}/date", "503", "500", "reset", "stall")  # "=" is sent as %3D
        env = stack | {"SENTINEL_LAKE__ENDPOINT_URL": proxy.url, "SENTINEL_LAKE__S3_TIMEOUT_SECONDS": "2"}
        with retrain_process(env, tmp_path) as (run, flow_run):
            run.wait(timeout=400)
        printed = output(tmp_path)
        assert run.returncode in (0, 1) and "Traceback" not in printed, printed[-3000:]
        assert [fault for _, fault in proxy.seen if fault != "pass"] == ["503", "500", "reset", "stall"]
        assert candidate_of(tracking, flow_run["id"]) is not None, printed[-3000:]  # read it all, trained

        proxy.inject_on("PUT", f"{DATASET}/_scores/", "cut")
        scored = sentinel("score", "--date", day.isoformat(), env=env)
        assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr[-2000:]
        assert ("PUT", "cut") in proxy.seen
    with pointed_at(stack) as settings:
        lake = lake_of(settings)
        (key,) = lake.store.keys(f"{DATASET}/_scores/date={day}")
        assert len(lake.read_table(key)) == day_rows  # whole, not the half that was cut
        assert raw_partitions(lake) == raw
