"""The lake and registry adapters the settings point at.

Example:
    >>> registry_of(Settings()).status()
    >>> lake_of(Settings()).newest_day("mammography")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flows.adapters.lake import Lake, open_store
from flows.adapters.registry import Registry
from flows.settings import Settings


def lake_of(settings: Settings) -> Lake:
    """The lake adapter the settings point at."""
    return Lake(open_store(settings.lake_root(), settings.lake.endpoint_url))


def registry_of(settings: Settings) -> Registry:
    """The registry adapter the settings point at."""
    r = settings.registry
    return Registry(settings.tracking_uri(), r.model_name, r.experiment, settings.artifact_location())


Mapper = Callable[[Callable[[Any], Any], list[Any]], Iterable[Any]]


def mapper_of(settings: Settings) -> Mapper:
    """How a job maps work over files: in this process, or on the Dask cluster at `dask_address`."""
    address = settings.dask_address
    if address is None:
        return map

    def on_cluster(work: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        from distributed import Client, as_completed

        with Client(address, timeout=30) as client:
            for future in as_completed(client.map(work, items, pure=False)):
                yield future.result()

    return on_cluster
