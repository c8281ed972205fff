"""The champion the service scores with: loads `models:/NAME@champion` and follows the alias as it moves.

Requests take `ModelHolder.current` once and use it to the end, so a swap (a reference assignment, done
by a background thread that polls the alias) never fails or mixes a request in flight.

Example:
    >>> holder = ModelHolder(registry_of(settings))
    >>> holder.try_refresh()                        # load the champion, if there is one
    >>> holder.current.version                      # "2"
"""

import logging
import threading

from flows.adapters.registry import LoadedVersion, Registry

log = logging.getLogger(__name__)


class ModelHolder:
    """The current champion; `refresh` loads a new one when the alias has moved."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.current: LoadedVersion | None = None
        self.refresh_failures = 0  # polls that could not read or load the champion (/metrics counts them)
        self._lock = threading.Lock()  # one load at a time; readers never wait

    def refresh(self) -> bool:
        """Follow the champion alias; returns True when a new version was swapped in."""
        with self._lock:
            version = self.registry.alias_version("champion")
            if version is None or (self.current is not None and self.current.version == version):
                return False
            self.current = self.registry.load_version(version)  # one reference assignment: atomic
            return True

    def try_refresh(self) -> None:
        """`refresh`, keeping the current model (and logging why) when the registry cannot be read."""
        try:
            self.refresh()
        except Exception as exc:  # registry down, corrupt version: keep serving what we have
            self.refresh_failures += 1
            log.warning(
                "champion refresh failed, still serving %s: %s", self.current and self.current.version, exc
            )

    def follow(self, every_seconds: float, stop: threading.Event) -> None:
        """Poll the alias until `stop` is set."""
        while not stop.wait(every_seconds):
            self.try_refresh()
