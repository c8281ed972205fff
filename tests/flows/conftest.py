"""Fixtures for flow tests: Prefect's test harness, a seeded local lake, small and fast settings."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from flows.adapters.lake import Lake, open_store
from flows.console.demo import SHADOW_KEY, demo_data, seed_lake
from flows.jobs.retrain import RetrainOutcome, retrain
from flows.settings import Settings
from flows.stack.client import free_ports

TODAY = date(2026, 11, 30)


@pytest.fixture(scope="session")
def prefect_harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def fast_settings(home: Path, **retrain: object) -> Settings:
    """Settings for a temporary home: a small network trained for a few epochs, the demo's shadow set."""
    detector = {
        "model": {"hidden_dims": (16,), "latent_dim": 2},
        "train": {"epochs": 6, "kl_warmup_epochs": 2},
    }
    return Settings(
        home=home,
        detector=detector,
        retrain={"dataset": "mammography", "shadow_key": SHADOW_KEY, **retrain},
    )


def with_gates(settings: Settings, **bounds: float) -> Settings:
    """`settings` with some promotion-gate bounds changed."""
    gates = settings.retrain.gates.model_copy(update=bounds)
    return settings.model_copy(update={"retrain": settings.retrain.model_copy(update={"gates": gates})})


def _seed(home: Path) -> tuple[Settings, Lake, list[date]]:
    settings = fast_settings(home)
    lake = Lake(open_store(settings.lake_root()))
    dates = seed_lake(lake, demo_data(settings), "mammography", 10, TODAY, seed=0)
    return settings, lake, dates


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Settings, Lake, list[date]]:
    """A local lake with ten days of the shipped mammography set (the demo's data) ending TODAY."""
    return _seed(tmp_path / "home")


class Champion(NamedTuple):
    """A seeded home whose registry holds champion v1, and the retrain outcome that promoted it."""

    settings: Settings
    lake: Lake
    dates: list[date]
    first: RetrainOutcome


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="session")
def champion_template(tmp_path_factory: pytest.TempPathFactory, prefect_harness) -> Iterator[Champion]:
    """The `seeded` home after its first retrain (as of dates[-4]): cold-start champion v1, built once.

    Tests never use it directly, only `champion`'s copies of it; that no copy wrote into it (through a
    path left pointing here) is checked when the session ends.
    """
    settings, lake, dates = _seed(tmp_path_factory.mktemp("champion") / "home")
    first = retrain(settings=settings, as_of=dates[-4])
    assert first.promoted and first.version == "1", first.decision.reasons
    before = _digest(settings.home)
    yield Champion(settings, lake, dates, first)
    assert _digest(settings.home) == before, "a test wrote into the shared champion template"


def _rehome(home: Path, old: str, new: str) -> None:
    """Point the absolute paths in a copied home (MLflow's artifact locations and MLmodel files) at it.

    With a SQLite tracking URI and a file artifact root MLflow stores absolute artifact locations:
    experiments, runs, logged models and model versions would otherwise still name the template.
    """
    with contextlib.closing(sqlite3.connect(home / "mlflow.db")) as db, db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for column in [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]:
                db.execute(
                    f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) '
                    f'WHERE typeof("{column}") = \'text\' AND instr("{column}", ?) > 0',
                    (old, new, old),
                )
        for table in tables:
            for column in [r[1] for r in db.execute(f'PRAGMA table_info("{table}")')]:
                left = db.execute(
                    f'SELECT count(*) FROM "{table}" WHERE instr(CAST("{column}" AS TEXT), ?) > 0', (old,)
                ).fetchone()[0]
                assert not left, f"{table}.{column} still names the template home"
    for path in home.rglob("MLmodel"):
        path.write_text(path.read_text().replace(old, new))
    stale = [
        p for p in home.rglob("*") if p.is_file() and p.name != "mlflow.db" and old.encode() in p.read_bytes()
    ]
    assert not stale, f"files still naming the template home: {stale}"


@pytest.fixture
def champion(champion_template: Champion, tmp_path: Path) -> Champion:
    """A private copy of the champion template: `seeded` plus the first retrain, without retraining it.

    `first` is the template's outcome: its run id and version are the copy's too.
    """
    home = tmp_path / "home"
    shutil.copytree(champion_template.settings.home, home)
    _rehome(home, str(champion_template.settings.home.resolve()), str(home.resolve()))
    settings = fast_settings(home)
    return Champion(
        settings, Lake(open_store(settings.lake_root())), champion_template.dates, champion_template.first
    )


@pytest.fixture(scope="session")
def s3_endpoint():
    """moto's standalone S3 server on 127.0.0.1: real HTTP through the same boto3 code production uses."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch, request):
    """A fresh bucket; credentials come from the standard AWS environment variables."""
    import boto3

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = "lake-" + "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return bucket


@contextlib.contextmanager
def running(app: FastAPI, token: str) -> Iterator[httpx.Client]:
    """`app` under uvicorn on a free 127.0.0.1 port, and a client sending `token`, once it is ready."""
    with served(app, token) as (client, _):
        yield client


@contextlib.contextmanager
def served(app: FastAPI, token: str) -> Iterator[tuple[httpx.Client, uvicorn.Server]]:
    """`running`, with the uvicorn server too (setting its `should_exit` is what SIGTERM does)."""
    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
    try:
        _wait_ready(client, port, thread, seconds=30)
        yield client, server
    finally:
        server.should_exit = True
        thread.join(5)


def _wait_ready(client: httpx.Client, port: int, thread: threading.Thread, seconds: float) -> None:
    """Return once GET /ready answers 200; fail the test naming the port and the last answer otherwise."""
    deadline = time.monotonic() + seconds
    last = "no answer yet"
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail(f"the server on 127.0.0.1:{port} stopped before /ready answered 200 (last: {last})")
        try:
            response = client.get("/ready")
        except httpx.TransportError as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:300]}"
        time.sleep(0.1)
    pytest.fail(f"GET /ready on 127.0.0.1:{port} never answered 200 within {seconds:g} s (last: {last})")
