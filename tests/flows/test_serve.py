"""The scoring service over real HTTP (uvicorn on 127.0.0.1): endpoints, errors, auth, alias swap."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from flows.adapters.connect import registry_of
from flows.adapters.lake import Lake, open_store
from flows.console.demo import demo_data, seed_lake
from flows.jobs.retrain import retrain
from flows.serving.app import create_app
from flows.serving.bodies import ARROW, arrow_body
from flows.serving.champion import ModelHolder
from tests.flows.conftest import TODAY, fast_settings, running, served, with_gates
from tests.load import run_locust, wait_stats

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]
TOKEN = "s3cret"


class Gate:
    """A detector whose first call of `method` waits for `release`: a request that takes as long as we like.

    `entered` is set once that call has started, so the test knows the request is being scored.
    """

    def __init__(self, detector: Any, method: str) -> None:
        self._detector, self._method = detector, method
        self.entered, self.release = threading.Event(), threading.Event()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._detector, name)
        if name != self._method:
            return attr

        def gated(*args: Any, **kwargs: Any) -> Any:
            if not self.entered.is_set():
                self.entered.set()
                self.release.wait(60)
            return attr(*args, **kwargs)

        return gated


def gated_app(settings, method: str) -> tuple[Any, Gate]:
    """The service over the current champion wrapped in a Gate on `method` (the alias must not move)."""
    registry = registry_of(settings)
    champion = registry.champion()
    assert champion is not None
    gate = Gate(champion.detector, method)
    holder = ModelHolder(registry)
    holder.current = dataclasses.replace(champion, detector=gate)
    return create_app(settings, holder), gate


@pytest.fixture(scope="module")
def stack(tmp_path_factory, prefect_harness):
    """A registry with champion v1 and a refused v2, the lake's newest day, and a running service."""
    home = tmp_path_factory.mktemp("serve") / "home"
    base = fast_settings(home)
    settings = base.model_copy(
        update={
            "serve": base.serve.model_copy(
                update={
                    "token": SecretStr(TOKEN),
                    "poll_seconds": 0.2,
                    "max_rows": 500,
                    "max_body_bytes": 200_000,
                }
            )
        }
    )
    lake = Lake(open_store(settings.lake_root()))
    dates = seed_lake(lake, demo_data(settings), "mammography", 10, TODAY, seed=0)
    retrain(settings=settings, as_of=dates[-4])
    retrain(settings=with_gates(settings, alert_rate_lower=3.0, alert_rate_upper=4.0), as_of=dates[-3])
    rows = lake.read_window("mammography", dates[-1], 1).filter(like="s0")
    with running(create_app(settings), TOKEN) as client:
        yield settings, rows, client


def test_health_ready_and_metadata(stack):
    _, rows, client = stack
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["version"] == "1"
    meta = client.get("/metadata").json()
    assert meta["version"] == "1" and meta["columns"] == list(rows.columns) and meta["target_fpr"] == 0.01
    low, high = meta["fpr_interval_95"]
    assert low < 0.01 < high


def test_health_and_ready_answer_while_a_request_is_being_scored(stack):
    settings, rows, _ = stack
    app, gate = gated_app(settings, "predict")
    with running(app, TOKEN) as client, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(
            client.post, "/score", json={"records": rows.head(5).to_dict("records")}, timeout=90
        )
        assert gate.entered.wait(30)
        try:  # scoring on the event loop: these time out, as every request waits for the slow one
            assert client.get("/health", timeout=5).json() == {"status": "ok"}
            assert client.get("/ready", timeout=5).json()["version"] == "1"
            assert not slow.done()
        finally:
            gate.release.set()
        assert slow.result(60).status_code == 200


@pytest.mark.parametrize("layout", ["records", "columns", "dataframe_split", "dataframe_records"])
def test_every_layout_scores_like_the_champion(stack, layout):
    settings, rows, client = stack
    part = rows.head(20)
    body = {
        "records": {"records": part.to_dict("records")},
        "columns": {"columns": part.to_dict("list")},
        "dataframe_split": {"dataframe_split": part.to_dict("split") | {"index": None}},
        "dataframe_records": {"dataframe_records": part.to_dict("records")},
    }[layout]
    reply = client.post("/score", json=body)
    assert reply.status_code == 200, reply.text
    out = reply.json()
    champion = registry_of(settings).champion().detector
    expected = champion.predict(part)
    assert out["version"] == "1" and out["threshold"] == pytest.approx(champion.threshold_)
    np.testing.assert_allclose([r["score"] for r in out["results"]], expected.score, rtol=1e-6)
    assert [r["is_anomaly"] for r in out["results"]] == list(expected.is_anomaly)


def test_columnar_bodies_in_another_order_or_with_extra_columns_score_the_same(stack):
    _, rows, client = stack
    part = rows.head(20)
    expected = client.post("/score", json={"records": part.to_dict("records")}).json()["results"]
    shuffled = part[list(reversed(part.columns))].assign(note=1.0)
    for body in (
        {"dataframe_split": shuffled.to_dict("split") | {"index": None}},
        {"columns": shuffled.to_dict("list")},
    ):
        reply = client.post("/score", json=body)
        assert reply.status_code == 200 and reply.json()["results"] == expected


def test_an_arrow_body_scores_like_json(stack):
    _, rows, client = stack
    part = rows.head(50)
    expected = client.post("/score", json={"records": part.to_dict("records")}).json()["results"]
    shuffled = part[list(reversed(part.columns))].assign(note="extra")
    reply = client.post("/score", content=arrow_body(shuffled), headers={"Content-Type": ARROW})
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"] == expected


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (lambda rows: rows.head(3).drop(columns=["s02"]), "missing column"),
        (lambda rows: rows.head(3).assign(s02=[1.0, None, 2.0]), "NaN"),
        (lambda rows: rows.head(3).assign(s02="x"), "non-numeric"),
    ],
    ids=["missing-column", "null", "text-column"],
)
def test_bad_arrow_bodies_are_a_clear_422(stack, frame, message):
    _, rows, client = stack
    reply = client.post("/score", content=arrow_body(frame(rows)), headers={"Content-Type": ARROW})
    assert reply.status_code == 422 and message in reply.json()["detail"]


def test_a_body_that_is_not_arrow_is_a_clear_422(stack):
    reply = stack[2].post("/score", content=b"not arrow at all", headers={"Content-Type": ARROW})
    assert reply.status_code == 422 and reply.json()["detail"].startswith("body is not an Arrow IPC stream")


def test_explain_gives_the_reconstruction_beside_the_input_and_each_features_share(stack):
    _, rows, client = stack
    out = client.post("/score?explain=true", json={"records": rows.head(3).to_dict("records")}).json()
    first = out["results"][0]
    assert (
        set(first["contributions"])
        == set(first["shares"])
        == set(first["reconstructed"])
        == set(rows.columns)
    )
    assert first["reconstruction"] == pytest.approx(sum(first["contributions"].values()))
    assert sum(first["shares"].values()) == pytest.approx(1.0)
    rebuilt = pd.DataFrame([r["reconstructed"] for r in out["results"]])[list(rows.columns)]
    expected = registry_of(stack[0]).champion().detector.reconstruct(rows.head(3))
    np.testing.assert_allclose(rebuilt.to_numpy(), expected.to_numpy(), rtol=1e-5)
    assert not np.allclose(rebuilt.to_numpy(), rows.head(3).to_numpy())  # the model's values, not an echo


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"records": [{"s01": 1.0}]}, 422, "missing column"),
        ({"dataframe_split": {"columns": ["s01"], "data": [[1.0]]}}, 422, "missing column"),
        (
            {"dataframe_split": {"columns": [f"s0{i}" for i in range(1, 7)], "data": [[1.0] * 5 + [None]]}},
            422,
            "NaN",
        ),
        ({"records": [{**{f"s0{i}": 1.0 for i in range(1, 7)}, "s03": "x"}]}, 422, "non-numeric"),
        ({"records": [{**{f"s0{i}": 1.0 for i in range(1, 7)}, "s03": None}]}, 422, "NaN"),
        ({"columns": {}, "dataframe_records": [{"s01": 1.0}]}, 422, "missing column"),
        ({"records": []}, 422, "exactly one"),
        ({"records": [{"s01": 1.0}], "columns": {"s01": [1.0]}}, 422, "exactly one"),
    ],
    ids=[
        "wrong-columns",
        "split-wrong-columns",
        "split-nan",
        "empty-columns-beside-records",
        "wrong-type",
        "nan",
        "empty",
        "two-layouts",
    ],
)
def test_bad_input_is_a_clear_4xx(stack, body, status, message):
    reply = stack[2].post("/score", json=body)
    assert reply.status_code == status and message in reply.json()["detail"]


def test_oversized_payloads_are_refused(stack):
    _, rows, client = stack
    reply = client.post("/score", json={"columns": rows.head(501).to_dict("list")})
    assert reply.status_code == 413 and "limit is 500" in reply.json()["detail"]


def test_auth_is_required_when_a_token_is_set(stack):
    _, rows, client = stack
    bare = httpx.Client(base_url=client.base_url)
    assert bare.post("/score", json={"records": rows.head(1).to_dict("records")}).status_code == 401
    wrong = bare.get("/metadata", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert bare.get("/health").status_code == 200


def test_metrics_count_requests_rows_and_alerts(stack):
    _, rows, client = stack
    client.post("/score", json={"records": rows.head(10).to_dict("records")})
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(client.get("/metrics").text)
        for s in family.samples
    }
    assert samples["sentinel_scored_rows_total"] >= 10 and samples["sentinel_score_requests_total"] >= 1
    assert samples["sentinel_score_latency_seconds_count"] == samples["sentinel_score_requests_total"]


def test_openapi_schema_is_published(stack):
    schema = stack[2].get("/openapi.json").json()
    assert {"/score", "/metadata", "/health", "/ready", "/metrics"} <= set(schema["paths"])


def test_the_service_follows_the_alias_without_failing_requests(stack):
    settings, rows, client = stack
    body = {"records": rows.head(50).to_dict("records")}
    versions, failures, stop = set(), [], threading.Event()

    def hammer():
        while not stop.is_set():
            reply = client.post("/score", json=body)
            if reply.status_code != 200:
                failures.append(reply.status_code)
            else:
                versions.add(reply.json()["version"])

    workers = [threading.Thread(target=hammer) for _ in range(2)]
    for w in workers:
        w.start()
    registry = registry_of(settings)
    registry.client.set_registered_model_alias("vae-sentinel", "champion", "2")
    deadline = time.time() + 20
    while client.get("/metadata").json()["version"] != "2" and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)
    stop.set()
    for w in workers:
        w.join()
    registry.client.set_registered_model_alias("vae-sentinel", "champion", "1")
    assert failures == [] and versions == {"1", "2"}


def test_malformed_bodies_are_a_clear_422(stack):
    client = stack[2]
    broken = client.post("/score", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422 and broken.json()["detail"].startswith("body is not valid JSON")
    wrong = client.post("/score", json={"records": 5})
    assert wrong.status_code == 422 and wrong.json()["detail"].startswith("records: ")
    unknown = client.post("/score", json={"rows": []})
    assert unknown.status_code == 422 and "rows" in unknown.json()["detail"]


def test_the_body_size_limit_is_checked_before_parsing(stack):
    settings, _, client = stack
    too_big = b" " * (settings.serve.max_body_bytes + 1)
    reply = client.post("/score", content=too_big, headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and "exceeds the limit" in reply.json()["detail"]


@pytest.mark.reliability
def test_a_champion_that_cannot_load_is_retried_while_the_old_one_keeps_serving(stack, tmp_path):
    settings, rows, client = stack
    registry = registry_of(settings)
    run_id = registry.client.get_model_version("vae-sentinel", "1").run_id
    broken = registry.client.create_model_version("vae-sentinel", (tmp_path / "gone").as_uri(), run_id)

    def failures() -> float:
        families = text_string_to_metric_families(client.get("/metrics").text)
        return next(f.samples[0].value for f in families if f.name == "sentinel_champion_refresh_failures")

    _wait_for_version(client, "1")  # caught up with v1
    before = failures()
    registry.client.set_registered_model_alias("vae-sentinel", "champion", broken.version)
    try:
        deadline = time.time() + 20
        while failures() < before + 3 and time.time() < deadline:  # polled again and again
            time.sleep(0.1)
        assert failures() >= before + 3
        assert client.get("/ready").json() == {"status": "ready", "version": "1"}
        scored = client.post("/score", json={"records": rows.head(5).to_dict("records")})
        assert scored.status_code == 200 and scored.json()["version"] == "1"
        registry.client.set_registered_model_alias("vae-sentinel", "champion", "2")  # a loadable one
        _wait_for_version(client, "2")
    finally:
        registry.client.set_registered_model_alias("vae-sentinel", "champion", "1")


@pytest.mark.reliability
def test_the_token_appears_nowhere_it_could_leak_and_nothing_loaded_is_a_pickle(stack, tmp_path):
    settings, _, client = stack
    pages = client.get("/metadata").text + client.get("/metrics").text + client.get("/openapi.json").text
    assert TOKEN not in pages
    registry = registry_of(settings)
    runs = registry.client.search_runs([e.experiment_id for e in registry.client.search_experiments()])
    logged = [(run.data.params, run.data.tags) for run in runs]  # every run: retrains, ledger
    assert runs and TOKEN not in repr(logged)
    for version in ("1", "2"):  # what the service and the flows load, model and run artifacts: no pickle
        mv = registry.client.get_model_version("vae-sentinel", version)
        where = {"dst_path": str(tmp_path / version / "model"), "tracking_uri": registry.tracking_uri}
        model = Path(mlflow.artifacts.download_artifacts(mv.source, **where))
        run = Path(registry.client.download_artifacts(mv.run_id, "", str(tmp_path / version)))
        files = [*model.rglob("*"), *(p for p in run.rglob("*") if "export" not in p.relative_to(run).parts)]
        # export/ holds the ONNX and TorchScript files written for other consumers; nothing of ours loads them
        pickles = [p for p in files if p.suffix in {".pkl", ".pickle", ".joblib", ".pt", ".pth"}]
        assert len(files) > 5 and not pickles, pickles


@pytest.mark.reliability
def test_under_load_with_a_champion_swap_no_request_fails(stack, tmp_path):
    """64 locust users, mostly 1-row and some 1,000-row requests, the champion moved half-way through."""
    settings, rows, _ = stack
    defaults = settings.model_copy(update={"serve": settings.serve.model_copy(update=LOAD_LIMITS)})
    records = rows.to_dict("records")
    small, large = {"records": records[:1]}, {"records": (records * 1000)[:1000]}
    bodies = {"small": json.dumps(small), "large": json.dumps(large)}
    registry = registry_of(settings)
    with running(create_app(defaults), TOKEN) as client:
        _wait_for_version(client, "1")
        locust = run_locust(str(client.base_url), bodies, users=64, seconds=12, folder=tmp_path, token=TOKEN)
        time.sleep(6)
        registry.client.set_registered_model_alias("vae-sentinel", "champion", "2")
        try:
            _wait_for_version(client, "2")
            stats = wait_stats(locust, tmp_path, timeout=120)
        finally:
            registry.client.set_registered_model_alias("vae-sentinel", "champion", "1")
    total = stats.rows["Aggregated"]
    assert total["Failure Count"] == 0 and locust.returncode == 0, stats.output
    assert stats.rows["large"]["Request Count"] > 0 and total["Request Count"] > 200, stats.output


LOAD_LIMITS = {"max_rows": 100_000, "max_body_bytes": 64 * 2**20}  # the defaults: 1,000-row bodies fit


def _wait_for_version(client: httpx.Client, version: str) -> None:
    deadline = time.time() + 20
    while client.get("/ready").json()["version"] != version and time.time() < deadline:
        time.sleep(0.1)
    assert client.get("/ready").json()["version"] == version


@pytest.mark.reliability
def test_a_stop_signal_lets_the_request_in_flight_finish(stack):
    settings, rows, _ = stack
    app, gate = gated_app(settings, "predict")
    with served(app, TOKEN) as (client, server), ThreadPoolExecutor(1) as pool:
        in_flight = pool.submit(client.post, "/score", json={"records": rows.head(5).to_dict("records")})
        assert gate.entered.wait(30)
        server.should_exit = True  # what uvicorn's SIGTERM handler does
        time.sleep(0.5)
        assert not in_flight.done()
        gate.release.set()
        reply = in_flight.result(30)
    assert reply.status_code == 200 and len(reply.json()["results"]) == 5
