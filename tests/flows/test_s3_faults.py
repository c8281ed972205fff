"""S3 faults injected by a proxy between the lake and moto's S3 server: retried, or one line; never a
partial object under a final key."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from flows.adapters.lake import Lake, open_store
from flows.errors import StoreUnavailableError
from tests.faultproxy import FaultProxy

pytestmark = pytest.mark.reliability  # a fault of the README's Reliability table

DAY = date(2026, 11, 30)


@pytest.fixture
def proxied(s3_endpoint, s3_bucket):
    """The proxy in front of moto, and the bucket's lake read directly (no proxy) to check what landed."""
    with FaultProxy(s3_endpoint, stall_seconds=3) as proxy:
        yield proxy, s3_bucket, Lake(open_store(f"s3://{s3_bucket}/lake", s3_endpoint))


def through(proxy: FaultProxy, bucket: str, attempts: int = 5) -> Lake:
    return Lake(open_store(f"s3://{bucket}/lake", proxy.url, attempts=attempts, timeout_seconds=1.0))


def test_throttling_errors_resets_and_stalls_are_retried(proxied):
    proxy, bucket, direct = proxied
    lake = through(proxy, bucket)
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(1000, 4)), columns=list("abcd"))
    proxy.inject("503", "500", "reset", "stall")  # the write meets all four before it passes
    lake.write_day("ds", DAY, frame)
    proxy.inject("503", "reset")  # the listing, then the read
    back = lake.read_window("ds", DAY, 1)
    pd.testing.assert_frame_equal(back[list("abcd")], frame)
    faults = [fault for _, fault in proxy.seen]
    assert faults[:5] == ["503", "500", "reset", "stall", "pass"] and faults.count("pass") >= 3
    pd.testing.assert_frame_equal(direct.read_window("ds", DAY, 1)[list("abcd")], frame)


def test_an_upload_cut_mid_way_leaves_no_partial_object(proxied):
    proxy, bucket, direct = proxied
    data = np.random.default_rng(1).bytes(2**20)
    proxy.inject("cut")
    through(proxy, bucket).store.write("ds/whole.bin", data)  # retried after the cut
    assert direct.store.read("ds/whole.bin") == data
    proxy.inject("cut")
    with pytest.raises(StoreUnavailableError, match=r"^cannot write s3://.*/ds/cut.bin: "):
        through(proxy, bucket, attempts=1).store.write("ds/cut.bin", data)
    assert direct.store.keys("ds") == ["ds/whole.bin"]  # nothing, not half, under the cut key


def test_a_store_that_keeps_failing_stops_in_one_line_after_its_attempts(proxied):
    proxy, bucket, _ = proxied
    proxy.inject(*["503"] * 10)
    with pytest.raises(StoreUnavailableError, match=r"^cannot list s3://.*: SlowDown: Please reduce"):
        through(proxy, bucket, attempts=3).days("ds")
    assert [fault for _, fault in proxy.seen] == ["503"] * 3
