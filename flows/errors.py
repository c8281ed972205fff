"""Errors of the orchestration shell; each is a `SentinelError`, shown as one line by the CLI."""

from __future__ import annotations

from vae.errors import SentinelError


class StoreError(SentinelError):
    """The data lake cannot be read or written: unreachable store, missing dataset, corrupt file."""


class StoreUnavailableError(StoreError):
    """The store did not answer or answered with a server-side error: worth retrying."""


class RegistryError(SentinelError):
    """The MLflow registry cannot be reached or holds something unexpected."""


class RegistryUnavailableError(RegistryError):
    """The tracking server did not answer or answered with a server-side error: worth retrying."""


class NoReferenceError(RegistryError):
    """A registered version has no drift reference (it was registered before monitoring existed)."""


class NoChampionError(RegistryError):
    """The registered model has no champion yet, so there is nothing to score, monitor or export."""

    def __init__(self, model_name: str) -> None:
        super().__init__(f"{model_name} has no champion yet: run sentinel retrain first")


class ValidationFailedError(SentinelError):
    """A window failed a batch-level expectation; the run stops before training.

    Attributes:
        details: the multi-line summary (each failed expectation, observed values, offending rows).
    """

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details


class PromotionConflictError(SentinelError):
    """The champion changed while the flow ran (compare-and-set failed); nothing was promoted."""


class SettingsError(SentinelError):
    """sentinel.toml or a SENTINEL_* variable is malformed or holds an invalid value."""


class OrchestratorError(SentinelError):
    """The configured Prefect API does not answer."""


class StackError(SentinelError):
    """A part of `sentinel stack` cannot start (port taken, program missing, no answer); none is left up."""
