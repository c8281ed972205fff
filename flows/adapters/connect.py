"""The lake and registry adapters the settings point at.

Example:
    >>> registry_of(Settings()).status()
    >>> lake_of(Settings()).newest_day("mammography")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flows.adapters.lake import Lake, open_store
from flows.adapters.locks import move_lock
from flows.adapters.registry import Registry
from flows.errors import SettingsError
from flows.settings import Settings


def lake_of(settings: Settings) -> Lake:
    """The lake adapter the settings point at."""
    cfg = settings.lake
    return Lake(open_store(settings.lake_root(), cfg.endpoint_url, cfg.s3_attempts, cfg.s3_timeout_seconds))


def registry_of(settings: Settings) -> Registry:
    """The registry adapter the settings point at."""
    r = settings.registry
    return Registry(
        settings.tracking_uri(), r.model_name, r.experiment, settings.artifact_location(), move_lock(settings)
    )


Mapper = Callable[[Callable[[Any], Any], list[Any]], Iterable[Any]]


def mapper_of(settings: Settings) -> Mapper:
    """How a job maps work over files: in this process, or on the Dask cluster at `dask_address`."""
    address = settings.dask_address
    if address is None:
        return map

    try:
        from distributed import Client, as_completed
    except ImportError:
        raise SettingsError("dask_address needs distributed: pip install 'vae-sentinel[dask]'") from None

    def on_cluster(work: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        try:
            client = Client(address, timeout=30)
        except OSError as exc:  # refused, timed out: one line naming the setting
            message = f"cannot reach the Dask scheduler at {address} (dask_address): {exc}"
            raise SettingsError(message) from None
        with client:
            for future in as_completed(client.map(work, items, pure=False)):
                yield future.result()

    return on_cluster
