"""The `score` Prefect flow: score a day of lake partitions with the champion; write scores and alerts.

Scores go to ``DATASET/_scores/date=DAY/scores-vN.parquet`` (one row per input row: ``_source``, ``_row``,
score, flag, p-value; a champion trained on windows of w steps starts its windows in the previous day's
last w - 1 rows when that day is in the lake, else it scores the day from its w-th row on),
flagged rows to ``DATASET/_alerts/date=DAY/alerts-vN.parquet``, which `retrain`
leaves out of training. The day's files are read one at a time, so memory holds one file and the
scores, not the day. Chunks are scored in parallel threads (torch releases the GIL in its kernels), or
on a Dask cluster when `dask_address` is set (`score_day` picks the task runner).

Example:
    >>> outcome = score_day(Settings(), dataset="mammography", day=date(2026, 11, 30))
    >>> outcome.n_rows, outcome.n_alerts
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from prefect import flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.adapters.connect import lake_of, registry_of
from flows.adapters.lake import Lake, PartitionFile
from flows.adapters.registry import LoadedVersion
from flows.jobs.common import day_parameter, io_task, pure_task, require_champion
from flows.settings import Settings, load_settings
from vae.errors import SentinelError


@dataclass(frozen=True)
class ScoreOutcome:
    """What one batch-scoring run wrote."""

    dataset: str
    day: date
    version: str
    n_rows: int
    n_alerts: int
    scores_key: str
    alerts_key: str


@io_task
def day_files(lake: Lake, dataset: str, day: date, lead: int) -> tuple[list[PartitionFile], pd.DataFrame]:
    """The day's raw files, and the rows a windowed model's first windows reach back to.

    With `lead` > 0, the previous day's last `lead` rows when the lake has that day (else none).
    """
    files, previous = lake.window_files(dataset, day, 1), day - timedelta(days=1)
    tail: list[pd.DataFrame] = []
    if lead > 0 and previous in lake.days(dataset):
        for file in reversed(lake.window_files(dataset, previous, 1)):  # the newest files until lead rows
            tail.insert(0, lake.read_file(file).tail(lead - sum(map(len, tail))))
            if sum(map(len, tail)) == lead:
                break
    return files, pd.concat(tail, ignore_index=True) if tail else pd.DataFrame()


@io_task
def load_file(lake: Lake, file: PartitionFile) -> pd.DataFrame:
    """One raw file's rows with their identity columns."""
    return lake.read_file(file)


@pure_task
def score_chunk(champion: LoadedVersion, rows: pd.DataFrame) -> pd.DataFrame:
    """Score, flag and p-value of one chunk, keyed by row identity (of each window's last row)."""
    prediction = champion.detector.predict(rows)  # picks the champion's columns; names a missing one
    scored = rows.iloc[champion.detector.config.window - 1 :]
    return pd.DataFrame(
        {
            "_source": scored["_source"].to_numpy(),
            "_row": scored["_row"].to_numpy(),
            "score": prediction.score,
            "is_anomaly": prediction.is_anomaly,
            "p_value": prediction.p_value,
        }
    )


@io_task
def write_results(lake: Lake, dataset: str, day: date, version: str, scores: pd.DataFrame) -> tuple[str, str]:
    """Write the day's scores and its alerts (never replacing earlier files)."""
    stamp = f"date={day.isoformat()}/{{}}-v{version}.parquet"
    scores_key = lake.write_table(f"{dataset}/_scores/{stamp.format('scores')}", scores)
    alerts = scores.loc[scores["is_anomaly"]].assign(model_version=version)
    alerts_key = lake.write_table(f"{dataset}/_alerts/{stamp.format('alerts')}", alerts)
    return scores_key, alerts_key


@flow(name="score", task_runner=ThreadPoolTaskRunner(max_workers=2), validate_parameters=False)
def score(
    settings: Settings | None = None, dataset: str | None = None, day: date | None = None
) -> ScoreOutcome:
    """Score one day of a dataset with the champion and write scores and alerts to the lake.

    Args:
        settings: the configuration (default: read from sentinel.toml and SENTINEL_* variables).
        dataset: dataset folder in the lake (default: settings.retrain.dataset).
        day: the partition to score (default: the newest).

    Raises:
        SentinelError: no champion, no partition, or rows the champion cannot score (wrong columns, NaN).
    """
    settings = settings or load_settings()
    day = day_parameter(day)
    dataset = dataset or settings.retrain.dataset
    lake, registry = lake_of(settings), registry_of(settings)
    champion = require_champion(registry)
    day = day or lake.newest_day(dataset)
    # rows a window reaches back: into the day before, and across chunk edges
    lead = champion.detector.config.window - 1
    files, carry = day_files(lake, dataset, day, lead)
    size, parts = settings.score_chunk_rows, []
    for file in files:  # one file in memory at a time; windows reach back across files and days
        rows = load_file(lake, file)
        rows = pd.concat([carry, rows], ignore_index=True) if len(carry) else rows
        futures = [
            score_chunk.submit(champion, rows.iloc[max(0, i - lead) : i + size])
            for i in range(len(carry) if len(carry) == lead else 0, len(rows), size)
        ]
        parts += [f.result() for f in futures]
        carry = rows.tail(lead) if lead else carry
    scores = pd.concat(parts, ignore_index=True)
    scores_key, alerts_key = write_results(lake, dataset, day, champion.version, scores)
    return ScoreOutcome(
        dataset, day, champion.version, len(scores), int(scores["is_anomaly"].sum()), scores_key, alerts_key
    )


def task_runner(settings: Settings) -> TaskRunner:
    """Local threads, or the Dask cluster at `settings.dask_address`."""
    if settings.dask_address is None:
        return ThreadPoolTaskRunner(max_workers=2)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise SentinelError("dask_address needs prefect-dask: pip install 'vae-sentinel[dask]'") from None
    return DaskTaskRunner(address=settings.dask_address)


def score_day(settings: Settings, dataset: str | None = None, day: date | None = None) -> ScoreOutcome:
    """Run the `score` flow on the task runner the settings ask for (threads, or a Dask cluster).

    Raises:
        SentinelError: as `score`, and a Dask scheduler that cannot be reached.
    """
    flow_run = score.with_options(task_runner=task_runner(settings))
    try:
        return flow_run(settings=settings, dataset=dataset, day=day)
    except OSError as exc:
        if settings.dask_address is None:
            raise
        raise SentinelError(f"batch scoring on Dask at {settings.dask_address} failed: {exc}") from None
