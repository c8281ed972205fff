"""The data lake adapter: day-partitioned datasets on a local folder or on S3 (through boto3).

Layout under ROOT (a path, or ``s3://bucket/prefix``)::

    DATASET/date=YYYY-MM-DD/*.parquet|*.csv     raw partitions, never modified
    DATASET/_alerts/date=YYYY-MM-DD/*.parquet    rows the champion flagged (_source, _row)
    DATASET/_quarantine/RUN.parquet              rows that failed validation, with their reason

Every row read carries ``_date`` (its partition), ``_source`` (its file, relative to the dataset) and
``_row`` (its position in that file), which identify it across alerts and quarantine.

Example:
    >>> lake = Lake(open_store("s3://lake/prod", endpoint_url="http://127.0.0.1:9000"))
    >>> window = lake.read_window("sensors", as_of=date(2026, 11, 30), days=7)
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flows.errors import StoreError, StoreUnavailableError

META_COLUMNS = ("_date", "_source", "_row")
_DAY = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_VERSIONED = re.compile(r"-v(\d+)\.\w+$")  # results a model version wrote: scores-v3.parquet
_READERS = {".parquet": pd.read_parquet, ".csv": pd.read_csv}


@dataclass(frozen=True)
class PartitionFile:
    """One raw file of a day partition: its key in the store, its day and its size in bytes."""

    dataset: str
    key: str
    day: date
    size: int

    @property
    def source(self) -> str:
        """The file relative to its dataset: each row's `_source`."""
        return self.key.removeprefix(f"{self.dataset}/")


class Store(Protocol):
    """Bytes by key under one root; keys use '/'."""

    @property
    def uri(self) -> str:
        """Where the store is, for messages: a folder or s3://bucket/prefix."""

    def keys(self, prefix: str) -> list[str]:
        """Every key under `prefix`, recursively, sorted."""

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every key under `prefix` with its size in bytes, sorted by key."""

    def read(self, key: str) -> bytes:
        """The object's bytes."""

    def write(self, key: str, data: bytes) -> None:
        """Create the object; an existing one is never overwritten."""


@dataclass(frozen=True)
class LocalStore:
    """A folder on this machine."""

    root: Path

    @property
    def uri(self) -> str:
        """Where the store lives."""
        return str(self.root)

    def keys(self, prefix: str) -> list[str]:
        """Every file under `prefix`, as keys relative to the root."""
        return list(self.sizes(prefix))

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every file under `prefix` with its size, keys relative to the root."""
        found = ((p.relative_to(self.root).as_posix(), p) for p in (self.root / prefix).rglob("*"))
        return {key: path.stat().st_size for key, path in sorted(found) if path.is_file()}

    def read(self, key: str) -> bytes:
        """The file's bytes."""
        try:
            return (self.root / key).read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read {self.root / key}: {exc.strerror}") from None

    def write(self, key: str, data: bytes) -> None:
        """Write atomically (temporary file, then rename); refuse to replace a file."""
        target = self.root / key
        if target.exists():
            raise StoreError(f"refusing to overwrite {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(data)
        tmp.rename(target)


@dataclass(frozen=True)
class S3Store:
    """A bucket prefix on S3 or an S3-compatible store (MinIO, moto), through an injected boto3 client."""

    bucket: str
    prefix: str
    client: Any

    @property
    def uri(self) -> str:
        """Where the store lives."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return str(PurePosixPath(self.prefix) / key) if self.prefix else key

    def keys(self, prefix: str) -> list[str]:
        """Every object under `prefix`, as keys relative to the store's prefix."""
        return list(self.sizes(prefix))

    def sizes(self, prefix: str) -> dict[str, int]:
        """Every object under `prefix` with its size, keys relative to the store's prefix."""
        base = self._key(prefix).rstrip("/")
        full = f"{base}/" if base else ""  # the store's root: every object
        out: dict[str, int] = {}
        with self._errors(f"list {self.uri}/{prefix}"):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                out |= {obj["Key"]: obj["Size"] for obj in page.get("Contents", [])}
        cut = len(self.prefix.rstrip("/")) + 1 if self.prefix else 0
        return {k[cut:]: out[k] for k in sorted(out)}

    def __reduce__(self) -> tuple[Any, tuple[str, str, int, float]]:
        """Pickled as its address and retry options (a Dask worker opens its own client and credentials)."""
        config = self.client.meta.config
        attempts = config.retries["total_max_attempts"]
        return open_store, (self.uri, self.client.meta.endpoint_url, attempts, config.read_timeout)

    def read(self, key: str) -> bytes:
        """The object's bytes."""
        with self._errors(f"read {self.uri}/{key}"):
            body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        return body

    def write(self, key: str, data: bytes) -> None:
        """Create the object, refusing to replace one (a conditional put: If-None-Match)."""
        with self._errors(f"write {self.uri}/{key}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code in ("PreconditionFailed", "412"):
                raise StoreError(f"refusing to overwrite: cannot {what}: it already exists") from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            kind = StoreUnavailableError if status >= 500 or code == "SlowDown" else StoreError
            raise kind(f"cannot {what}: {code}: {exc.response.get('Error', {}).get('Message', '')}") from None
        except BotoCoreError as exc:  # connection refused, timeouts, DNS: worth a retry
            raise StoreUnavailableError(f"cannot {what}: {exc}") from None


def open_store(
    root: str, endpoint_url: str | None = None, attempts: int = 5, timeout_seconds: float = 20.0
) -> Store:
    """A `LocalStore` for a path, an `S3Store` for ``s3://bucket/prefix`` (credentials: the AWS chain).

    S3 requests are tried up to `attempts` times with boto3's standard retry mode (exponential backoff
    with jitter on throttling, 5xx, resets and timeouts), each waiting at most `timeout_seconds`.
    """
    if not root.startswith("s3://"):
        return LocalStore(Path(root))
    import boto3
    from botocore.config import Config

    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    config = Config(
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=timeout_seconds,
        read_timeout=timeout_seconds,
    )
    return S3Store(bucket, prefix.strip("/"), boto3.client("s3", endpoint_url=endpoint_url, config=config))


@dataclass(frozen=True)
class Lake:
    """Datasets of day partitions in a `Store`."""

    store: Store

    def days(self, dataset: str) -> list[date]:
        """Dates of the dataset's partitions, oldest first."""
        found = {m.group(1) for key in self.store.keys(dataset) if (m := _DAY.match(key.split("/")[1]))}
        return sorted(date.fromisoformat(d) for d in found)

    def datasets(self) -> list[str]:
        """Names of the datasets that hold at least one day partition."""
        parts = (key.split("/") for key in self.store.keys(""))
        return sorted({p[0] for p in parts if len(p) > 2 and _DAY.match(p[1])})

    def require_days(self, dataset: str) -> list[date]:
        """`days(dataset)`, which must not be empty.

        Raises:
            StoreError: the dataset has no partition; the message names the datasets the lake holds.
        """
        days = self.days(dataset)
        if not days:
            held = ", ".join(self.datasets()) or "none"
            raise StoreError(f"no partitions of {dataset!r} in {self.store.uri} (datasets there: {held})")
        return days

    def newest_day(self, dataset: str) -> date:
        """The date of the dataset's newest partition.

        Raises:
            StoreError: the dataset has no partition.
        """
        return self.require_days(dataset)[-1]

    def read_window(self, dataset: str, as_of: date, days: int) -> pd.DataFrame:
        """Every row of the partitions dated (as_of - days, as_of], with `META_COLUMNS` added.

        Raises:
            StoreError: the store is unreachable, a file is corrupt, or the window holds no partition.
        """
        frames = [self.read_file(file) for file in self.window_files(dataset, as_of, days)]
        return pd.concat(frames, ignore_index=True)

    def window_files(self, dataset: str, as_of: date, days: int) -> list[PartitionFile]:
        """The raw files of the partitions dated (as_of - days, as_of], oldest day first.

        Raises:
            StoreError: the store is unreachable, or the window holds no partition.
        """
        start = as_of - timedelta(days=days - 1)
        files = [
            PartitionFile(dataset, key, day, size)
            for day in self.require_days(dataset)
            if start <= day <= as_of
            for key, size in self.store.sizes(f"{dataset}/date={day.isoformat()}").items()
            if PurePosixPath(key).suffix in _READERS
        ]
        if not files:
            raise StoreError(f"no partitions of {dataset!r} between {start} and {as_of} in {self.store.uri}")
        return files

    def read_file(self, file: PartitionFile) -> pd.DataFrame:
        """One raw file's rows with `META_COLUMNS` (its file as a categorical `_source`).

        Raises:
            StoreError: unreachable, missing, of another format, or corrupt.
        """
        frame = self.read_table(file.key)
        n = len(frame)
        frame["_date"] = np.full(n, np.datetime64(file.day, "ns"))
        frame["_source"] = pd.Categorical.from_codes(np.zeros(n, dtype=np.int8), categories=[file.source])
        frame["_row"] = np.arange(n)
        return frame

    def read_table(self, key: str) -> pd.DataFrame:
        """One parquet or CSV file.

        Raises:
            StoreError: unreachable, missing, of another format, or corrupt.
        """
        reader = _READERS.get(PurePosixPath(key).suffix)
        if reader is None:
            raise StoreError(
                f"cannot read {self.store.uri}/{key}: only .parquet and .csv files are supported"
            )
        data = self.store.read(key)
        try:
            if reader is pd.read_parquet:
                return pq.read_table(pa.BufferReader(data)).to_pandas(self_destruct=True)
            return reader(io.BytesIO(data))
        except Exception as exc:  # parquet/csv parsers raise many types for a corrupt file
            raise StoreError(f"corrupt file {self.store.uri}/{key}: {type(exc).__name__}: {exc}") from None

    def alerted(self, dataset: str, start: date, end: date) -> pd.DataFrame:
        """(_source, _row) of rows the champion flagged in partitions dated [start, end], each once."""
        frames = [
            pd.read_parquet(io.BytesIO(self.store.read(key)), columns=["_source", "_row"])
            for day in _dates(start, end)
            for key in self.store.keys(f"{dataset}/_alerts/date={day.isoformat()}")
        ]
        if not frames:
            return pd.DataFrame({"_source": pd.Series(dtype=str), "_row": pd.Series(dtype=np.int64)})
        return pd.concat(frames, ignore_index=True).drop_duplicates(ignore_index=True)

    def results(self, dataset: str, kind: str, day: date) -> dict[int, str]:
        """Keys a job wrote for the day under DATASET/KIND/date=DAY/ (e.g. ``_scores``), by model version."""
        keys = self.store.keys(f"{dataset}/{kind}/date={day.isoformat()}")
        return {int(m.group(1)): key for key in keys if (m := _VERSIONED.search(key))}

    def location(self, key: str) -> str:
        """Where a person finds a key: a file URI for a folder lake, else the object's URI."""
        if isinstance(self.store, LocalStore):
            return (self.store.root / key).resolve().as_uri()
        return f"{self.store.uri}/{key}"

    def write_day(self, dataset: str, day: date, frame: pd.DataFrame, name: str = "part-0") -> str:
        """Add a raw partition file (never replaces one); returns its key."""
        return self.write_table(f"{dataset}/date={day.isoformat()}/{name}.parquet", frame)

    def write_quarantine(self, dataset: str, run_id: str, rows: pd.DataFrame) -> str:
        """Save quarantined rows (with their reason) for a run; returns the key."""
        return self.write_table(f"{dataset}/_quarantine/{run_id}.parquet", rows)

    def write_json(self, key: str, document: Any) -> str:
        """Write a new JSON file (never replaces one); returns its key."""
        self.store.write(key, json.dumps(document, indent=2, default=str).encode())
        return key

    def read_json(self, key: str) -> Any:
        """One JSON file.

        Raises:
            StoreError: unreachable, missing, or not JSON.
        """
        try:
            return json.loads(self.store.read(key))
        except ValueError as exc:
            raise StoreError(f"corrupt file {self.store.uri}/{key}: {exc}") from None

    def write_table(self, key: str, frame: pd.DataFrame) -> str:
        """Write a new parquet file (never replaces one); returns its key."""
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        self.store.write(key, buf.getvalue())
        return key


def _dates(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]
