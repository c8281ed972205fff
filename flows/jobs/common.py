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
from collections.abc import Callable
from datetime import date
from typing import Any

import pandas as pd
import torch
from mlflow.exceptions import MlflowException
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.adapters.registry import LoadedVersion, Registry
from flows.errors import NoChampionError, StoreUnavailableError
from flows.settings import Settings, load_settings
from vae import InputError


def _transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only errors that a second try can fix: an unreachable store or registry."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, StoreUnavailableError | MlflowException | ConnectionError)


io_task = task(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_transient, cache_policy=NO_CACHE)
"""A task doing I/O through an adapter: retried, and only on errors a retry can fix."""
Progress = Callable[[int, int, str], None]
"""A job's progress callback: (steps done, steps in all, what was just done)."""
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


def markdown_table(frame: pd.DataFrame) -> str:
    """A frame as a markdown table, for the Prefect UI."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|---" * len(frame.columns) + "|"]
    rows = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines + rows)
