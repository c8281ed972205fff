"""The `score` Prefect flow: score a day of lake partitions with the champion; write scores and alerts.

Scores go to ``DATASET/_scores/date=DAY/scores-vN.parquet`` (one row per input row: ``_source``, ``_row``,
score, flag, p-value; a champion trained on windows of w steps starts its windows in the previous day's
last w - 1 rows when that day is in the lake, else it scores the day from its w-th row on), flagged rows
to ``DATASET/_alerts/date=DAY/alerts-vN.parquet``, which `retrain` leaves out of training: each with its
alert group (`vae.alert_groups`: flagged rows whose reconstruction error lies on the same features, -1
for none) and per-feature contributions (``contribution_<column>``); the groups to
``DATASET/_groups/date=DAY/groups-vN.json`` and to a Prefect artifact. Each of the day's files is a task
that reads and scores it in chunks of `score_chunk_rows`: in two local threads (torch releases the GIL in
its kernels), so memory holds two files and the scores, not the day; or on a Dask cluster when
`dask_address` is set (`score_day` picks the task runner), where the workers read the files themselves.

Example:
    >>> outcome = score_day(Settings(), dataset="mammography", day=date(2026, 11, 30))
    >>> outcome.n_rows, outcome.n_alerts
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.adapters.connect import lake_of, registry_of
from flows.adapters.lake import Lake, PartitionFile
from flows.adapters.registry import LoadedVersion
from flows.jobs.common import (
    artifact_key,
    day_parameter,
    io_task,
    job_settings,
    pure_task,
    require_champion,
    watchers,
)
from flows.settings import Settings
from vae.alert_groups import AlertGrouping, group_alerts
from vae.errors import SentinelError
from vae.windowing import Segments

CONTRIBUTION = "contribution_"  # prefix of the alerts' per-feature contribution columns


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
    groups_key: str
    groups: AlertGrouping


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
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one raw file where this task runs (a Dask worker reads it itself) and score it in chunks.

    Returns the scores and the flagged scores' per-feature contributions (in the same order). A windowed
    model's first windows reach back into the last rows of the files `before` it (the day's earlier
    files, then the previous day's), read here too.
    """
    lead = champion.detector.config.window - 1
    rows, reach = lake.read_file(file), _tail(lake, before, lead)
    rows = pd.concat([reach, rows], ignore_index=True) if len(reach) else rows
    first = len(reach) if len(reach) == lead else 0  # no full window yet: scoring starts at its w-th row
    chunks = (rows.iloc[max(0, i - lead) : i + size] for i in range(first, len(rows), size))
    return _concat([_score(champion, chunk) for chunk in chunks])


def _concat(pairs: list[tuple[pd.DataFrame, pd.DataFrame]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and flagged contributions of consecutive pieces, each stacked in order."""
    scores, contributions = zip(*pairs, strict=True)
    return pd.concat(scores, ignore_index=True), pd.concat(contributions, ignore_index=True)


def _tail(lake: Lake, files: list[PartitionFile], n: int) -> pd.DataFrame:
    """The last `n` rows of `files` taken together (reading from the newest file back)."""
    tail: list[pd.DataFrame] = []
    for file in reversed(files if n else []):
        tail.insert(0, lake.read_file(file).tail(n - sum(map(len, tail))))
        if sum(map(len, tail)) == n:
            break
    return pd.concat(tail, ignore_index=True) if tail else pd.DataFrame()


def _score(champion: LoadedVersion, rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score, flag and p-value of rows keyed by row identity (a window's last row); flagged contributions."""
    detector, steps = champion.detector, champion.detector.config.window
    prediction = detector.predict(rows)  # picks the champion's columns; names a missing one
    scored = rows.iloc[steps - 1 :]
    flagged = np.flatnonzero(prediction.is_anomaly)
    values = detector.observations(rows)
    contributions = (
        detector.feature_contributions(Segments(values[i : i + steps] for i in flagged))
        if len(flagged)
        else pd.DataFrame(columns=list(champion.contract.names), dtype=np.float32)
    )
    frame = pd.DataFrame(
        {
            "_source": scored["_source"].to_numpy(),
            "_row": scored["_row"].to_numpy(),
            "score": prediction.score,
            "is_anomaly": prediction.is_anomaly,
            "p_value": prediction.p_value,
        }
    )
    return frame, contributions.reset_index(drop=True)


@pure_task
def group_day(scores: pd.DataFrame, contributions: pd.DataFrame, seed: int) -> AlertGrouping:
    """The day's alert groups; examples named ``SOURCE#ROW``."""
    flagged = scores.loc[scores["is_anomaly"]]
    contributions = contributions.set_axis(flagged["_source"].astype(str) + "#" + flagged["_row"].astype(str))
    return group_alerts(contributions, flagged["score"].to_numpy(), seed=seed)


@io_task
def write_results(
    lake: Lake,
    dataset: str,
    day: date,
    version: str,
    scored: tuple[pd.DataFrame, pd.DataFrame],
    grouping: AlertGrouping,
) -> tuple[str, str, str]:
    """Write the day's scores, alerts (with groups and contributions) and groups; never replaces a file."""
    scores, contributions = scored
    stamp = f"date={day.isoformat()}/{{}}-v{version}"
    scores_key = lake.write_table(f"{dataset}/_scores/{stamp.format('scores')}.parquet", scores)
    alerts = scores.loc[scores["is_anomaly"]].reset_index(drop=True).assign(model_version=version)
    alerts["group"] = grouping.labels
    alerts = pd.concat([alerts, contributions.add_prefix(CONTRIBUTION)], axis=1)
    alerts_key = lake.write_table(f"{dataset}/_alerts/{stamp.format('alerts')}.parquet", alerts)
    groups_key = lake.write_json(f"{dataset}/_groups/{stamp.format('groups')}.json", grouping.records())
    return scores_key, alerts_key, groups_key


@io_task
def publish_groups(dataset: str, day: date, version: str, grouping: AlertGrouping) -> None:
    """The day's alert groups as a Prefect artifact (a markdown table)."""
    title = f"# Alert groups of {dataset} on {day}, version {version}\n\n"
    table = grouping.table()
    body = table.to_markdown(index=False) if len(table) else "No group: too few alerts, or none alike."
    create_markdown_artifact(title + body, key=artifact_key("alert-groups", dataset))


@flow(name="score", task_runner=ThreadPoolTaskRunner(max_workers=2), validate_parameters=False)
def score(
    settings: Settings | None = None, dataset: str | None = None, day: date | None = None
) -> ScoreOutcome:
    """Score one day of a dataset with the champion and write scores and alerts to the lake.

    As each file is scored, the command's `watchers().on_step` (if any) hears (files done, files, its name).

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
    on_file = watchers().on_step
    for done, future in enumerate(as_completed(futures), start=1):
        if on_file is not None:
            on_file(done, len(futures), files[futures.index(future)].source)
    scores, contributions = _concat([f.result() for f in futures])
    grouping = group_day(scores, contributions, settings.detector.seed)
    version = champion.version
    scores_key, alerts_key, groups_key = write_results(
        lake, dataset, day, version, (scores, contributions), grouping
    )
    publish_groups(dataset, day, version, grouping)
    n_alerts = int(scores["is_anomaly"].sum())
    return ScoreOutcome(
        dataset, day, version, len(scores), n_alerts, scores_key, alerts_key, groups_key, grouping
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
