"""The lock a champion move holds from reading the alias to writing it, shared by every process that moves it.

MLflow has no compare-and-set on an alias: two writers could both read the same champion and both move
it. Every move (a flow's promotion, `sentinel promote`, `rollback`, a backtest's adoption) takes this lock
first. Where it lives (`move_lock`):

- with a Prefect server (``prefect_api_url``): a Prefect global concurrency limit of one slot named
  ``sentinel-champion-<model>``, created on first use. Its slot is leased (renewed while held), so a
  holder that dies frees it when the lease runs out (`LEASE_SECONDS`); every worker and every `sentinel`
  command pointed at that server shares it.
- without one (the embedded default, one machine): a file lock, ``SENTINEL_HOME/locks/<name>.lock``.

Waiting longer than `WAIT_SECONDS` for the lock is a `PromotionConflictError`: nothing was moved.

Example:
    >>> with move_lock(Settings())():
    ...     ...  # read the champion, then move it
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from functools import partial
from pathlib import Path

import httpx
from filelock import FileLock, Timeout

from flows.errors import OrchestratorError, PromotionConflictError
from flows.settings import Settings

MoveLock = Callable[[], AbstractContextManager[None]]
LEASE_SECONDS = 60.0  # a dead holder's Prefect slot frees after this (Prefect's shortest lease), renewed
WAIT_SECONDS = 90.0  # past the lease and the server's 15 s pass that frees it: longer means a stuck holder


def move_lock(settings: Settings) -> MoveLock:
    """The lock guarding moves of the configured model's champion (see the module docstring)."""
    name = f"sentinel-champion-{settings.registry.model_name}"
    if settings.prefect_api_url:
        return partial(_prefect_slot, name)
    return partial(_file_lock, settings.home / "locks" / f"{name}.lock")


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)
    try:
        lock.acquire(timeout=WAIT_SECONDS)
    except Timeout:
        raise _busy(str(path)) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _prefect_slot(name: str) -> Iterator[None]:
    from prefect.client.orchestration import get_client
    from prefect.concurrency.sync import concurrency
    from prefect.exceptions import ObjectAlreadyExists

    with ExitStack() as held:
        try:
            with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
                client.upsert_global_concurrency_limit_by_name(name, 1)  # not atomic: another may create it
            held.enter_context(
                concurrency(name, timeout_seconds=WAIT_SECONDS, lease_duration=LEASE_SECONDS, strict=True)
            )
        except TimeoutError:
            raise _busy(f"the Prefect concurrency limit {name}") from None
        except httpx.HTTPError as exc:
            raise OrchestratorError(f"cannot take the Prefect concurrency limit {name}: {exc}") from None
        yield


def _busy(where: str) -> PromotionConflictError:
    return PromotionConflictError(
        f"another champion move has held {where} for over {WAIT_SECONDS:.0f} s; nothing was moved"
    )
