"""Fixtures for flow tests: Prefect's test harness, a seeded local lake, small and fast settings."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from flows.adapters.lake import Lake, open_store
from flows.console.demo import SHADOW_KEY, demo_data, seed_lake
from flows.settings import Settings

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


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Settings, Lake, list[date]]:
    """A local lake with ten days of the shipped mammography set (the demo's data) ending TODAY."""
    settings = fast_settings(tmp_path / "home")
    lake = Lake(open_store(settings.lake_root()))
    dates = seed_lake(lake, demo_data(settings), "mammography", 10, TODAY, seed=0)
    return settings, lake, dates


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"})
    for _ in range(100):
        try:
            if client.get("/ready").status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    try:
        yield client
    finally:
        server.should_exit = True
        thread.join(5)
