"""Shared fixtures: small real data from data/ and seeded synthetic data for mechanism tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vae.datasets import LabelledSet, find_shipped, load_npz

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, torch in each worker takes its share of the cores (at least one thread):
    OpenMP threads that outnumber the cores spin against each other and collapse."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // int(workers)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """GPU tests skip without CUDA; grouped tests (the stack's two groups) go first, so that under
    `make test`'s `-n 3 --dist loadgroup` two workers start on one group each while the third runs the
    rest, then all three share what is left.

    Groups sort by name: in one process the two share a stack, and `stack` (the story, whose scheduled
    retrains must beat the first champion) runs before `stack-faults` (whose lenient retrains promote)."""
    items.sort(key=_group_order)
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def _group_order(item: pytest.Item) -> tuple[bool, str]:
    group = item.get_closest_marker("xdist_group")
    return (group is None, group.args[0] if group else "")


@pytest.fixture(scope="session")
def cardio() -> LabelledSet:
    return load_npz(find_shipped(DATA_DIR, "cardio"))


@pytest.fixture(scope="session")
def pump() -> pd.DataFrame:
    """SKAB's normal run of a water pump: 9405 seconds of 8 sensors, in time order."""
    path = DATA_DIR / "timeseries" / "skab" / "anomaly-free.csv"
    return pd.read_csv(path, sep=";", index_col="datetime", parse_dates=True)


@pytest.fixture
def normal_rows() -> np.ndarray:
    """Correlated Gaussian rows: 600 x 5."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(600, 2))
    return (z @ rng.normal(size=(2, 5)) + 0.1 * rng.normal(size=(600, 5))).astype(np.float32)


@pytest.fixture
def fast_options() -> dict[str, object]:
    """Detector options that train in well under a second."""
    return {
        "epochs": 8,
        "kl_warmup_epochs": 2,
        "hidden_dims": (16,),
        "latent_dim": 2,
        "seed": 0,
        "device": "cpu",
    }
