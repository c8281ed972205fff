"""The lake and registry adapters the settings point at.

Example:
    >>> registry_of(Settings()).status()
    >>> lake_of(Settings()).newest_day("mammography")
"""

from __future__ import annotations

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
