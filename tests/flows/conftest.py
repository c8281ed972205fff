"""Fixtures for flow tests: Prefect's test harness, a seeded local lake, small and fast settings."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flows.demo import SHADOW_KEY, demo_data, seed_lake
from flows.lake import Lake, open_store
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


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Settings, Lake, list[date]]:
    """A local lake with ten days of the shipped mammography set (the demo's data) ending TODAY."""
    settings = fast_settings(tmp_path / "home")
    lake = Lake(open_store(settings.lake_root()))
    dates = seed_lake(lake, demo_data(settings), "mammography", 10, TODAY, seed=0)
    return settings, lake, dates
