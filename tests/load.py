"""Locust, headless, against a running scoring service: the users of benchmarks/load/locustfile.py.

Example:
    >>> locust = run_locust("http://127.0.0.1:8000", bodies, users=64, seconds=60, folder=tmp)
    >>> stats = wait_stats(locust, tmp, timeout=120)
    >>> stats.rows["Aggregated"]["Failure Count"], stats.rows["small"]["99%"]
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parents[1] / "benchmarks" / "load" / "locustfile.py"


@dataclass(frozen=True)
class LoadStats:
    """Locust's per-request-name statistics (its _stats.csv, one row per name plus "Aggregated")."""

    rows: dict[str, dict[str, float]]  # "small", "large", "Aggregated" -> column -> value
    output: str  # locust's own summary, for a failure message


def run_locust(
    url: str,
    bodies: dict[str, str],
    users: int,
    seconds: int,
    folder: Path,
    token: str | None = None,
    path: str = "/score",
) -> subprocess.Popen[str]:
    """Start `users` locust users posting `bodies` to `url`+`path` for `seconds`; `wait_stats` collects them.

    `bodies` is {"small": 1-row body, "large": 1,000-row body}, JSON texts; results go under `folder`.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bodies.json").write_text(json.dumps(bodies))
    env = {
        "SENTINEL_LOAD_BODIES": str(folder / "bodies.json"),
        "SENTINEL_LOAD_TOKEN": token or "",
        "SENTINEL_LOAD_PATH": path,
    }
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", url,
        "--users", str(users), "--spawn-rate", str(users), "--run-time", f"{seconds}s",
        "--csv", str(folder / "load"), "--only-summary", "--stop-timeout", "30",
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=os.environ | env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def wait_stats(locust: subprocess.Popen[str], folder: Path, timeout: float) -> LoadStats:
    """Wait for a `run_locust` process; its statistics (it exits 1 when any request failed)."""
    output, _ = locust.communicate(timeout=timeout)
    with (folder / "load_stats.csv").open() as f:
        rows = {
            row["Name"]: {
                k: float(v) for k, v in row.items() if k not in ("Type", "Name") and v not in ("", "N/A")
            }
            for row in csv.DictReader(f)
        }
    return LoadStats(rows, output[-3000:])
