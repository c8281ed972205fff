"""The lake adapter on a local folder and on S3 (moto's server over HTTP)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from flows.adapters.lake import Lake, open_store
from flows.errors import StoreError

DAY = date(2026, 11, 30)


@pytest.fixture(params=["local", "s3", "s3-bucket-root"])
def lake(request, tmp_path) -> Lake:
    if request.param == "local":
        return Lake(open_store(str(tmp_path / "lake")))
    endpoint = request.getfixturevalue("s3_endpoint")
    bucket = request.getfixturevalue("s3_bucket")
    prefix = "/prefix/lake" if request.param == "s3" else ""
    return Lake(open_store(f"s3://{bucket}{prefix}", endpoint_url=endpoint))


def _rows(n: int, offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"a": [offset + i for i in range(n)], "b": [2.0 * i for i in range(n)]})


def test_window_reads_day_partitions_with_row_identity(lake):
    for i, day in enumerate([date(2026, 11, 27), date(2026, 11, 29), DAY]):
        lake.write_day("ds", day, _rows(3, offset=10 * i))
    window = lake.read_window("ds", as_of=DAY, days=2)
    assert lake.days("ds") == [date(2026, 11, 27), date(2026, 11, 29), DAY]
    assert list(window["a"]) == [10, 11, 12, 20, 21, 22]
    assert list(window["_source"].unique()) == [
        "date=2026-11-29/part-0.parquet",
        "date=2026-11-30/part-0.parquet",
    ]
    assert list(window["_row"]) == [0, 1, 2, 0, 1, 2]


def test_csv_partitions_are_read_too(lake):
    lake.store.write("ds/date=2026-11-30/extra.csv", b"a,b\n1.5,2.5\n")
    lake.write_day("ds", DAY, _rows(2))
    assert sorted(lake.read_window("ds", as_of=DAY, days=1)["a"]) == [0.0, 1.0, 1.5]


def test_alerted_rows_are_listed_by_source_and_row(lake):
    lake.write_table(
        "ds/_alerts/date=2026-11-30/scores.parquet", pd.DataFrame({"_source": ["x"], "_row": [4]})
    )
    alerts = lake.alerted("ds", date(2026, 11, 29), DAY)
    assert alerts.to_dict("records") == [{"_source": "x", "_row": 4}]


def test_existing_files_are_never_overwritten(lake):
    lake.write_day("ds", DAY, _rows(2))
    with pytest.raises(StoreError, match="overwrite"):
        lake.write_day("ds", DAY, _rows(5))
    assert len(lake.read_window("ds", as_of=DAY, days=1)) == 2


def test_a_corrupt_file_is_named(lake):
    lake.store.write("ds/date=2026-11-30/bad.parquet", b"not parquet at all")
    with pytest.raises(StoreError, match=r"corrupt file .*date=2026-11-30/bad.parquet"):
        lake.read_window("ds", as_of=DAY, days=1)


def test_an_empty_window_says_so(lake):
    lake.write_day("ds", date(2026, 11, 1), _rows(2))
    with pytest.raises(StoreError, match="no partitions of 'ds' between 2026-11-29 and 2026-11-30"):
        lake.read_window("ds", as_of=DAY, days=2)


def test_a_missing_dataset_names_the_datasets_the_lake_holds(lake):
    with pytest.raises(StoreError, match=r"no partitions of 'ds' in .* \(datasets there: none\)"):
        lake.newest_day("ds")
    lake.write_day("ds", DAY, _rows(2))
    lake.write_day("other", DAY, _rows(2))
    lake.write_table("ds/_scores/date=2026-11-30/scores-v1.parquet", _rows(2))  # not a dataset of its own
    assert lake.datasets() == ["ds", "other"]
    with pytest.raises(StoreError, match=r"no partitions of 'dss' in .* \(datasets there: ds, other\)"):
        lake.read_window("dss", as_of=DAY, days=2)


def test_an_unreachable_store_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    lake = Lake(open_store("s3://nowhere/lake", endpoint_url="http://127.0.0.1:9", attempts=1))
    with pytest.raises(StoreError, match="cannot list s3://nowhere/lake/ds"):
        lake.days("ds")
