"""Batch scoring writes scores and alerts; the next retrain leaves the alerted rows out."""

from __future__ import annotations

import dask
import numpy as np
import pytest

from flows.adapters.connect import registry_of
from flows.jobs.common import Watchers, watching
from flows.jobs.retrain import retrain
from flows.jobs.score import score, score_day
from vae import SentinelError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


def test_scoring_before_the_first_champion_is_a_clear_error(seeded):
    settings, _, dates = seeded
    with pytest.raises(SentinelError, match="no champion yet"):
        score(settings=settings, dataset="mammography", day=dates[-3])


def test_scores_and_alerts_are_written_and_retrain_excludes_the_alerts(champion):
    settings, lake, dates, _ = champion
    small = settings.model_copy(update={"score_chunk_rows": 300})  # several chunks in parallel threads
    outcome = score(settings=small, dataset="mammography", day=dates[-3])

    day_rows = lake.read_window("mammography", dates[-3], 1)
    scores = lake.read_table(outcome.scores_key)
    assert outcome.version == "1" and outcome.n_rows == len(day_rows) == len(scores)
    assert list(scores["_row"]) == list(day_rows["_row"])
    expected = registry_of(settings).champion().detector.predict(day_rows.filter(like="s0"))
    assert (scores["is_anomaly"].to_numpy() == expected.is_anomaly).all()
    alerts = lake.read_table(outcome.alerts_key)
    assert len(alerts) == outcome.n_alerts == int(expected.is_anomaly.sum()) > 0
    # each alert carries its group and per-feature contributions, as the detector computes them
    champion_detector = registry_of(settings).champion().detector
    flagged = day_rows.loc[expected.is_anomaly]
    contributions = alerts.filter(like="contribution_").rename(
        columns=lambda c: c.removeprefix("contribution_")
    )
    want = champion_detector.feature_contributions(flagged.filter(like="s0"))
    np.testing.assert_allclose(contributions.to_numpy(), want.to_numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(alerts["group"].to_numpy(), outcome.groups.labels)
    groups = lake.read_json(outcome.groups_key)
    assert [g["size"] for g in groups] == [
        int((alerts["group"] == g.group).sum()) for g in outcome.groups.groups
    ]

    with pytest.raises(SentinelError, match="refusing to overwrite"):  # same day, same version
        score(settings=settings, dataset="mammography", day=dates[-3])

    later = retrain(settings=settings, as_of=dates[-3])
    assert later.rows["alerted_dropped"] == outcome.n_alerts


def test_chunks_can_be_scored_on_a_dask_cluster_while_the_command_shows_progress(champion):
    from distributed import LocalCluster

    settings, lake, dates, _ = champion
    heard: list[tuple[int, int, str]] = []
    # a worker process: what the tasks carry is pickled, and the command's progress bar must stay home
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        on_dask = settings.model_copy(
            update={"score_chunk_rows": 300, "dask_address": cluster.scheduler_address}
        )
        with watching(Watchers(on_step=lambda *step: heard.append(step))):
            outcome = score_day(on_dask, "mammography", dates[-3])
        ran = cluster.scheduler.task_prefixes
    assert heard == [(1, 1, f"date={dates[-3].isoformat()}/part-0.parquet")]
    assert any(name.startswith("score_file") for name in ran), sorted(ran)  # read there too
    day_rows = lake.read_window("mammography", dates[-3], 1)
    expected = registry_of(settings).champion().detector.predict(day_rows.filter(like="s0"))
    scores = lake.read_table(outcome.scores_key)
    assert (scores["is_anomaly"].to_numpy() == expected.is_anomaly).all() and outcome.n_rows == len(day_rows)


def test_an_unreachable_dask_scheduler_is_a_clear_error(champion):
    settings, _, dates, _ = champion
    nowhere = settings.model_copy(update={"dask_address": "tcp://127.0.0.1:9"})
    failed = r"batch scoring on Dask at tcp://127.0.0.1:9 failed"
    quick = {"distributed.comm.timeouts.connect": "2s"}  # the default 30 s wait says nothing more
    with dask.config.set(quick), pytest.raises(SentinelError, match=failed):
        score_day(nowhere, "mammography", dates[-3])
