"""Point Prefect, MLflow and Great Expectations at the configured stack before they are imported.

These libraries read their own environment variables, so the settings object writes them once, at the
start of a command: the embedded default keeps Prefect's database under HOME and turns telemetry off.
"""

from __future__ import annotations

import logging
import os

from flows.errors import OrchestratorError
from flows.settings import Settings


def configure(settings: Settings) -> None:
    """Export the settings' Prefect/MLflow/GX options as those libraries' environment variables."""
    settings.home.mkdir(parents=True, exist_ok=True)
    env = {
        "PREFECT_HOME": str((settings.home / "prefect").resolve()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        # Flow and task logs still reach the Prefect API (and UI); the terminal shows our own output.
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "CRITICAL",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.registry.http_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "GX_ANALYTICS_ENABLED": "false",
    }
    if settings.prefect_api_url:
        env["PREFECT_API_URL"] = settings.prefect_api_url
    os.environ.update(env)
    for noisy in ("mlflow", "alembic", "great_expectations.data_context.types.base", "werkzeug", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def check_prefect_api(settings: Settings) -> None:
    """Fail at once unless the configured Prefect API answers its health check (after `configure`).

    The temporary local server (no prefect_api_url) needs no check: each flow run starts it.

    Raises:
        OrchestratorError: the API does not answer.
    """
    if not settings.prefect_api_url:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        raise OrchestratorError(f"the Prefect API at {settings.prefect_api_url} does not answer: {error}")
