"""The `score` Prefect flow: score a day of lake partitions with the champion; write scores and alerts.

Scores go to ``DATASET/_scores/date=DAY/scores-vN.parquet`` (one row per input row: ``_source``, ``_row``,
score, flag, p-value; a champion trained on windows of w steps starts its windows in the previous day's
last w - 1 rows when that day is in the lake, else it scores the day from its w-th row on),
flagged rows to ``DATASET/_alerts/date=DAY/alerts-vN.parquet``, which `retrain`
leaves out of training. Each of the day's files is a task that reads and scores it in chunks of
`score_chunk_rows`: in two local threads (torch releases the GIL in its kernels), so memory holds two
files and the scores, not the day; or on a Dask cluster when `dask_address` is set (`score_day` picks
the task runner), where the workers read the files themselves.

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
from flows.jobs.common import day_parameter, io_task, job_settings, require_champion
from flows.settings import Settings
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
def day_files(
    lake: Lake, dataset: str, day: date, lead: int
) -> tuple[list[PartitionFile], list[PartitionFile]]:
    """The day's raw files; with `lead` > 0 also the previous day's (a windowed model reaches back there)."""
    files, previous = lake.window_files(dataset, day, 1), day - timedelta(days=1)
    if lead == 0 or previous not in lake.days(dataset):
        return files, []
    return files, lake.window_files(dataset, previous, 1)


@io_task
def score_file(
    champion: LoadedVersion, lake: Lake, file: PartitionFile, before: list[PartitionFile], size: int
) -> pd.DataFrame:
    """Read one raw file where this task runs (a Dask worker reads it itself) and score it in chunks.

    A windowed model's first windows reach back into the last rows of the files `before` it (the day's
    earlier files, then the previous day's), read here too.
    """
    lead = champion.detector.config.window - 1
    rows, reach = lake.read_file(file), _tail(lake, before, lead)
    rows = pd.concat([reach, rows], ignore_index=True) if len(reach) else rows
    first = len(reach) if len(reach) == lead else 0  # no full window yet: scoring starts at its w-th row
    chunks = (rows.iloc[max(0, i - lead) : i + size] for i in range(first, len(rows), size))
    return pd.concat([_score(champion, chunk) for chunk in chunks], ignore_index=True)


def _tail(lake: Lake, files: list[PartitionFile], n: int) -> pd.DataFrame:
    """The last `n` rows of `files` taken together (reading from the newest file back)."""
    tail: list[pd.DataFrame] = []
    for file in reversed(files if n else []):
        tail.insert(0, lake.read_file(file).tail(n - sum(map(len, tail))))
        if sum(map(len, tail)) == n:
            break
    return pd.concat(tail, ignore_index=True) if tail else pd.DataFrame()


def _score(champion: LoadedVersion, rows: pd.DataFrame) -> pd.DataFrame:
    """Score, flag and p-value of consecutive rows, keyed by row identity (of each window's last row)."""
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
    settings = job_settings(settings)
    day = day_parameter(day)
    dataset = dataset or settings.retrain.dataset
    lake, registry = lake_of(settings), registry_of(settings)
    champion = require_champion(registry)
    day = day or lake.newest_day(dataset)
    # rows a window reaches back to: the day's earlier files, then the day before
    files, previous = day_files(lake, dataset, day, champion.detector.config.window - 1)
    futures = [
        score_file.submit(champion, lake, file, [*previous, *files[:k]], settings.score_chunk_rows)
        for k, file in enumerate(files)
    ]
    scores = pd.concat([f.result() for f in futures], ignore_index=True)
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
