"""Locust users of a scoring service: mostly 1-row requests, some of 1,000 rows, no think time.

Read by `locust -f` (benchmarks/load.py, tests/flows/test_serve.py). The bodies, JSON texts, come from
the JSON file named by SENTINEL_LOAD_BODIES ({"small": text, "large": text}), posted to
SENTINEL_LOAD_PATH (default /score; MLflow's server: /invocations); SENTINEL_LOAD_TOKEN is the bearer
token, if the service needs one. Any answer but a 200 counts as a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from locust import FastHttpUser, constant, task

BODIES: dict[str, str] = json.loads(Path(os.environ["SENTINEL_LOAD_BODIES"]).read_text())
PATH = os.environ.get("SENTINEL_LOAD_PATH", "/score")
HEADERS = {"Content-Type": "application/json"}
if os.environ.get("SENTINEL_LOAD_TOKEN"):
    HEADERS["Authorization"] = f"Bearer {os.environ['SENTINEL_LOAD_TOKEN']}"


class Scorer(FastHttpUser):
    """One client sending requests back to back."""

    wait_time = constant(0)

    def _score(self, size: str) -> None:
        with self.client.post(
            PATH, data=BODIES[size], headers=HEADERS, name=size, catch_response=True
        ) as reply:
            if reply.status_code != 200:
                reply.failure(f"{reply.status_code}: {reply.text[:200]}")

    @task(9)
    def small(self) -> None:
        """One row."""
        self._score("small")

    @task(1)
    def large(self) -> None:
        """1,000 rows."""
        self._score("large")
