"""A broken upload or a schema change in the newest partition: the retrain stops before training, names
what it found, registers nothing and leaves the raw files as they were."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from flows.adapters.connect import registry_of
from flows.errors import StoreError, ValidationFailedError
from flows.jobs.retrain import retrain
from tests.flows.test_retrain_flow import _raw_digest

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.reliability]


def _versions(settings) -> list[str]:
    return [str(v.version) for v in registry_of(settings).client.search_model_versions("name='vae-sentinel'")]


def _changed(day: pd.DataFrame, change: str) -> pd.DataFrame:
    rows = day.filter(regex=r"^s\d+$").copy()
    if change == "new column":
        return rows.assign(s99=1.0)
    if change == "dropped column":
        return rows.drop(columns="s03")
    if change == "renamed column":
        return rows.rename(columns={"s03": "s03_v2"})
    if change == "dtype change":
        return rows.assign(s03=rows["s03"].map("{:.3f}".format))  # numbers sent as text
    return rows.assign(s03=np.nan)  # a column of all NaN


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("new column", "unexpected columns ['s99']"),
        ("dropped column", "column present [s03]: observed column missing"),
        ("renamed column", "unexpected columns ['s03_v2'], missing columns ['s03']"),
        ("dtype change", "dtype [s03]"),
        ("all NaN", "12.50% of rows (null: s03: 12.50%)"),  # the quarantined share, by its cause
    ],
)
def test_a_schema_change_stops_before_training_naming_the_expectation(champion, change, named):
    settings, lake, dates, _ = champion
    day = dates[-3]
    lake.write_day("mammography", day, _changed(lake.read_window("mammography", day, 1), change), "part-1")
    before = _raw_digest(settings)
    with pytest.raises(ValidationFailedError) as failed:
        retrain(settings=settings, as_of=day)
    assert named in failed.value.details, failed.value.details
    assert _versions(settings) == ["1"]
    assert _raw_digest(settings) == before


def test_a_truncated_upload_stops_before_training_naming_the_file(champion):
    settings, _, dates, _ = champion
    day = dates[-3]
    good = settings.home / "lake" / "mammography" / f"date={day}" / "part-0.parquet"
    broken = good.with_name("part-1.parquet")
    broken.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # an upload cut half-way
    before = _raw_digest(settings)
    with pytest.raises(StoreError, match=rf"corrupt file .*date={day}/part-1.parquet"):
        retrain(settings=settings, as_of=day)
    assert _versions(settings) == ["1"]
    assert _raw_digest(settings) == before
