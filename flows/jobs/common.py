"""What the jobs share: task options (only I/O retries, and only on errors a retry can fix) and the champion.

Example:
    >>> @io_task
    ... def read(lake: Lake) -> pd.DataFrame: ...
    >>> settings = job_settings(None)             # read as a worker would, torch's threads set
    >>> champion = require_champion(registry)  # NoChampionError when none is registered yet
    >>> day_parameter("2026-12-01")             # a deployment run's date, as JSON gave it
    datetime.date(2026, 12, 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.adapters.registry import LoadedVersion, Registry
from flows.errors import NoChampionError, RegistryUnavailableError, StoreUnavailableError
from flows.settings import Settings, load_settings
from vae import InputError
from vae.training import EpochStats


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only errors that a second try can fix: an unreachable store or registry."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, StoreUnavailableError | RegistryUnavailableError | ConnectionError)


io_task = task(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient, cache_policy=NO_CACHE)
"""A task doing I/O through an adapter: retried, and only on errors a retry can fix."""
Progress = Callable[[int, int, str], None]
"""A job's progress callback: (steps done, steps in all, what was just done)."""


@dataclass(frozen=True)
class Watchers:
    """Progress callbacks a command hands the flows it runs in its own process.

    Neither flow parameters nor a context variable: Prefect sends both with a flow's tasks, to Dask
    workers too, and a callback drawing a terminal bar cannot travel. A flow run by a worker has none.
    """

    on_epoch: Callable[[EpochStats], None] | None = None
    on_step: Progress | None = None


_watchers = [Watchers()]  # the process's current watchers, innermost last


def watchers() -> Watchers:
    """Who listens to the progress of the flows this process runs now (nobody, on a worker)."""
    return _watchers[-1]


@contextmanager
def watching(listeners: Watchers) -> Iterator[None]:
    """Let the flows run inside this block report their progress to `listeners`."""
    _watchers.append(listeners)
    try:
        yield
    finally:
        _watchers.remove(listeners)


pure_task = task(cache_policy=NO_CACHE)
"""A task calling the pure core: never retried (the same input fails the same way), never cached."""


def job_settings(settings: Settings | None) -> Settings:
    """A flow's settings (read here when not given, as on a worker), with torch's threads set from them."""
    settings = settings or load_settings()
    torch.set_num_threads(settings.torch_threads)
    return settings


@io_task
def load_champion(registry: Registry) -> LoadedVersion | None:
    """The registered champion with its detector and contract, or None."""
    return registry.champion()


def require_champion(registry: Registry) -> LoadedVersion:
    """The champion, loaded through the retried task; NoChampionError when there is none yet."""
    champion = load_champion(registry)
    if champion is None:
        raise NoChampionError(registry.model_name)
    return champion


def day_parameter(value: date | str | None) -> date | None:
    """A day as a flow gets it: a `date` when called in process, an ISO string from a deployment run.

    The flows skip Prefect's parameter validation (their settings object is not JSON), so nothing else
    turns the JSON of `prefect deployment run ... -p as_of=2026-12-01` or `run_deployment` into a date.

    Raises:
        InputError: a string that is not a YYYY-MM-DD day.
    """
    if not isinstance(value, str):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"a day must be YYYY-MM-DD, got {value!r}") from None


def artifact_key(kind: str, dataset: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for one kind of record of a dataset."""
    return kind + "-" + re.sub(r"[^a-z0-9-]+", "-", dataset.lower()).strip("-")
