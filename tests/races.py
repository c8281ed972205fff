"""Eight `sentinel promote` processes started at once, each moving the same champion to its own version."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
RACERS = 8


@dataclass(frozen=True)
class Race:
    """Who raced (version -> finished process), from which champion, and the registry afterwards."""

    replaced: str
    runs: dict[str, subprocess.CompletedProcess[str]]

    @property
    def winners(self) -> list[str]:
        return [v for v, run in self.runs.items() if run.returncode == 0]


def extra_versions(client: MlflowClient, model: str, of: str, count: int) -> list[str]:
    """`count` new versions of `model` registered from version `of`'s model (nothing retrained)."""
    source = client.get_model_version(model, of)
    mlflow.set_tracking_uri(client.tracking_uri)  # MLflow's SQL registry looks a logged model up there
    # a logged model's URI (models:/m-...) needs its id beside it, and the server's answer may lack it
    logged = source.source.removeprefix("models:/") if source.source.startswith("models:/m-") else None
    made = [
        client.create_model_version(model, source.source, source.run_id, model_id=source.model_id or logged)
        for _ in range(count)
    ]
    return [str(mv.version) for mv in made]


def race(env: dict[str, str], versions: list[str], replaced: str) -> Race:
    """`sentinel promote V --replacing <replaced>` for every V at once; wait for all of them."""
    promote = [sys.executable, "-m", "flows", "promote"]
    racers = {
        v: subprocess.Popen(
            [*promote, v, "--reason", f"race to v{v}", "--replacing", replaced],
            cwd=ROOT,
            env=env | {"COLUMNS": "300"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in versions
    }
    runs = {}
    for version, racer in racers.items():
        out, err = racer.communicate(timeout=300)
        runs[version] = subprocess.CompletedProcess(racer.args, racer.returncode, out, err)
    return Race(replaced, runs)
