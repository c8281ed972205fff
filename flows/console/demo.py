"""`sentinel demo`: seed a local lake from a real shipped dataset, then retrain as of successive days.

The story it prints: a first champion (cold start), a warm-started candidate that is promoted, and a
candidate trained on a window where one sensor went bad, which the gates refuse.

The lake is seeded with the normal rows of a shipped labelled set, shuffled and cut into day partitions
ending today; its anomalies become the shadow set of known anomalies (never trained on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from flows.adapters.lake import Lake
from flows.settings import Settings
from vae.datasets import LabelledSet, find_shipped, load_npz

SHADOW_KEY = "_shadow/known_anomalies.parquet"


@dataclass(frozen=True)
class DemoStep:
    """One retrain of the story: as of which day, and what the audience should expect."""

    as_of: date
    expect: str


def feature_frame(X: np.ndarray) -> pd.DataFrame:
    """Rows with sensor-style column names s01, s02, ..."""
    return pd.DataFrame(X, columns=[f"s{i + 1:02d}" for i in range(X.shape[1])])


def corrupt_sensor(day: pd.DataFrame, column: str, seed: int) -> pd.DataFrame:
    """A failing sensor: the column reads noise around its mean with 6x its usual spread."""
    rng = np.random.default_rng(seed)
    col = day[column]
    noisy = rng.normal(col.mean(), 6 * col.std(), size=len(day)).astype(col.dtype)
    return day.assign(**{column: noisy})


def seed_lake(
    lake: Lake, data: LabelledSet, dataset: str, days: int, today: date, seed: int, failing: bool = True
) -> list[date]:
    """Write `days` day partitions of normal rows ending `today`; yesterday's has a failing sensor.

    With `failing` False every partition is normal.

    Returns the partition dates, oldest first. Existing partitions are never overwritten: seeding an
    already-seeded lake raises `StoreError`.
    """
    rng = np.random.default_rng(seed)
    normal = feature_frame(data.X[data.y == 0])
    dates = [today - timedelta(days=days - 1 - i) for i in range(days)]
    for i, (day, rows) in enumerate(
        zip(dates, np.array_split(rng.permutation(len(normal)), days), strict=True)
    ):
        part = normal.iloc[np.sort(rows)].reset_index(drop=True)
        lake.write_day(dataset, day, corrupt_sensor(part, "s01", seed) if failing and i == days - 2 else part)
    lake.write_table(f"{dataset}/{SHADOW_KEY}", feature_frame(data.X[data.y == 1]))
    return dates


def demo_steps(dates: list[date]) -> list[DemoStep]:
    """Retrain as of three days ago, two days ago (warm start), then today (failing sensor yesterday)."""
    return [
        DemoStep(dates[-4], "first champion (cold start)"),
        DemoStep(dates[-3], "warm-started candidate, promoted"),
        DemoStep(dates[-1], "candidate trained on a window with a failing sensor, refused"),
    ]


def demo_data(settings: Settings) -> LabelledSet:
    """The shipped labelled set the demo seeds its lake from."""
    return load_npz(find_shipped(settings.data_dir, settings.demo.dataset))
