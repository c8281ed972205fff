"""Faults of issue 17 on a stack of their own, each against the running servers: a worker killed or
stopped mid-training, the MLflow server or PostgreSQL restarted during a retrain, a promotion by hand
during a retrain, a retrain by hand beside a scheduled one, and a truncated or renamed-column file landing
in the lake. (The promotion race, a retrain killed inside its champion move and S3 faults run after the
story, in test_story.py.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import psutil
import pytest

from flows.adapters.connect import lake_of, registry_of
from flows.stack.client import pause_schedule, pointed_at, set_paused
from tests.races import extra_versions
from tests.stack.conftest import (
    DATASET,
    FINAL,
    LENIENT_GATES,
    MODEL,
    SCHEDULER_LOOP_SECONDS,
    candidate_of,
    create_run,
    deployment,
    output,
    quiet,
    raw_partitions,
    retrain_process,
    sentinel,
    timestamp,
    wait_for_run,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.xdist_group("stack-faults"),
]


@pytest.fixture(scope="session")
def dask_workers() -> int:
    """No Dask on this stack: its idle scheduler and workers cost 4-6 core-s a minute, and no fault
    here needs them (under `make test` this group has a stack of its own; in one process the story's comes
    first, with Dask, and is shared)."""
    return 0


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_a_worker_stopped_mid_training_leaves_no_run_running_and_the_next_scheduled_run_succeeds(
    stack, scheduled, stop
):
    """SIGKILL: the worker and its flow run die at once (as when the machine goes), and the heartbeat
    automation marks the run Crashed; the next scheduled run still runs (the slot was freed).
    SIGTERM: the worker alone is asked to stop (a deploy, a host shutting down); its run ends one way or
    another, never left Running (the schedule stays paused: the next run is SIGKILL's check).
    The stopped run is one of the retrain deployment created through the API, so that the test need not
    wait for the schedule's next minute; SIGKILL resumes the schedule once the run is dead."""
    api, tracking = stack["SENTINEL_PREFECT_API_URL"], stack["SENTINEL_REGISTRY__TRACKING_URI"]
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    versions = len(client.search_model_versions(f"name='{MODEL}'"))
    retrain = deployment(api, "retrain")
    try:
        started = datetime.now(UTC)
        created = create_run(api, retrain["id"], reason=f"a run whose worker gets {stop}")
        victim = wait_for_run(
            api, "retrain", lambda r: r["id"] == created["id"] and r["state_type"] == "RUNNING", seconds=120
        )
        time.sleep(4)  # into the window scan and training, before the model is logged
        pid_file = Path(stack["SENTINEL_HOME"]) / "stack" / "retrain-worker.pid"
        worker = psutil.Process(int(pid_file.read_text()))
        for process in [*worker.children(recursive=True), worker] if stop == "SIGKILL" else [worker]:
            process.send_signal(getattr(signal, stop))
        if stop == "SIGKILL":  # its next run is due within a minute, before the dead run is marked (75 s)
            set_paused(api, retrain["id"], False)
        ended = wait_for_run(
            api, "retrain", lambda r: r["id"] == victim["id"] and r["state_type"] in FINAL, seconds=150
        )
        champion_after_crash = client.get_model_version_by_alias(MODEL, "champion").version
        stopped(worker, pid_file.with_suffix(".log"))  # before `stack up` looks, or it is not started again
        restarted = sentinel("stack", "up", env=stack)  # brings back the part that is down: the worker
        assert restarted.returncode == 0, restarted.stdout[-2000:] + restarted.stderr[-2000:]
        state, candidate = ended["state"], candidate_of(tracking, victim["id"])
        if ended["state_type"] != "COMPLETED":
            assert candidate is None, state  # it ended before registering anything
            assert champion_after_crash == champion  # no half-promotion
        if stop == "SIGKILL":  # marked Crashed, and the slot was freed: the next scheduled run runs
            assert ended["state_type"] == "CRASHED" and "no heartbeat" in state["message"], state
            after = wait_for_run(
                api,
                "retrain",
                lambda r: r["auto_scheduled"] and r["id"] != victim["id"] and r["state_type"] in FINAL
                and timestamp(r["start_time"] or r["expected_start_time"]) > started,
                seconds=240,
            )  # fmt: skip
            assert after["state_type"] == "COMPLETED", after["state"]["message"]
            assert len(client.search_model_versions(f"name='{MODEL}'")) > versions  # it registered
    finally:
        pause_schedule(api, retrain["id"], SCHEDULER_LOOP_SECONDS)
        quiet(api)


def stopped(worker: psutil.Process, log: Path) -> None:
    """Wait for a worker that was told to stop. One still there a minute after its run ended is stopped as
    a supervisor would (`stack down`, systemd, Kubernetes): a second SIGTERM, on which Prefect's worker
    kills itself. (Seen here: after the first it sometimes waits on although its run has completed.)"""
    try:
        worker.wait(timeout=60)
        return
    except psutil.TimeoutExpired:
        with contextlib.suppress(psutil.Error):
            waiting = [(c.pid, c.status(), " ".join(c.cmdline())[:100]) for c in worker.children(True)]
            warnings.warn(f"a second SIGTERM to the worker; its children: {waiting}", stacklevel=2)
        worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except psutil.TimeoutExpired:
        pytest.fail(f"the worker outlived a second SIGTERM; its log:\n{log.read_text()[-4000:]}")


@pytest.mark.parametrize(("part", "stop"), [("mlflow", signal.SIGTERM), ("postgres", signal.SIGINT)])
def test_a_retrain_across_a_restart_of_the_tracking_server_or_postgres_ends_cleanly(
    stack, scheduled, part, stop, tmp_path
):
    """The part goes down once the run has started and comes back 10 s later (`sentinel stack up`).

    Stopping PostgreSQL takes both servers' databases away at once. The run completes (the clients
    retry) or fails in one line; either way it registered at most one version, and the champion is a
    version whose model loads.
    """
    tracking = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    with retrain_process(stack, tmp_path) as (run, flow_run):
        time.sleep(2)
        pid = int((Path(stack["SENTINEL_HOME"]) / "stack" / f"{part}.pid").read_text())
        os.killpg(pid, stop)
        psutil.Process(pid).wait(timeout=30)
        time.sleep(10)
        restarted = sentinel("stack", "up", env=stack)
        assert restarted.returncode == 0, restarted.stdout[-2000:] + restarted.stderr[-2000:]
        run.wait(timeout=420)
    out = (tmp_path / "stdout").read_text()
    assert "Traceback" not in output(tmp_path), output(tmp_path)[-3000:]
    if run.returncode != 0:  # a clear failure, in one line
        assert out.strip().splitlines()[-1].startswith("error: cannot "), out  # what it was doing, and why
    candidate = candidate_of(tracking, flow_run["id"])  # asserts one MLflow run, and at most one version
    if run.returncode == 0:
        assert candidate is not None, out[-2000:]
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    with pointed_at(stack) as settings:
        loaded = registry_of(settings).champion()  # as the service loads it: artifacts and all
    assert loaded is not None and loaded.version == champion
    history = sentinel("history", "--json", env=stack, timeout=120)
    assert history.returncode == 0 and json.loads(history.stdout)[-1]["champion"] == champion


def test_a_promotion_by_hand_during_a_retrain_wins_and_the_retrain_moves_nothing(stack, scheduled, tmp_path):
    """An operator moves the champion while a retrain trains: the retrain's compare-and-set refuses."""
    tracking = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    champion = client.get_model_version_by_alias(MODEL, "champion").version
    (target,) = extra_versions(client, MODEL, champion, 1)  # the champion's model, registered again
    with retrain_process(stack, tmp_path) as (run, flow_run):
        moved = sentinel("promote", target, "--reason", "by hand during a retrain", env=stack, timeout=120)
        run.wait(timeout=300)
    out = (tmp_path / "stdout").read_text()
    assert moved.returncode == 0, moved.stdout[-2000:] + moved.stderr[-2000:]
    assert client.get_model_version_by_alias(MODEL, "champion").version == target
    candidate = candidate_of(tracking, flow_run["id"])
    assert candidate is not None and not candidate["promoted"], out[-2000:]
    if not candidate["reasons"]:  # its gates passed: the move was refused by the compare-and-set
        assert run.returncode == 1 and f"changed from {champion} to {target} while this run trained" in out
    history = sentinel("history", "--json", env=stack, timeout=120)
    moves = [m for m in json.loads(history.stdout) if m["state"] == "done"]
    assert (moves[-1]["action"], moves[-1]["champion"], moves[-1]["replaced"]) == (
        "override",
        target,
        champion,
    )
    assert all(b["replaced"] == a["champion"] for a, b in itertools.pairwise(moves))  # no interleaved move


def test_a_retrain_by_hand_beside_a_scheduled_one_leaves_one_chain_of_moves(stack, scheduled, tmp_path):
    """A `sentinel retrain` process started while the schedule's run trains on the worker (lenient
    gates, so it wants to promote). Each registers one version; their moves take the lock in turn, and a
    run whose champion changed while it trained is refused by the compare-and-set. The ledger's moves
    chain, and every promoted version is in it."""
    api, tracking = stack["SENTINEL_PREFECT_API_URL"], stack["SENTINEL_REGISTRY__TRACKING_URI"]
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    moves_before = len(json.loads(sentinel("history", "--json", env=stack, timeout=120).stdout))
    retrain = deployment(api, "retrain")
    quiet(api)
    started = datetime.now(UTC)
    set_paused(api, retrain["id"], False)
    try:
        scheduled_run = wait_for_run(
            api,
            "retrain",
            lambda r: (
                r["auto_scheduled"] and r["state_type"] == "RUNNING" and timestamp(r["start_time"]) > started
            ),
            seconds=150,
        )
        pause_schedule(api, retrain["id"])  # at once, while it trains: the finally's sweeps what a race left
        with retrain_process(stack | LENIENT_GATES, tmp_path) as (run, by_hand):
            run.wait(timeout=400)
        ended = wait_for_run(
            api, "retrain", lambda r: r["id"] == scheduled_run["id"] and r["state_type"] in FINAL, 300
        )
    finally:
        pause_schedule(api, retrain["id"], SCHEDULER_LOOP_SECONDS)
        quiet(api)
    printed = output(tmp_path)
    assert "Traceback" not in printed, printed[-3000:]
    said = {"scheduled": ended["state"]["message"] or "", "by hand": printed}
    candidates = {
        "scheduled": candidate_of(tracking, scheduled_run["id"]),  # one MLflow run, one version each
        "by hand": candidate_of(tracking, by_hand["id"]),
    }
    assert None not in candidates.values(), (said["scheduled"], printed[-2000:])
    for who, made in candidates.items():
        if made is not None and not made["promoted"] and not made["reasons"]:  # gates passed, not moved
            assert "while this run trained" in said[who], (who, said[who][-2000:])
    moves = json.loads(sentinel("history", "--json", env=stack, timeout=120).stdout)[moves_before:]
    done = [m for m in moves if m["state"] == "done"]
    assert all(b["replaced"] == a["champion"] for a, b in itertools.pairwise(done))  # no interleaved move
    promoted = [made["version"] for made in candidates.values() if made is not None and made["promoted"]]
    assert sorted(promoted) == sorted(m["champion"] for m in done)  # every promotion is in the ledger
    if done:
        assert client.get_model_version_by_alias(MODEL, "champion").version == done[-1]["champion"]


@pytest.mark.parametrize("fault", ["truncated upload", "renamed column"])
def test_a_broken_or_changed_file_in_the_stacks_lake_stops_the_retrain_before_training(
    stack, scheduled, seeded_day, tmp_path, fault
):
    """A file lands in today's partition on the stack's S3 server: an upload cut half-way, or a batch whose
    column was renamed. A `sentinel retrain` process stops before training with one line naming the file
    or the failed expectation; nothing is registered; the raw files are as they were. (The test removes
    its file afterwards, for the tests after it; the product never does.)"""
    tracking, today = stack["SENTINEL_REGISTRY__TRACKING_URI"], seeded_day
    good, key = f"{DATASET}/date={today}/part-0.parquet", f"{DATASET}/date={today}/part-9.parquet"
    with pointed_at(stack) as settings:
        lake = lake_of(settings)
        if fault == "truncated upload":
            whole = lake.store.read(good)
            lake.store.write(key, whole[: len(whole) // 2])
        else:
            lake.write_day(DATASET, today, lake.read_table(good).rename(columns={"s03": "s03_v2"}), "part-9")
        raw = raw_partitions(lake)
    try:
        with retrain_process(stack, tmp_path) as (run, flow_run):
            run.wait(timeout=300)
        with pointed_at(stack) as settings:
            assert raw_partitions(lake_of(settings)) == raw
    finally:
        with pointed_at(stack) as settings:
            store = lake_of(settings).store
            store.client.delete_object(Bucket=store.bucket, Key=key)
    out = (tmp_path / "stdout").read_text()
    assert run.returncode == 1 and "Traceback" not in output(tmp_path), output(tmp_path)[-3000:]
    named = "part-9.parquet" if fault == "truncated upload" else "s03_v2"
    last = out.strip().splitlines()[-1]
    assert last.startswith("error: ") and named in last, out[-3000:]
    assert candidate_of(tracking, flow_run["id"]) is None  # stopped before anything was registered
