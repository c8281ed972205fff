"""The production stack (`sentinel stack`) against the embedded default, measured in one run.

Issue 15's targets: a retrain on the stack at most 1.5x the same retrain on the embedded default; a
schedule's due time to its flow running at most 30 s with the poll intervals a user would keep (Prefect's
defaults: scheduler loop 60 s, worker poll 10 s); a promotion to the service answering with the new
version at most serve.poll_seconds + 1 s. Also MLflow's proxied artifact upload and download of a model.

Setup: two temporary homes seeded alike from the shipped mammography set: one with no SENTINEL_*
variables (embedded default: a temporary Prefect server per command, MLflow on SQLite, a folder lake),
one pointed at a `sentinel stack up` on free ports (PostgreSQL, S3, MLflow and Prefect servers, workers).
The retrains alternate between the two, each `sentinel retrain` as its own process (what a user runs);
the stack is torn down at the end, also on failure.

Run: .venv/bin/python benchmarks/stack.py   (writes benchmarks/results/stack.md and .json)
     --rounds N retrains per side (default 2); --promotions N service switches timed (default 3).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import mlflow
from publish import publish

from flows.adapters.connect import lake_of, registry_of
from flows.console.demo import demo_data, seed_lake
from flows.settings import Settings
from flows.stack.client import (
    clean_env,
    free_ports,
    on_free_ports,
    pause_schedule,
    pointed_at,
    wait_until,
)
from flows.stack.parts import exports

ROOT = Path(__file__).resolve().parents[1]
DATASET = "mammography"
MODEL = "vae-sentinel"
TARGETS = {"retrain_ratio": 1.5, "schedule_to_running_s": 30.0, "promotion_slack_s": 1.0}


def _sentinel(env: dict[str, str], *args: str, timeout: float = 900) -> float:
    """Run a sentinel command; its wall seconds. Exits with its output when it fails."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "flows", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        sys.exit(f"sentinel {' '.join(args)} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.perf_counter() - start


@contextmanager
def _stack(top: Path) -> Iterator[dict[str, str]]:
    """A stack on free ports with Prefect's default scheduler loop; its environment; down at the end."""
    env = on_free_ports(top / "stack-home")
    try:
        _sentinel(env, "stack", "up")
        with pointed_at(env) as settings:
            exported = exports(settings)
        yield env | exported
    finally:
        subprocess.run([sys.executable, "-m", "flows", "stack", "down"], cwd=ROOT, env=env, check=False)


def _seed(env: dict[str, str], today: date) -> None:
    """The same ten normal days in either home's lake (folder or S3)."""
    with pointed_at(env) as settings:
        seed_lake(lake_of(settings), demo_data(settings), DATASET, 10, today, seed=0, failing=False)


def _retrains(
    embedded: dict[str, str], stack: dict[str, str], rounds: int, today: date
) -> dict[str, list[float]]:
    """Wall seconds of `sentinel retrain` on each side, alternating."""
    walls: dict[str, list[float]] = {"embedded": [], "stack": []}
    for _ in range(rounds):
        for side, env in (("embedded", embedded), ("stack", stack)):
            walls[side].append(_sentinel(env, "retrain", "--as-of", today.isoformat()))
    return walls


def _schedule_lags(stack: dict[str, str], runs: int) -> list[float]:
    """Seconds from each scheduled retrain's due time to its flow running, for `runs` runs of a 1-min cron."""
    _sentinel(stack, "deploy", "--work-pool", "sentinel-retrain", "--monitor-work-pool", "sentinel-process",
              "--retrain-cron", "* * * * *", "--monitor-cron", "0 0 1 1 *")  # fmt: skip
    api = stack["SENTINEL_PREFECT_API_URL"]
    body = {"flows": {"name": {"any_": ["retrain"]}}, "sort": "EXPECTED_START_TIME_ASC"}
    started: list[dict[str, Any]] = []

    def enough() -> bool:
        found = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()
        started[:] = [r for r in found if r["auto_scheduled"] and r["start_time"]]
        return len(started) >= runs

    wait_until(enough, 120 + 75 * runs, f"{runs} scheduled retrains started", interval=2)
    pause_schedule(api, started[0]["deployment_id"])
    idle = {"flow_runs": {"state": {"type": {"any_": ["PENDING", "RUNNING"]}}}}
    wait_until(lambda: not httpx.post(f"{api}/flow_runs/filter", json=idle, timeout=10).json(), 600,
               "flow runs finishing", interval=2)  # fmt: skip
    return sorted(
        (
            datetime.fromisoformat(r["start_time"]) - datetime.fromisoformat(r["expected_start_time"])
        ).total_seconds()
        for r in started[:runs]
    )


def _promotions(stack: dict[str, str], count: int, poll_seconds: float) -> list[float]:
    """Seconds from `sentinel promote` returning to `sentinel serve` answering with that version."""
    tracking = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    client = mlflow.MlflowClient(tracking, registry_uri=tracking)
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name='{MODEL}'"))
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "flows", "serve", "--port", str(port)],
        cwd=ROOT, env=stack | {"SENTINEL_SERVE__POLL_SECONDS": str(poll_seconds)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(
            lambda: httpx.get(f"{url}/ready", timeout=2).status_code == 200, 180, "sentinel serve ready"
        )
        seconds = []
        for i in range(count):
            version = str(versions[i % 2])  # back and forth between the two oldest versions
            if httpx.get(f"{url}/ready", timeout=5).json()["version"] == version:
                version = str(versions[(i + 1) % 2])
            _sentinel(stack, "promote", version, "--reason", "benchmark: promotion to serving")
            moved = time.perf_counter()
            wait_until(lambda v=version: httpx.get(f"{url}/ready", timeout=5).json()["version"] == v, 120,
                       f"the service switching to version {version}", interval=0.05)  # fmt: skip
            seconds.append(time.perf_counter() - moved)
        return seconds
    finally:
        server.terminate()
        server.wait(30)


def _artifacts(stack: dict[str, str], folder: Path) -> dict[str, float]:
    """Download the champion's model through the MLflow server, upload it to a new run; MB and seconds."""
    tracking = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    mlflow.set_tracking_uri(tracking)
    mlflow.set_registry_uri(tracking)
    start = time.perf_counter()
    model = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL}@champion", dst_path=str(folder)))
    download = time.perf_counter() - start
    size = sum(p.stat().st_size for p in model.rglob("*") if p.is_file()) / 1e6
    mlflow.set_experiment("benchmark-artifacts")
    with mlflow.start_run():
        start = time.perf_counter()
        mlflow.log_artifacts(str(model), "model-copy")
        upload = time.perf_counter() - start
    return {"model_mb": size, "download_s": download, "upload_s": upload}


def _mlflow_serve(stack: dict[str, str], folder: Path, today: date) -> dict[str, Any]:
    """`mlflow models serve` of the champion, restoring the model's own environment (not ours).

    `--env-manager virtualenv` builds a fresh environment from the model's requirements; returns the
    seconds until /ping answers (the build included) and its scores' largest gap to ours in process.
    """
    tracking = stack["SENTINEL_REGISTRY__TRACKING_URI"]
    (port,) = free_ports(1)
    env = clean_env() | {"MLFLOW_TRACKING_URI": tracking, "MLFLOW_ENV_ROOT": str(folder / "envs")}
    program = str(Path(sys.executable).parent / "mlflow")
    command = [program, "models", "serve", "-m", f"models:/{MODEL}@champion",
               "--env-manager", "virtualenv", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    log = (folder / "mlflow-serve.log").open("w")
    start = time.perf_counter()
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ping = f"http://127.0.0.1:{port}/ping"
        wait_until(lambda: httpx.get(ping, timeout=2).status_code == 200, 1200, "mlflow models serve")
        ready = time.perf_counter() - start
        with pointed_at(stack) as settings:
            loaded = registry_of(settings).champion()
            assert loaded is not None, "no champion"
            rows = lake_of(settings).read_window(DATASET, today, 1)[list(loaded.contract.names)].head(200)
        reply = httpx.post(
            f"http://127.0.0.1:{port}/invocations",
            json={"dataframe_split": rows.to_dict(orient="split")},
            timeout=120,
        )
        reply.raise_for_status()
        theirs = [r["score"] for r in reply.json()["predictions"]]
        gap = max(abs(a - b) for a, b in zip(theirs, loaded.detector.score(rows), strict=True))
        return {"ready_s": ready, "rows": len(rows), "max_score_gap": float(gap)}
    finally:
        os.killpg(server.pid, 15)
        server.wait(30)
        log.close()


def _span(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def report(figures: dict[str, Any]) -> str:
    walls, lags, promos = figures["retrain_s"], figures["schedule_lag_s"], figures["promotion_s"]
    art, poll, served = figures["artifacts"], figures["serve_poll_seconds"], figures["mlflow_models_serve"]
    ratios = [s / e for s, e in zip(walls["stack"], walls["embedded"], strict=True)]
    worst = {
        "ratio": max(ratios) <= TARGETS["retrain_ratio"],
        "lag": max(lags) <= TARGETS["schedule_to_running_s"],
        "promotion": max(promos) <= poll + TARGETS["promotion_slack_s"],
    }
    rows = [
        ("`sentinel retrain` wall, s", _span(walls["stack"]), _span(walls["embedded"]),
         f"{min(ratios):.2f}-{max(ratios):.2f}", f"<= {TARGETS['retrain_ratio']}x", worst["ratio"]),
        (f"schedule due -> flow running, s ({len(lags)} runs)", _span(lags), "", "",
         f"<= {TARGETS['schedule_to_running_s']:g}", worst["lag"]),
        (f"promotion -> service answers it, s ({len(promos)} moves)", _span(promos), "", "",
         f"<= {poll:g} + {TARGETS['promotion_slack_s']:g}", worst["promotion"]),
        (f"model download via the MLflow server ({art['model_mb']:.1f} MB), s", f"{art['download_s']:.2f}",
         "", "", "", ""),
        ("model upload via the MLflow server, s", f"{art['upload_s']:.2f}", "", "", "", ""),
        ("`mlflow models serve --env-manager virtualenv`: environment built and /ping answers, s",
         f"{served['ready_s']:.0f}", "", "", "answers /invocations", True),
        (f"its scores on {served['rows']} rows vs ours in process, largest gap",
         f"{served['max_score_gap']:.1e}", "", "", "", ""),
    ]  # fmt: skip
    return "\n".join(
        [
            "# stack benchmark: `sentinel stack` (PostgreSQL, S3, MLflow, Prefect, workers) vs embedded",
            "",
            f"{figures['machine']}; {figures['when']}; {len(ratios)} retrain(s) per side, alternating.",
            "",
            "| measure | stack | embedded default | ratio (range) | target | met |",
            "|---|---|---|---|---|---|",
            *("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows),
            "",
            "Schedule lag with Prefect's default poll intervals (scheduler loop 60 s, worker poll 10 s); the "
            f"service polls the champion alias every {poll:g} s (serve.poll_seconds, its default).",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="retrains per side")
    parser.add_argument("--promotions", type=int, default=3, help="service switches timed")
    parser.add_argument("--schedule-runs", type=int, default=2, help="scheduled retrains whose lag is timed")
    args = parser.parse_args()
    today = datetime.now(UTC).date()
    poll = Settings.model_fields["serve"].default.poll_seconds
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as top:
        Path(top).chmod(0o755)  # PostgreSQL runs as its own user
        embedded = clean_env() | {"SENTINEL_HOME": str(Path(top) / "embedded-home")}
        _seed(embedded, today)
        with _stack(Path(top)) as stack:
            _seed(stack, today)
            walls = _retrains(embedded, stack, args.rounds, today)
            lags = _schedule_lags(stack, args.schedule_runs)
            promos = _promotions(stack, args.promotions, poll)
            art = _artifacts(stack, Path(top) / "download")
            served = _mlflow_serve(stack, Path(top), today)
    figures = {
        "machine": f"{platform.node()}, {os.cpu_count()} cores",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "retrain_s": walls,
        "schedule_lag_s": lags,
        "promotion_s": promos,
        "serve_poll_seconds": poll,
        "artifacts": art,
        "mlflow_models_serve": served,
        "targets": TARGETS,
    }
    publish(ROOT / "benchmarks" / "results", "stack", report(figures), figures)


if __name__ == "__main__":
    main()
