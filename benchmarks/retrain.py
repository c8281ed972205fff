"""Wall time of one `retrain` on 100k rows x 20 features on the embedded default, split by where it goes.

Issue 3's targets on a 2-core machine: at most 60 s in total, and at most 10 s outside training and the
once-per-process start of the local Prefect server. The floors it names are measured in the same run:
a trivial Prefect flow, an MLflow run that logs and registers a small pyfunc model, and Great
Expectations with 60 expectations on the same 100k x 20 rows.

Run: .venv/bin/python benchmarks/retrain.py   (writes benchmarks/results/retrain.md and .json)
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from publish import publish  # noqa: E402

from flows import runtime  # noqa: E402
from flows.settings import Settings  # noqa: E402

N_ROWS, N_FEATURES, WINDOW_DAYS = 100_000, 20, 7
TODAY = date(2026, 11, 30)


def synthetic_days(days: int, rows_per_day: int, seed: int = 0) -> list[pd.DataFrame]:
    """Correlated sensor-like rows: 4 latent factors mixed into 20 features plus noise."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(4, N_FEATURES))
    out = []
    for _ in range(days):
        z = rng.normal(size=(rows_per_day, 4))
        x = np.tanh(z) @ mixing + 0.1 * rng.normal(size=(rows_per_day, N_FEATURES))
        out.append(pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(N_FEATURES)]))
    return out


def trivial_flow_seconds() -> float:
    """One run of a flow that does nothing (the first one in a process also starts the server)."""
    from prefect import flow

    @flow(name="noop")
    def noop() -> int:
        return 1

    started = time.perf_counter()
    noop()
    return time.perf_counter() - started


def mlflow_floor_seconds(home: Path, example: pd.DataFrame) -> float:
    """An MLflow run that logs params, metrics and a tiny pyfunc model, and registers it (existing DB)."""
    import mlflow

    class Mean(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
            return model_input.mean(axis=1).to_frame("score")

    mlflow.set_tracking_uri(f"sqlite:///{home / 'floor.db'}")
    mlflow.create_experiment("floor", artifact_location=(home / "floor-artifacts").as_uri())
    mlflow.set_experiment("floor")
    with mlflow.start_run():  # warm the DB so both sides pay only the steady-state cost
        mlflow.log_param("warm", 1)
    started = time.perf_counter()
    with mlflow.start_run():
        mlflow.log_params({"a": 1, "b": 2})
        mlflow.log_metrics({"loss": 0.1, "rate": 0.01})
        mlflow.pyfunc.log_model(  # a pickled object: the simplest way users log a pyfunc
            name="model",
            python_model=Mean(),
            input_example=example,
            registered_model_name="floor",
            pip_requirements=["mlflow"],
        )
    return time.perf_counter() - started


def gx_floor_seconds(frame: pd.DataFrame) -> float:
    """Great Expectations alone: 60 expectations (exists, not null, between) on the same rows."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    from validation.checks import run_suite

    started = time.perf_counter()
    expectations = []
    for c in frame.columns[:N_FEATURES]:
        expectations += [
            gxe.ExpectColumnToExist(column=c),
            gxe.ExpectColumnValuesToNotBeNull(column=c),
            gxe.ExpectColumnValuesToBeBetween(column=c, min_value=-100, max_value=100),
        ]
    run_suite(frame, gx.ExpectationSuite(name="floor", expectations=expectations))
    return time.perf_counter() - started


def main() -> None:
    home = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    settings = Settings(home=home, retrain={"dataset": "bench", "window_days": WINDOW_DAYS})
    runtime.configure(settings)
    from flows.adapters.lake import Lake, open_store
    from flows.jobs.retrain import retrain

    lake = Lake(open_store(settings.lake_root()))
    days = synthetic_days(WINDOW_DAYS + 1, N_ROWS // WINDOW_DAYS + 1)
    dates = [TODAY - timedelta(days=WINDOW_DAYS - i) for i in range(WINDOW_DAYS + 1)]
    for day, frame in zip(dates, days, strict=True):
        lake.write_day("bench", day, frame)

    first_flow = trivial_flow_seconds()
    flow_floor = min(trivial_flow_seconds() for _ in range(3))
    server_start = first_flow - flow_floor
    runs = []
    for label, as_of in (
        ("first (cold start, new MLflow DB)", dates[-2]),
        ("second (warm start)", dates[-1]),
    ):
        started = time.perf_counter()
        outcome = retrain(settings=settings, as_of=as_of)
        wall = time.perf_counter() - started
        runs.append({"run": label, "rows": outcome.rows["window"], "wall_s": wall, **outcome.timings})
    window = pd.concat(days[1:], ignore_index=True)
    mlflow_floor = mlflow_floor_seconds(home, window.head(5))
    gx_floor = gx_floor_seconds(window)
    report(runs, server_start, flow_floor, mlflow_floor, gx_floor)


def report(
    runs: list[dict], server_start: float, flow_floor: float, mlflow_floor: float, gx_floor: float
) -> None:
    """Print and save the tables."""
    floors = flow_floor + mlflow_floor + gx_floor
    lines = [
        f"# retrain benchmark: {N_ROWS:,} rows x {N_FEATURES} features, embedded default, this machine",
        "",
        f"Prefect server start (once per process): {server_start:.1f} s",
        "",
        "| run | rows | total s (incl. server start) | training s | outside training and server s |"
        " lake I/O s | validation s | export s | evaluation s | registry s | Prefect + other s |"
        " outside / floors |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    steps = ("lake", "validation", "export", "evaluation", "registry")
    for r in runs:
        outside = r["wall_s"] - r["training"]
        other = outside - sum(r[k] for k in steps)
        cells = " | ".join(f"{r[k]:.1f}" for k in steps)
        lines.append(
            f"| {r['run']} | {r['rows']:,} | {r['wall_s'] + server_start:.1f} | {r['training']:.1f} | "
            f"{outside:.1f} | {cells} | {other:.1f} | {outside / floors:.2f} |"
        )
    lines += [
        "",
        "Floors measured in the same run (what the libraries cost on their own):",
        "",
        "| floor | s |",
        "|---|---|",
        f"| trivial Prefect flow run (server already up) | {flow_floor:.2f} |",
        f"| MLflow run + pyfunc log_model + registration (existing DB) | {mlflow_floor:.2f} |",
        f"| Great Expectations, 60 expectations on the window | {gx_floor:.2f} |",
        f"| sum | {floors:.2f} |",
    ]
    floors_s = {"prefect_flow": flow_floor, "mlflow_log_register": mlflow_floor, "gx_60": gx_floor}
    payload = {"server_start_s": server_start, "runs": runs, "floors_s": floors_s}
    publish(ROOT / "benchmarks" / "results", "retrain", "\n".join(lines), payload)


if __name__ == "__main__":
    main()
