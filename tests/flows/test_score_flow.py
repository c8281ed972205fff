"""Batch scoring writes scores and alerts; the next retrain leaves the alerted rows out."""

from __future__ import annotations

import pytest

from flows.retrain import registry_of, retrain
from flows.score import score
from vae import SentinelError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_harness")]


def test_scores_and_alerts_are_written_and_retrain_excludes_the_alerts(seeded):
    settings, lake, dates = seeded
    with pytest.raises(SentinelError, match="no champion yet"):
        score(settings=settings, dataset="mammography", day=dates[-3])
    retrain(settings=settings, as_of=dates[-4])
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

    with pytest.raises(SentinelError, match="refusing to overwrite"):  # same day, same version
        score(settings=settings, dataset="mammography", day=dates[-3])

    later = retrain(settings=settings, as_of=dates[-3])
    assert later.rows["alerted_dropped"] == outcome.n_alerts
