"""The retrain window scanned file by file, on the shipped mammography rows: sample, verdict, memory, Dask."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream

from flows.adapters.connect import mapper_of
from flows.adapters.lake import META_COLUMNS, Lake, PartitionFile, open_store
from flows.console.demo import demo_data, seed_lake
from flows.errors import SettingsError
from flows.jobs.window import SamplePlan, ScannedWindow, require_memory, scan_window
from flows.settings import Settings
from tests.flows.conftest import TODAY, fast_settings
from validation.contracts import ContractPolicy, DataContract

# mammography's windows hold 26% duplicate rows of their own
POLICY = ContractPolicy(min_rows=500, max_duplicate_fraction=0.35, max_quarantine_fraction=0.1)
PLAN = SamplePlan(rows=2_000, block=1, seed=0)
NO_ALERTS = pd.DataFrame({"_source": pd.Series(dtype=str), "_row": pd.Series(dtype=np.int64)})


def _window(lake: Lake) -> tuple[list, DataContract]:
    """The newest 7 days (yesterday's with a failing sensor) and a contract from the normal days before."""
    files = lake.window_files("mammography", TODAY, 7)
    normal = lake.read_window("mammography", TODAY - timedelta(days=3), 3)
    return files, DataContract.derive(normal.drop(columns=list(META_COLUMNS)), 0.25)


def _scan(
    lake: Lake, plan: SamplePlan = PLAN, alerted: pd.DataFrame = NO_ALERTS, mapper=map
) -> ScannedWindow:
    files, contract = _window(lake)
    return scan_window(lake, files, contract, plan, POLICY, TODAY, alerted, mapper)


def _clean(lake: Lake, scanned: ScannedWindow) -> pd.DataFrame:
    """Every row of the window that is neither quarantined nor alerted, in window order."""
    window = lake.read_window("mammography", TODAY, 7).astype({"_source": str})
    out = window.merge(
        scanned.quarantined[["_source", "_row"]].astype({"_source": str}), how="left", indicator=True
    )
    return window.loc[(out["_merge"] == "left_only").to_numpy()].reset_index(drop=True)


@pytest.fixture
def lake(tmp_path) -> Lake:
    """Ten days of the shipped mammography set, yesterday's with a failing sensor."""
    settings = fast_settings(tmp_path / "home")
    lake = Lake(open_store(settings.lake_root()))
    seed_lake(lake, demo_data(settings), "mammography", 10, TODAY, seed=0)
    return lake


def test_the_sample_is_a_uniform_draw_of_clean_rows_with_every_day_in_it(lake):
    scanned = _scan(lake)
    clean = _clean(lake, scanned)
    assert scanned.report.passed and scanned.rows["quarantined"] > 50  # the failing sensor's rows
    assert len(scanned.sample) == PLAN.rows == scanned.rows["sampled"]
    assert scanned.rows["read"] == scanned.rows["validated"] == len(clean) + scanned.rows["quarantined"]
    # every sampled row is a clean row of the lake, unchanged
    found = scanned.sample.merge(clean, how="left", indicator=True)
    assert (found["_merge"] == "both").all()
    # each day in proportion to its clean rows (7 days of about 1,000 rows: 2,000 draws, +-4 points)
    shares = scanned.sample["_date"].value_counts(normalize=True).sort_index()
    expected = clean["_date"].value_counts(normalize=True).sort_index()
    assert list(shares.index) == list(expected.index)
    assert np.abs(shares - expected).max() < 0.04, pd.concat([shares, expected], axis=1)


def test_file_order_and_the_reader_do_not_change_the_sample_the_verdict_or_the_hash(lake):
    forward = _scan(lake)
    backward = _scan(lake, mapper=lambda work, files: map(work, files[::-1]))
    pd.testing.assert_frame_equal(forward.sample, backward.sample)
    assert forward.data_hash == backward.data_hash and forward.rows == backward.rows
    assert (
        _scan(lake, SamplePlan(2_000, 1, seed=1)).data_hash == forward.data_hash
    )  # the window, not the draw
    assert not _scan(lake, SamplePlan(2_000, 1, seed=1)).sample.equals(forward.sample)


def test_a_window_smaller_than_the_sample_is_taken_whole_in_order(lake):
    scanned = _scan(lake, SamplePlan(rows=100_000, block=1, seed=0))
    pd.testing.assert_frame_equal(scanned.sample, _clean(lake, scanned), check_dtype=False)


def test_blocks_keep_runs_of_consecutive_rows_for_windowed_models(lake):
    scanned = _scan(lake, SamplePlan(rows=1_024, block=64, seed=0))
    runs = scanned.sample.groupby("_source")["_row"].apply(lambda rows: (rows // 64).nunique())
    assert runs.sum() <= 1_024 // 64 + 2  # whole blocks (a quarantined row may split one)
    assert len(scanned.sample) >= 1_024


def test_alerted_rows_are_left_out_before_anything_else(lake):
    files, _ = _window(lake)
    alerted = pd.DataFrame({"_source": [files[0].source] * 3, "_row": [0, 5, 9]})
    scanned = _scan(lake, SamplePlan(rows=100_000, block=1, seed=0), alerted)
    assert scanned.rows["alerted_dropped"] == 3
    assert scanned.rows["validated"] == scanned.rows["read"] - 3
    sampled = scanned.sample.loc[scanned.sample["_source"] == files[0].source, "_row"]
    assert not set(sampled) & {0, 5, 9}


def test_duplicate_rows_across_files_fail_the_window(lake):
    earlier = lake.read_window("mammography", TODAY - timedelta(days=3), 1).drop(columns=list(META_COLUMNS))
    lake.write_day("mammography", TODAY, earlier, name="part-resent")  # a day's upload arrives twice
    scanned = _scan(lake)
    assert [f.expectation for f in scanned.report.batch_failures] == ["expect_column_values_to_be_unique"]
    assert "duplicate rows" in scanned.report.summary()


def test_a_window_that_would_not_fit_stops_naming_the_setting():
    window = [PartitionFile("d", f"d/date=2026-11-{d:02d}/part-0.parquet", date(2026, 11, d), 160 * 10**6)
              for d in range(1, 31)]  # fmt: skip
    require_memory(window, 20, SamplePlan(200_000, 1, 0), limit=4e9)  # 30M rows sampled: fits
    with pytest.raises(SettingsError, match=r"lower retrain\.sample_rows$"):
        require_memory(window, 20, SamplePlan(30_000_000, 1, 0), limit=4e9)
    with pytest.raises(SettingsError, match=r"split it into smaller files$"):
        require_memory(window, 20, SamplePlan(1_000, 1, 0), limit=0.5e9)


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Two worker processes with S3 credentials of their own (those of the s3_bucket fixture)."""
    keys = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    keys["AWS_DEFAULT_REGION"] = "us-east-1"
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, env=keys) as local:
        yield local


@pytest.mark.parametrize("where", ["folder", "s3"])
def test_a_dask_cluster_reads_and_scans_the_files_with_the_same_result(where, lake, cluster, request):
    if where == "s3":
        endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
        remote = Lake(open_store(f"s3://{bucket}/lake", endpoint_url=endpoint))
        for key in lake.store.keys(""):
            remote.store.write(key, lake.store.read(key))
        lake = remote
    here = _scan(lake)
    with Client(cluster) as watcher, get_task_stream(watcher) as tasks:
        there = _scan(lake, mapper=mapper_of(Settings(dask_address=cluster.scheduler_address)))
    assert len({t["worker"] for t in tasks.data}) == 2  # both workers read files
    pd.testing.assert_frame_equal(here.sample, there.sample)
    pd.testing.assert_frame_equal(here.quarantined, there.quarantined)
    assert here.data_hash == there.data_hash and here.rows == there.rows
    assert here.report.gx_result == there.report.gx_result
